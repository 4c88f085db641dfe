"""The ``aiosls`` command: ``demo``, ``checkpoints``, ``scan``, ``lag``, ``exporter`` and ``emulator``.

Each subcommand lives in its own module, registered in :data:`COMMANDS` with its help line,
and imported only when it is the one that runs: ``aiosls --help`` imports no command module,
and ``aiosls scan --help`` only :mod:`aiosls.cli.scan` (no aiohttp, no rich, no emulator).

A command module provides ``add_arguments(parser)`` and either (kind ``"async"``)
``async def command(args, ctx) -> int``, run by :mod:`aiosls.cli.run` (signals, logging by
verbosity, one-line errors; it needs rich: ``pip install 'aiosls[cli]'``), or (kind ``"run"``)
``def run(args) -> int`` that owns its loop, signals and logging (a server such as the
exporter). ``emulator`` parses its own options and never needs rich.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Sequence
from typing import Any, Final, Literal, NamedTuple, TextIO

from .exits import EPILOG, EXIT_USAGE
from .options import Parser

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


class Command(NamedTuple):
    """A subcommand: where it lives, its ``--help`` line, how it runs, whether it needs rich."""

    module: str
    help: str
    kind: Literal["async", "run"] = "async"
    needs_rich: bool = True


#: Subcommands in ``--help`` order; ``aiosls emulator`` is dispatched before these.
COMMANDS: Final[dict[str, Command]] = {
    "demo": Command(
        "aiosls.cli.demo", "sweep the lag of a live fleet on the embedded emulator (no cloud account needed)"
    ),
    "checkpoints": Command("aiosls.cli.checkpoints", "show one consumer group's checkpoints"),
    "scan": Command(
        "aiosls.cli.scan",
        "discover every consumer group of projects and show their lag and status, worst first",
    ),
    "lag": Command(
        "aiosls.cli.lag", "how far behind consumer groups are, and whether they are stuck (exit 1 if not OK)"
    ),
    "exporter": Command(
        "aiosls.exporter.cli", "serve consumer lag and health as Prometheus metrics", "run", needs_rich=False
    ),
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


def _invoked(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs (the first word after the global flags), if any."""
    for word in argv:
        if word not in _GLOBAL_FLAGS:
            return word
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line. With ``argv``, only the subcommand it runs gets its options (the
    others are listed by name and help line, their modules not imported); without, all do."""
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
    wanted = None if argv is None else _invoked(argv)
    for name, spec in COMMANDS.items():
        if argv is not None and name != wanted:
            sub.add_parser(name, help=spec.help, add_help=False)
            continue
        module = importlib.import_module(spec.module)
        child = sub.add_parser(
            name,
            help=spec.help,
            description=getattr(module, "DESCRIPTION", spec.help),
            epilog=EPILOG if spec.kind == "async" else None,
            formatter_class=formatter,
        )
        module.add_arguments(child)
        if spec.kind == "async":
            _add_verbosity(child, sub=True)
    # Its options are parsed by `aiosls.cli.emulator` (see main); listed here for --help.
    sub.add_parser(
        "emulator", help="run the local SLS emulator until Ctrl-C (no rich needed)", add_help=False
    )
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
    parser = build_parser(words)
    try:
        # argparse prints usage errors, --help and --version itself: to our streams, please.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(words)
    except SystemExit as exc:  # argparse: --help/--version exit 0, bad usage exits 2
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    spec = COMMANDS[args.command]
    module = importlib.import_module(spec.module)
    if spec.needs_rich:
        try:
            import rich  # noqa: F401  (the cli extra)
        except ImportError:
            err.write(_INSTALL_HINT.format(command=args.command))
            return EXIT_USAGE
    if spec.kind == "run":
        return int(module.run(args))
    from .run import DEBUG, NORMAL, QUIET, VERBOSE, Context, run

    verbosity = DEBUG if args.debug else VERBOSE if args.verbose else QUIET if args.quiet else NORMAL
    return run(module.command, args, Context(out, err, inp, verbosity=verbosity))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
