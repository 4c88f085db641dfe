"""The ``aiosls`` command: ``demo``, ``checkpoints``, ``scan`` and ``emulator``.

Exit codes: 0 all good; 1 some targets failed (the others are still printed); 2 usage or
configuration error; 130 interrupted (after a clean shutdown). Errors are one line with the
SLS error code and request id; ``--debug`` adds the traceback. Secrets are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import getpass
import logging
import math
import os
import random
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final, NoReturn, TextIO

from . import __version__, names
from ._output import (
    Progress,
    checkpoint_dict,
    checkpoints_table,
    dumps_line,
    groups_table,
    printable,
    result_dict,
    status_counts,
)
from .credentials import (
    ENV_ACCESS_KEY_ID,
    ENV_ACCESS_KEY_SECRET,
    Credentials,
    CredentialsProvider,
    EnvironmentCredentialsProvider,
)
from .endpoint import derive_region, parse_endpoint
from .errors import SlsError, ValidationError
from .models import CheckpointResult
from .service import CheckpointService
from .timeouts import Timeouts

__all__ = ["main"]

EXIT_OK: Final = 0
EXIT_PARTIAL: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
ENV_ENDPOINT: Final = "ALIBABA_CLOUD_SLS_ENDPOINT"
FORMATS: Final = ("table", "json", "ndjson")
# `aiosls demo` builds its whole fleet in memory: keep it to what a laptop scans in minutes.
MAX_DEMO_PROJECTS: Final = 1000
MAX_DEMO_LOGSTORES: Final = 1000
MAX_DEMO_GROUPS: Final = 30  # the SLS limit per logstore
MAX_DEMO_SHARDS: Final = 256  # the SLS limit per logstore
MAX_DEMO_TARGETS: Final = 100_000  # consumer groups in the fleet
MAX_DEMO_CHECKPOINTS: Final = 1_000_000  # consumer groups x shards
MAX_DEMO_LATENCY_MS: Final = 3_600_000


class UsageError(Exception):
    """Bad command line or configuration: exit 2."""


# --- argument parsing ---------------------------------------------------------------------------

# A word that is shown in an "unrecognized arguments" error: a long option's name. Anything else
# (a stray value, an option's ``=value``) could be a secret typed in the wrong place.
_OPTION_NAME: Final = re.compile(r"--[a-z][a-z0-9-]{0,40}")
_HIDDEN: Final = "<value not shown>"
_ARGUMENT: Final = re.compile(r"argument (?P<name>[^:]+): (?P<message>.*)", re.S)
_INVALID_CHOICE: Final = re.compile(r"invalid choice: .* (?P<choices>\(choose from .*\))", re.S)


def _redact_word(word: str) -> str:
    name, sep, _value = word.partition("=")
    if _OPTION_NAME.fullmatch(name):
        return f"{name}={_HIDDEN}" if sep else name
    return _HIDDEN


def _redact(message: str) -> str:
    """``message`` without any argument value that could be a secret typed on the command line.

    Values given to a named option that expects a fixed set (``--format xml``) or a number
    (``--port x``) are kept: they help, and a secret does not end up there by accident.
    """
    if message.startswith("unrecognized arguments: "):
        words = message.removeprefix("unrecognized arguments: ").split()
        return "unrecognized arguments: " + " ".join(_redact_word(word) for word in words)
    if message.startswith("ambiguous option: "):
        option, sep, rest = message.removeprefix("ambiguous option: ").partition(" could match ")
        return f"ambiguous option: {_redact_word(option)}{sep}{rest}"
    match = _ARGUMENT.fullmatch(message)
    if match is None:
        return message
    name, text = match["name"], match["message"]
    if text.startswith("ignored explicit argument "):
        # `--access-key-secret-stdin=SECRET`: the flag takes no value; never repeat it.
        return f"argument {name}: takes no value (the value given is not shown)"
    if not name.startswith("-"):
        # A positional (COMMAND, PROJECT...) is where a stray secret lands:
        # `aiosls --access-key-secret SECRET scan ...` makes SECRET the COMMAND.
        choice = _INVALID_CHOICE.fullmatch(text)
        if choice is not None:
            return f"argument {name}: invalid choice {choice['choices']}"
        if text.startswith("invalid ") and " value: " in text:
            return f"argument {name}: {text.partition(' value: ')[0]} value ({_HIDDEN})"
    return message


class _Parser(argparse.ArgumentParser):
    """No option abbreviations, and usage errors that never repeat a value that could be a secret."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        super().error(_redact(message))


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        # ASCII digits only: int() would also take other scripts' digits, '1_000' and blanks.
        if not re.fullmatch(r"-?[0-9]{1,18}", text):
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer in {low}..{high}: {value}")
        return value

    parse.__name__ = "int"
    return parse


