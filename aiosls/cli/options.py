"""Argument parsing shared by every subcommand: the parser class, value checks, common flags.

Import-light on purpose (argparse, re, os): ``aiosls --help`` builds every subparser, so nothing
here may import aiohttp, the service, rich or the emulator.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable
from typing import Any, Final, NoReturn

__all__ = [
    "DEFAULT_TIMEOUT",
    "ENV_ACCESS_KEY_ID",
    "ENV_ACCESS_KEY_SECRET",
    "ENV_ENDPOINT",
    "ENV_REGION",
    "FORMATS",
    "MAX_CONCURRENCY",
    "Parser",
    "add_connection_args",
    "add_output_args",
    "concurrency",
    "float_in",
    "int_in",
    "seconds",
]

# The same names as aiosls.credentials (a test checks); repeated so --help need not import it.
ENV_ACCESS_KEY_ID: Final = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET: Final = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_ENDPOINT: Final = "ALIBABA_CLOUD_SLS_ENDPOINT"
#: The region variable of the Alibaba Cloud CLI and SDKs.
ENV_REGION: Final = "ALIBABA_CLOUD_REGION_ID"
FORMATS: Final = ("table", "json", "ndjson")
#: Concurrency is a count of requests in flight; beyond this it is a typo, not a plan.
MAX_CONCURRENCY: Final = 10_000
#: Total seconds one call may take, retries and backoff included (the retry deadline is 60 s).
DEFAULT_TIMEOUT: Final = 120.0
#: The longest duration any option takes (30 days); more is a typo.
MAX_SECONDS: Final = 30 * 86_400.0

# --- usage errors that never repeat a secret ------------------------------------------------------

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


def redact(message: str) -> str:
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


class Parser(argparse.ArgumentParser):
    """No option abbreviations, and usage errors that never repeat a value that could be a secret."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        super().error(redact(message))


# --- value checks -----------------------------------------------------------------------------------


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an ASCII integer in ``low..high``."""

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


def float_in(low: float, high: float, what: str, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in ``low..high`` (``low`` excluded if ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        too_low = value <= low if low_open else value < low
        if not math.isfinite(value) or too_low or value > high:
            bound = f"over {low:g} up to {high:g}" if low_open else f"in {low:g}..{high:g}"
            raise argparse.ArgumentTypeError(f"must be {what} {bound}")
        return value

    parse.__name__ = "float"
    return parse


concurrency = int_in(1, MAX_CONCURRENCY)
#: A duration in seconds: finite, never negative.
seconds = float_in(0.0, MAX_SECONDS, "a number of seconds")
_positive_seconds = float_in(0.0, MAX_SECONDS, "a number of seconds", low_open=True)


# --- common flags -----------------------------------------------------------------------------------


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """``--endpoint``, ``--region``, ``--signature-version``, credentials and ``--timeout``.

    Environment defaults are read when the parser is built (``main`` builds one per run).
    """
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--endpoint",
        default=os.environ.get(ENV_ENDPOINT),
        help=f"SLS endpoint, e.g. cn-hangzhou.log.aliyuncs.com or http://127.0.0.1:8080 (env {ENV_ENDPOINT})",
    )
    group.add_argument("--signature-version", choices=("v1", "v4"), default="v4", help="default: v4")
    group.add_argument(
        "--region",
        default=os.environ.get(ENV_REGION) or None,
        help=f"V4 signing region (default: env {ENV_REGION}, else derived from standard endpoints)",
    )
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
    group.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"total seconds per call, retries included (default: {DEFAULT_TIMEOUT:g})",
    )


def add_output_args(parser: argparse.ArgumentParser, *, stale_after: bool = True) -> None:
    """``--format`` and (for status columns) ``--stale-after``."""
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    if stale_after:
        parser.add_argument(
            "--stale-after",
            type=seconds,
            default=300.0,
            metavar="SECONDS",
            help="status STALE when the newest commit is older than this (default: 300)",
        )
