"""The ``aiosls`` command: ``demo``, ``checkpoints``, ``scan`` and ``emulator``.

Each subcommand lives in its own module, registered in :data:`COMMANDS` by module path and
imported only when it runs (``--help`` imports no aiohttp, no rich, no emulator). A module
provides ``HELP``, optionally ``DESCRIPTION``, ``add_arguments(parser)`` (import-light) and
``async def command(args, ctx) -> int`` (see :mod:`aiosls.cli.run`). A command that treats a
signal as a normal stop (a server) runs in ``ctx.interruptible(...)``, sets ``ctx.reported``
and returns 0. Every registered command needs rich (``pip install 'aiosls[cli]'``); ``emulator``
does not.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Sequence
from typing import Any, Final, TextIO

from .exits import EPILOG, EXIT_USAGE
from .options import Parser

__all__ = ["COMMANDS", "build_parser", "main"]

#: Subcommand -> the module implementing it, in ``--help`` order. ``aiosls exporter`` (issue 14)
#: registers here as ``"exporter": "aiosls.exporter.cli"``.
COMMANDS: Final[dict[str, str]] = {
    "demo": "aiosls.cli.demo",
    "checkpoints": "aiosls.cli.checkpoints",
    "scan": "aiosls.cli.scan",
}
_GLOBAL_FLAGS: Final = frozenset({"--debug", "-v", "--verbose", "-q", "--quiet"})
_INSTALL_HINT: Final = "aiosls: error: the {command} command needs rich: pip install 'aiosls[cli]'\n"


def _add_verbosity(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    # On the subcommands too (`aiosls scan p -v`), without overriding a flag given before them.
    default: Any = argparse.SUPPRESS if sub else False
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", default=default, help="also show each retry")
    group.add_argument("-q", "--quiet", action="store_true", default=default, help="show only errors")
    parser.add_argument(
        "--debug", action="store_true", default=default, help="show aiosls debug logs and tracebacks"
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line (every subcommand's options; the emulator's are its own)."""
    from .. import __version__

    formatter = argparse.RawDescriptionHelpFormatter
    parser = Parser(
        prog="aiosls",
        description="Read SLS consumer-group checkpoints: one group, whole projects, or a local demo.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"aiosls {__version__}")
    _add_verbosity(parser, sub=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name, path in COMMANDS.items():
        module = importlib.import_module(path)
        child = sub.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            epilog=EPILOG,
            formatter_class=formatter,
        )
        module.add_arguments(child)
        _add_verbosity(child, sub=True)
    # Its options are parsed by `aiosls.cli.emulator` (see main); listed here for --help.
    sub.add_parser("emulator", help="run the local SLS emulator until Ctrl-C", add_help=False)
    return parser


def _emulator_argv(argv: list[str]) -> list[str] | None:
    """The emulator's arguments when ``argv`` runs ``emulator`` (after global flags), else None."""
    for i, word in enumerate(argv):
        if word == "emulator":
            return argv[i + 1 :]
        if word not in _GLOBAL_FLAGS:
            return None
    return None


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
    words = list(sys.argv[1:] if argv is None else argv)
    emulator_argv = _emulator_argv(words)
    if emulator_argv is not None:
        from .emulator import main as emulator_main

        return emulator_main(emulator_argv, out, err)
    parser = build_parser()
    try:
        # argparse prints usage errors, --help and --version itself: to our streams, please.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(words)
    except SystemExit as exc:  # argparse: --help/--version exit 0, bad usage exits 2
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    try:
        import rich  # noqa: F401  (the extra every command but the emulator needs)
    except ImportError:
        err.write(_INSTALL_HINT.format(command=args.command))
        return EXIT_USAGE
    from .run import DEBUG, NORMAL, QUIET, VERBOSE, Context, run

    verbosity = DEBUG if args.debug else VERBOSE if args.verbose else QUIET if args.quiet else NORMAL
    module = importlib.import_module(COMMANDS[args.command])
    return run(module.command, args, Context(out, err, inp, verbosity=verbosity))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