def _float_in(low: float, high: float, what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {what} in {low:g}..{high:g}")
        return value

    parse.__name__ = "float"
    return parse


#: Concurrency is a count of requests in flight; beyond this it is a typo, not a plan.
MAX_CONCURRENCY: Final = 10_000
_concurrency = _int_in(1, MAX_CONCURRENCY)
_rate = _float_in(0.0, 1.0, "a share")
_latency_ms = _float_in(0.0, MAX_DEMO_LATENCY_MS, "a number of milliseconds")


def _add_connection_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--endpoint",
        default=os.environ.get(ENV_ENDPOINT),
        help=f"SLS endpoint, e.g. cn-hangzhou.log.aliyuncs.com or http://127.0.0.1:8080 (env {ENV_ENDPOINT})",
    )
    group.add_argument("--signature-version", choices=("v1", "v4"), default="v4", help="default: v4")
    group.add_argument("--region", help="V4 signing region (derived from standard endpoints)")
    group.add_argument(
        "--access-key-id",
        help=f"AccessKey id (default: env {ENV_ACCESS_KEY_ID}); the secret always comes from "
        f"env {ENV_ACCESS_KEY_SECRET} unless --access-key-secret-stdin is given",
    )
    group.add_argument(
        "--access-key-secret-stdin",
        action="store_true",
        help="read the AccessKey secret from the first line of standard input",
    )
    group.add_argument("--timeout", type=float, default=None, help="total seconds per call (default: none)")


