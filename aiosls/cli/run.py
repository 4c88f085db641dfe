"""Running a subcommand: logging by verbosity, signals, one-line errors, the summary line.

A subcommand is a coroutine ``command(args, ctx) -> exit code``. :func:`run` drives it in a
fresh event loop with SIGINT/SIGTERM handlers: a signal during :meth:`Context.interruptible`
cancels only that section (the command then prints what it read and returns
:meth:`Context.exit_code`); a signal anywhere else cancels the command.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, Final, TextIO

from rich.console import Console

from .._text import safe_text
from ..errors import SlsError
from .exits import EXIT_PARTIAL, EXIT_USAGE, signal_exit_code
from .output import log_handler, make_console

__all__ = ["Context", "UsageError", "one_line", "run", "summary_line"]

#: Verbosity levels: ``-q``, default, ``-v``, ``--debug``.
QUIET: Final = -1
NORMAL: Final = 0
VERBOSE: Final = 1
DEBUG: Final = 2
RETRY_LOGGER: Final = "aiosls.retry"


class UsageError(Exception):
    """Bad command line or configuration: exit 2, one line."""


class Context:
    """What a subcommand gets besides its arguments: streams, consoles, verbosity, and the
    interrupt state."""

    def __init__(self, out: TextIO, err: TextIO, stdin: TextIO, *, verbosity: int) -> None:
        self.out, self.err, self.stdin = out, err, stdin
        self.verbosity = verbosity
        self.out_console: Console = make_console(out)
        self.err_console: Console = make_console(err)
        #: The signal that interrupted the run, if one did.
        self.interrupted: signal.Signals | None = None
        self._section: asyncio.Future[Any] | None = None
        #: Set by a command whose own output already said it was interrupted (the summary).
        self.reported = False

    @property
    def show_progress(self) -> bool:
        """A progress display unless ``-q`` (it only ever appears on a terminal)."""
        return self.verbosity > QUIET

    @property
    def show_summary(self) -> bool:
        """The summary line unless ``-q`` (errors only)."""
        return self.verbosity > QUIET

    def exit_code(self, otherwise: int) -> int:
        """130/143 after SIGINT/SIGTERM, else ``otherwise``."""
        return signal_exit_code(self.interrupted) if self.interrupted is not None else otherwise

    async def interruptible(self, work: Coroutine[Any, Any, None]) -> bool:
        """Run ``work`` until it ends or a signal cancels it; True if a signal did."""
        task = asyncio.ensure_future(work)
        self._section = task
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and self.interrupted is not None and not (current and current.cancelling()):
                return True
            raise
        finally:
            self._section = None
        return False

    def _on_signal(self, signum: signal.Signals, main: asyncio.Task[Any]) -> None:
        first = self.interrupted is None
        if first:
            self.interrupted = signum
        if first and self._section is not None and not self._section.done():
            self._section.cancel()  # stop sending; the command prints what it has
        else:
            main.cancel()  # not in a section, or a second signal: stop now


class _Verbosity(logging.Filter):
    """What reaches the terminal: ``-q`` errors; default warnings, but no retry lines (each
    retry and give-up: the summary counts retries, and the output reports every failure);
    ``-v`` those too; ``--debug`` everything."""

    def __init__(self, verbosity: int) -> None:
        super().__init__()
        self._verbosity = verbosity

    def filter(self, record: logging.LogRecord) -> bool:
        if self._verbosity >= DEBUG:
            return True
        if self._verbosity <= QUIET:
            return record.levelno >= logging.ERROR
        retry = record.name == RETRY_LOGGER or record.name.startswith(RETRY_LOGGER + ".")
        if retry and record.levelno < logging.ERROR:
            return self._verbosity >= VERBOSE
        return record.levelno >= logging.WARNING


@contextmanager
def _logging(ctx: Context) -> Iterator[None]:
    """Route log records to stderr while the command runs, then restore the logging setup:
    ``main`` may run in-process many times."""
    handler = log_handler(ctx.err_console)
    handler.addFilter(_Verbosity(ctx.verbosity))
    root, ours, retry = logging.getLogger(), logging.getLogger("aiosls"), logging.getLogger(RETRY_LOGGER)
    saved = root.level, ours.level, retry.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    # Debug records are only created when they are shown (a fan-out logs a retry per attempt).
    ours.setLevel(logging.DEBUG if ctx.verbosity >= DEBUG else logging.INFO)
    retry.setLevel(logging.DEBUG if ctx.verbosity >= VERBOSE else logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        ours.setLevel(saved[1])
        retry.setLevel(saved[2])


async def _guarded(command: Callable[[], Awaitable[int]], ctx: Context) -> int:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    installed: list[signal.Signals] = []
    # Signal handlers only exist in the main thread (tests run main() in a worker thread too).
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, ctx._on_signal, signum, main)
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover (Windows)
                continue
            installed.append(signum)
    try:
        return await command()
    except asyncio.CancelledError:
        if ctx.interrupted is None:
            raise
        main.uncancel()
        return ctx.exit_code(EXIT_PARTIAL)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def one_line(exc: BaseException) -> str:
    """An error on one line: SLS errors with code and request id, others with their class."""
    text = str(exc) if isinstance(exc, SlsError) else f"{type(exc).__name__}: {exc}"
    return safe_text(" ".join(text.split()), 1000)


def run(
    command: Callable[[argparse.Namespace, Context], Awaitable[int]], args: argparse.Namespace, ctx: Context
) -> int:
    """Run ``command`` to its exit code; usage errors, SLS errors, signals and a closed pipe
    each end as one line on stderr (a traceback only with ``--debug``)."""
    with _logging(ctx):
        try:
            code = asyncio.run(_guarded(lambda: command(args, ctx), ctx))
        except KeyboardInterrupt:  # before the handlers were installed, or after
            ctx.interrupted = signal.SIGINT
            code = ctx.exit_code(EXIT_PARTIAL)
        except UsageError as exc:
            ctx.err.write(f"aiosls: error: {exc}\n")
            return EXIT_USAGE
        except BrokenPipeError:
            # The reader (e.g. `| head`) went away: stop quietly, like other shell tools.
            if ctx.out is sys.stdout:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            return 0
        except Exception as exc:
            if ctx.verbosity >= DEBUG:
                traceback.print_exc(file=ctx.err)
            ctx.err.write(f"aiosls: {one_line(exc)}\n")
            if not isinstance(exc, SlsError) and ctx.verbosity < DEBUG:
                ctx.err.write("aiosls: run with --debug for the traceback\n")
            from .exits import exit_code

            return exit_code([exc], succeeded=0) if isinstance(exc, SlsError) else EXIT_PARTIAL
    if ctx.interrupted is not None and not ctx.reported:
        ctx.err.write(f"aiosls: interrupted ({ctx.interrupted.name})\n")
    return code


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def summary_line(
    *, total: int, ok: int, retries: int, seconds: float, interrupted: signal.Signals | None
) -> str:
    """``2,000 groups, 1,981 ok, 19 failed, 412 retries absorbed, 93 s`` (``, interrupted by
    SIGINT: partial results`` when a signal stopped the run)."""
    duration = f"{seconds:.1f} s" if seconds < 10 else f"{seconds:,.0f} s"
    line = (
        f"{_count(total, 'group', 'groups')}, {ok:,} ok, {total - ok:,} failed, "
        f"{_count(retries, 'retry', 'retries')} absorbed, {duration}"
    )
    if interrupted is not None:
        line += f", interrupted by {interrupted.name}: partial results"
    return line
