"""``aiosls emulator``: the emulator's own options and runner, behind the command's parser.

Never imports rich: the emulator runs wherever aiosls is installed, extra or not.
"""

from __future__ import annotations

import contextlib
from typing import TextIO

from .options import Parser

__all__ = ["main"]


def main(argv: list[str], out: TextIO, err: TextIO) -> int:
    """Parse ``argv`` (no abbreviations, redacted errors: ``--access-key ID:SECRET`` is never
    repeated) and serve until SIGINT/SIGTERM."""
    from ..emulator import FaultConfig
    from ..emulator.cli import add_arguments, run

    parser = Parser(prog="aiosls emulator", description="Run a local SLS consumer-group emulator.")
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
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 2)