def _add_output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument(
        "--stale-after",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="flag groups whose newest checkpoint is older than this (default: 300)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="aiosls",
        description="Read SLS consumer-group checkpoints: one group, whole projects, or a local demo.",
    )
    parser.add_argument("--version", action="version", version=f"aiosls {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    # Every subparser is a _Parser too (allow_abbrev=False, redacted errors).
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    demo = sub.add_parser(
        "demo",
        help="scan a realistic fleet on the embedded emulator (no cloud account needed)",
        description="Start the emulator in-process, seed a fleet, scan it through CheckpointService.",
    )
    demo.add_argument(
        "--projects", type=_int_in(1, MAX_DEMO_PROJECTS), default=3, help=f"1..{MAX_DEMO_PROJECTS}"
    )
    demo.add_argument(
        "--logstores",
        type=_int_in(1, MAX_DEMO_LOGSTORES),
        default=10,
        help=f"logstores per project (1..{MAX_DEMO_LOGSTORES})",
    )
    demo.add_argument(
        "--groups",
        type=_int_in(1, MAX_DEMO_GROUPS),
        default=3,
        help=f"consumer groups per logstore (1..{MAX_DEMO_GROUPS})",
    )
    demo.add_argument(
        "--shards",
        type=_int_in(1, MAX_DEMO_SHARDS),
        default=4,
        help=f"shards per logstore (1..{MAX_DEMO_SHARDS})",
    )
    demo.add_argument("--concurrency", type=_concurrency, default=64)
    demo.add_argument("--throttle-rate", type=_rate, default=0.0, help="inject 403 ReadQuotaExceed")
    demo.add_argument("--error-rate", type=_rate, default=0.0, help="inject 500/503/HTML 502")
    demo.add_argument("--reset-rate", type=_rate, default=0.0, help="inject connection resets")
    demo.add_argument("--latency-ms", type=_latency_ms, default=0.0, help="added server latency")
    demo.add_argument("--fault-seed", type=int, default=1, help="seed for faults and the fleet")
    _add_output_args(demo)

    cps = sub.add_parser("checkpoints", help="show one consumer group's checkpoints")
    cps.add_argument("project")
    cps.add_argument("logstore")
    cps.add_argument("group")
    cps.add_argument("--shard", type=int, default=None, help="only this shard")
    _add_connection_args(cps)
    _add_output_args(cps)

    scan = sub.add_parser("scan", help="discover every consumer group of projects and show checkpoints")
    scan.add_argument("projects", nargs="+", metavar="PROJECT")
    scan.add_argument("--logstore", metavar="GLOB", help="only logstores matching this glob")
    scan.add_argument("--concurrency", type=_concurrency, default=64)
    scan.add_argument("--per-project-concurrency", type=_concurrency, default=None)
    _add_connection_args(scan)
    _add_output_args(scan)

    emu = sub.add_parser(
        "emulator",
        help="run the local SLS emulator until Ctrl-C",
        description="A local SLS consumer-group server that verifies signatures and injects faults.",
    )
    from .emulator.cli import add_arguments

    add_arguments(emu)
    return parser


# --- commands -----------------------------------------------------------------------------------


def _credentials(args: argparse.Namespace, stdin: TextIO) -> CredentialsProvider | Credentials:
    if args.access_key_secret_stdin:
        # Typed at a terminal: read without echo. Piped in: a plain line.
        secret = getpass.getpass("AccessKey secret: ") if stdin.isatty() else stdin.readline().strip()
        key_id = args.access_key_id or os.environ.get(ENV_ACCESS_KEY_ID, "")
        if not key_id or not secret:
            raise UsageError("--access-key-secret-stdin needs an access key id and a secret line on stdin")
        return Credentials(key_id, secret, os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None)
    env = dict(os.environ)
    if args.access_key_id:
        env[ENV_ACCESS_KEY_ID] = args.access_key_id
    provider = EnvironmentCredentialsProvider(env)
    try:
        provider.load()
    except SlsError as exc:
        raise UsageError(exc.message) from None
    return provider


def _service(args: argparse.Namespace, stdin: TextIO) -> CheckpointService:
    if not args.endpoint:
        raise UsageError(f"no endpoint: pass --endpoint or set {ENV_ENDPOINT}")
    try:
        host = parse_endpoint(args.endpoint).host
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.signature_version == "v4" and not args.region and not derive_region(host):
        raise UsageError(
            f"signature V4 needs a region and none can be derived from {args.endpoint!r}: "
            "pass --region (e.g. --region cn-hangzhou) or --signature-version v1"
        )
    try:
        return CheckpointService(
            args.endpoint,
            _credentials(args, stdin),
            signature_version=args.signature_version,
            region=args.region,
            timeouts=Timeouts(total=args.timeout),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


async def _checkpoints(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    try:
        names.validate_project(args.project)
        names.validate_logstore(args.logstore)
        names.validate_consumer_group(args.group)
        if args.shard is not None:
            names.validate_shard(args.shard)
    except ValidationError as exc:
        raise UsageError(exc.message) from None
    async with _service(args, stdin) as svc:
        cps = await svc.get_checkpoints(args.project, args.logstore, args.group, shard=args.shard)
    now = datetime.now(UTC)
    if args.format == "table":
        out.write(checkpoints_table(cps, now) + "\n")
    elif args.format == "json":
        out.write(dumps_line([checkpoint_dict(cp) for cp in cps]) + "\n")
    else:
        for cp in cps:
            out.write(dumps_line(checkpoint_dict(cp)) + "\n")
    return EXIT_OK


async def _emit(
    stream: Any, args: argparse.Namespace, out: TextIO, err: TextIO
) -> tuple[list[CheckpointResult], int]:
    """Consume a result stream: NDJSON lines as they arrive, else collect. Returns (results, failed)."""
    progress = Progress(err)
    results: list[CheckpointResult] = []
    async with stream:
        async for result in stream:
            progress.update(result)
            if args.format == "ndjson":
                out.write(dumps_line(result_dict(result)) + "\n")
                out.flush()
            else:
                results.append(result)
    progress.finish()
    return results, progress.failed


def _render(results: list[CheckpointResult], args: argparse.Namespace, out: TextIO) -> None:
    if args.format == "json":
        out.write(dumps_line([result_dict(r) for r in results]) + "\n")
    elif args.format == "table":
        out.write(groups_table(results, datetime.now(UTC), stale_after=args.stale_after) + "\n")


def _report_failures(results: list[CheckpointResult], err: TextIO) -> None:
    for r in results:
        if r.error is not None:
            t = r.target
            where = "/".join(part for part in (t.project, t.logstore, t.consumer_group) if part)
            err.write(f"aiosls: {where}: {_one_line(r.error)}\n")


async def _scan(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    for project in args.projects:
        try:
            names.validate_project(project)
        except ValidationError as exc:
            raise UsageError(exc.message) from None
    async with _service(args, stdin) as svc:
        stream = svc.scan(
            args.projects,
            logstore_filter=args.logstore,
            concurrency=args.concurrency,
            per_project_concurrency=args.per_project_concurrency,
        )
        results, failed = await _emit(stream, args, out, err)
    _render(results, args, out)
    if args.format == "table":
        _report_failures(results, err)
    return EXIT_PARTIAL if failed else EXIT_OK


def demo_seed(
    *, projects: int, logstores: int, groups: int, shards: int, now: datetime, rng: random.Random
) -> dict[str, Any]:
    """A realistic fleet in the emulator's seed format: a mix of fresh, stale, never-committed
    and unassigned (no consumer) checkpoints."""
    now_us = int(now.timestamp() * 1_000_000)
    names = (
        "app-log",
        "nginx-access",
        "audit",
        "billing-events",
        "clicks",
        "orders",
        "payments",
        "search-log",
        "metrics-raw",
        "security",
    )
    fleet: dict[str, Any] = {}
    for p in range(projects):
        stores: dict[str, Any] = {}
        for s in range(logstores):
            base = names[s % len(names)]
            store = base if s < len(names) else f"{base}-{s // len(names)}"
            cgs: dict[str, Any] = {}
            for g in range(groups):
                kind = rng.choices(("fresh", "stale", "never", "unassigned"), (6, 2, 1, 1))[0]
                cps: dict[str, Any] = {}
                if kind != "never":
                    for shard in range(shards):
                        lag_s = rng.uniform(0, 40) if kind != "stale" else rng.uniform(900, 6 * 3600)
                        consumer = "" if kind == "unassigned" else f"worker-{(shard % 2) + 1}"
                        cursor = str(1_700_000_000_000_000 + rng.randrange(10**9))
                        cps[str(shard)] = {
                            "checkpoint": base64.b64encode(cursor.encode()).decode(),
                            "consumer": consumer,
                            "update_time": now_us - int(lag_s * 1_000_000),
                        }
                cgs[f"cg-{('alerting', 'etl', 'archiver', 'search')[g % 4]}-{g}"] = {
                    "timeout": 60,
                    "order": False,
                    "checkpoints": cps,
                }
            stores[store] = {"shards": shards, "consumer_groups": cgs}
        fleet[f"demo-project-{p + 1}"] = {"logstores": stores}
    return {"projects": fleet}


async def _demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, Emulator, FaultConfig

    targets = args.projects * args.logstores * args.groups
    if targets > MAX_DEMO_TARGETS:
        raise UsageError(
            f"--projects x --logstores x --groups is {targets} consumer groups; "
            f"the demo allows {MAX_DEMO_TARGETS}"
        )
    if targets * args.shards > MAX_DEMO_CHECKPOINTS:
        raise UsageError(
            f"the fleet would hold {targets * args.shards} checkpoints (consumer groups x --shards); "
            f"the demo allows {MAX_DEMO_CHECKPOINTS}"
        )
    now = datetime.now(UTC)
    try:
        # The emulator validates the fleet and the faults: what it rejects is a usage error (the
        # SeedError or ValueError names the bad value), not a failed target.
        seed = demo_seed(
            projects=args.projects,
            logstores=args.logstores,
            groups=args.groups,
            shards=args.shards,
            now=now,
            rng=random.Random(args.fault_seed),
        )
        faults = FaultConfig(
            throttle_rate=args.throttle_rate,
            error_rate=args.error_rate,
            reset_rate=args.reset_rate,
            latency_ms=args.latency_ms,
        )
        emulator = Emulator(seed=seed, faults=faults, fault_seed=args.fault_seed)
    except ValueError as exc:  # SeedError is a ValueError
        raise UsageError(printable(" ".join(str(exc).split()))) from None
    async with emulator as emu:
        err.write(f"aiosls demo: emulator on {emu.endpoint}; scanning {len(seed['projects'])} project(s)\n")
        # Exactly what a user does against the real service: only the endpoint differs.
        async with CheckpointService(
            emu.endpoint,
            Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET),
            signature_version="v4",
            region="cn-hangzhou",
        ) as svc:
            started = time.perf_counter()
            stream = svc.scan(sorted(seed["projects"]), concurrency=args.concurrency)
            results, failed = await _emit(stream, args, out, err)
            elapsed = time.perf_counter() - started
            requests = svc.requests_sent
        injected = dict(emu.faults.injected)
    _render(results, args, out)
    summary = {
        "targets": len(results) if args.format != "ndjson" else None,
        "failed": failed,
        "requests": requests,
        "seconds": round(elapsed, 3),
        "requests_per_second": round(requests / elapsed, 1) if elapsed > 0 else None,
        "faults_injected": injected,
    }
    if args.format == "table":
        _report_failures(results, err)
        fault_text = ", ".join(f"{k}={v}" for k, v in sorted(injected.items()) if v) or "none"
        tally = status_counts(results, datetime.now(UTC), stale_after=args.stale_after)
        out.write(
            f"\n{len(results)} consumer groups ({tally}); {failed} failed\n"
            f"{requests} requests in {elapsed:.2f}s ({summary['requests_per_second']} requests/s); "
            f"faults injected and absorbed by retries: {fault_text}\n"
        )
    else:
        err.write(dumps_line({"summary": summary}) + "\n")
    return EXIT_PARTIAL if failed else EXIT_OK


# --- entry point --------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, SlsError) else f"{type(exc).__name__}: {exc}"
    return printable(" ".join(text.split()))


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run the command; returns the exit code (the console script exits with it)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    inp = stdin or sys.stdin
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "emulator":
        return _emulator(argv[1:], out, err)
    parser = build_parser()
    try:
        # argparse prints usage errors, --help and --version itself: to our streams, please.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version exit 0, bad usage exits 2
        return _exit_code(exc)
    if args.command == "emulator":  # e.g. `aiosls --debug emulator ...`
        return _emulator(argv[argv.index("emulator") + 1 :], out, err)
    with _logging_to(err, debug=args.debug):
        return _run(args, out, err, inp)


def _exit_code(exc: SystemExit) -> int:
    return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)


def _emulator(argv: list[str], out: TextIO, err: TextIO) -> int:
    from .emulator import FaultConfig
    from .emulator.cli import add_arguments, run

    # Our own parser (no abbreviations, redacted errors: `--access-key ID:SECRET` is never
    # repeated), with the emulator's options.
    parser = _Parser(prog="aiosls emulator", description="Run a local SLS consumer-group emulator.")
    add_arguments(parser)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
            try:
                FaultConfig(args.throttle_rate, args.error_rate, args.reset_rate, args.latency_ms)
            except ValueError as exc:
                parser.error(str(exc))
            return int(run(args))
    except SystemExit as exc:  # argparse: --help, bad usage
        return _exit_code(exc)


@contextlib.contextmanager
def _logging_to(err: TextIO, *, debug: bool) -> Iterator[None]:
    """Log records to ``err`` while the command runs (aiosls's debug records with ``--debug``),
    then leave the logging configuration as it was: ``main`` may run in-process many times."""
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("aiosls: %(levelname)s %(name)s: %(message)s"))
    root, ours = logging.getLogger(), logging.getLogger("aiosls")
    saved = root.level, ours.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    ours.setLevel(logging.DEBUG if debug else logging.NOTSET)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        ours.setLevel(saved[1])


def _run(args: argparse.Namespace, out: TextIO, err: TextIO, inp: TextIO) -> int:
    try:
        if args.command == "demo":
            return asyncio.run(_demo(args, out, err))
        if args.command == "checkpoints":
            return asyncio.run(_checkpoints(args, out, inp))
        return asyncio.run(_scan(args, out, err, inp))
    except KeyboardInterrupt:
        err.write("aiosls: interrupted\n")
        return EXIT_INTERRUPTED
    except UsageError as exc:
        err.write(f"aiosls: error: {exc}\n")
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, like other shell tools.
        if out is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        # An SLS error (one line with code and request id), or anything unexpected: no
        # traceback unless --debug.
        if args.debug:
            traceback.print_exc(file=err)
        err.write(f"aiosls: {_one_line(exc)}\n")
        if not isinstance(exc, SlsError) and not args.debug:
            err.write("aiosls: run with --debug for the traceback\n")
        return EXIT_PARTIAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
