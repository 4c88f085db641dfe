"""``aiosls emulator``: run the emulator in the foreground until SIGINT/SIGTERM.

The first stdout line is exactly ``aiosls emulator listening on http://HOST:PORT`` (flushed at
once) so scripts can start it with ``--port 0`` and read the port. Secrets are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import signal
import sys

from .faults import FaultConfig
from .seed import SeedError
from .server import DEMO_ACCESS_KEY_ID, Emulator

__all__ = ["add_arguments", "key_message", "main", "run"]


def _access_key(text: str) -> tuple[str, str]:
    key_id, sep, secret = text.partition(":")
    if not sep or not key_id or not secret:
        raise argparse.ArgumentTypeError("expected ID:SECRET")
    return key_id, secret


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _rate(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a rate must be in 0..1")
    return value


def _latency(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError("latency must be >= 0 milliseconds")
    return value


def _integer(text: str) -> int:
    # ASCII digits only: int() would also take U+0661 (Arabic-Indic one), '1_000' and blanks.
    if not re.fullmatch(r"-?[0-9]{1,30}", text):
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
    return int(text)


def _port(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", text) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"a port must be an integer in 0..65535, not {text!r}")
    return int(text)


def _region(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", text):
        raise argparse.ArgumentTypeError(f"not a region id: {text[:64]!r}")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to ``parser`` (used by ``aiosls emulator`` and ``-m``)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=0, help="port to bind (0..65535); 0 picks a free one")
    parser.add_argument(
        "--access-key",
        action="append",
        type=_access_key,
        default=[],
        metavar="ID:SECRET",
        help="accepted access key (repeatable); default: the well-known demo key",
    )
    parser.add_argument("--seed", metavar="FILE", help="seed JSON file (projects, logstores, groups)")
    parser.add_argument(
        "--throttle-rate",
        type=_rate,
        default=0.0,
        metavar="R",
        help="share of requests answered 403 ReadQuotaExceed",
    )
    parser.add_argument(
        "--error-rate", type=_rate, default=0.0, metavar="R", help="share answered 500, 503 or an HTML 502"
    )
    parser.add_argument(
        "--reset-rate",
        type=_rate,
        default=0.0,
        metavar="R",
        help="share whose connection is reset (before or mid response)",
    )
    parser.add_argument(
        "--latency-ms", type=_latency, default=0.0, metavar="MS", help="latency added to every request"
    )
    parser.add_argument("--fault-seed", type=_integer, default=0, metavar="N", help="fault RNG seed")
    parser.add_argument("--no-verify", action="store_true", help="accept unsigned requests")
    parser.add_argument(
        "--region",
        type=_region,
        default=None,
        metavar="REGION",
        help="V4 signatures must name this region (401 SignatureNotMatch otherwise); default: any",
    )


async def _serve(args: argparse.Namespace) -> None:
    keys = dict(args.access_key) or None
    emulator = Emulator(
        access_keys=keys,
        seed=args.seed,
        host=args.host,
        port=args.port,
        faults=FaultConfig(args.throttle_rate, args.error_rate, args.reset_rate, args.latency_ms),
        fault_seed=args.fault_seed,
        verify_signatures=not args.no_verify,
        region=args.region,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with emulator:
        print(f"aiosls emulator listening on {emulator.endpoint}", flush=True)
        print(f"aiosls emulator: {key_message(emulator)}", file=sys.stderr, flush=True)
        await stop.wait()


def key_message(emulator: Emulator) -> str:
    """What the emulator really accepts, from its verifier (never a secret)."""
    if not emulator.verify_signatures:
        return "--no-verify: signatures are not checked; any request is accepted"
    ids = emulator.verifier.access_key_ids
    text = f"accepting access key id{'s' if len(ids) != 1 else ''} {', '.join(ids)}"
    if DEMO_ACCESS_KEY_ID in ids:
        text += f" ({DEMO_ACCESS_KEY_ID} is the public demo key: aiosls.emulator.DEMO_ACCESS_KEY_SECRET)"
    region = emulator.verifier.region
    text += f"; V4 signatures must name region {region}" if region else "; any V4 region"
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the emulator; returns the exit status (0 after SIGINT/SIGTERM, 2 on bad input)."""
    # No abbreviations, as in `aiosls emulator`: "--thr" must not silently mean --throttle-rate.
    parser = argparse.ArgumentParser(
        prog="aiosls emulator", description="Run a local SLS consumer-group emulator.", allow_abbrev=False
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        FaultConfig(args.throttle_rate, args.error_rate, args.reset_rate, args.latency_ms)
    except ValueError as exc:
        parser.error(str(exc))
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Serve with already-parsed ``args`` (from a parser given :func:`add_arguments`)."""
    try:
        asyncio.run(_serve(args))
    except (SeedError, ValueError) as exc:  # a bad seed or option: SeedError is a ValueError
        print(f"aiosls emulator: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OverflowError as exc:  # bind() with a port outside 0..65535 (args built without _port)
        print(f"aiosls emulator: cannot listen on {args.host}:{args.port}: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        reason = exc.strerror or _one_line(exc)
        print(f"aiosls emulator: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 1
    return 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
