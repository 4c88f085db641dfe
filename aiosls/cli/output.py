"""Rendering through rich: consoles, tables, the progress display and the log handler.

On a terminal: coloured tables, a live progress display (total, rate, ETA) on stderr, and log
lines printed above it. Not a terminal: no progress, no colour, plain aligned columns without
trailing blanks, so scripts can rely on the text. Server-supplied text is escaped before it
reaches a cell (it must not move the cursor or recolour the terminal) and never read as markup.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, Final, TextIO

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from .._text import safe_text

__all__ = [
    "LOG_FORMAT",
    "NullProgress",
    "ScanProgress",
    "cell",
    "log_handler",
    "make_console",
    "plain_table",
    "print_table",
    "progress_for",
]

#: Cells hold names (at most 128 characters in SLS) and consumer ids: cap what a server sends.
MAX_CELL: Final = 256
#: The plain (not a terminal) log line.
LOG_FORMAT: Final = "aiosls: %(levelname)s %(name)s: %(message)s"
#: A plain table never wraps: scripts cut columns by position or by runs of blanks.
_UNBOUNDED_WIDTH: Final = 1_000_000
#: The most rows a terminal table gets from rich (beyond, the plain layout: rich is slow).
MAX_RICH_ROWS: Final = 1000
_STYLES: Final = {0: "bold red", 1: "red", 2: "yellow", 3: "yellow", 4: "cyan"}


def make_console(stream: TextIO) -> Console:
    """A console on ``stream``: colour and live displays only when it is a terminal."""
    if stream.isatty():
        return Console(file=stream, highlight=False, emoji=False, markup=False)
    return Console(
        file=stream,
        force_terminal=False,
        color_system=None,
        no_color=True,
        highlight=False,
        emoji=False,
        markup=False,
        width=_UNBOUNDED_WIDTH,
    )


def cell(value: object) -> Text:
    """A table cell from any value: escaped, capped, and never parsed as markup."""
    return Text(safe_text(value, MAX_CELL))


def severity_style(severity: int) -> str:
    """The colour of a STATUS cell by severity (0 the worst); ok stays plain."""
    return _STYLES.get(severity, "")


def print_table(
    console: Console,
    headers: Sequence[str],
    rows: Iterable[Sequence[Text]],
    *,
    right: Iterable[int] = (),
) -> None:
    """A table: rich's (bold header, colour) on a terminal, plain aligned columns elsewhere.

    A terminal table of more than :data:`MAX_RICH_ROWS` rows is printed plain too: rich lays
    out a few hundred rows a second, and nobody reads ten thousand rows in colour.
    """
    align_right = set(right)
    body = list(rows)
    if not console.is_terminal or len(body) > MAX_RICH_ROWS:
        console.file.write(plain_table(headers, body, right=align_right))
        return
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        header_style="bold",
        expand=False,
    )
    for i, header in enumerate(headers):
        table.add_column(header, justify="right" if i in align_right else "left", overflow="fold")
    for row in body:
        table.add_row(*row)
    console.print(table)


def _width(text: str) -> int:
    """Terminal cells ``text`` takes (wide CJK characters take two)."""
    return len(text) if text.isascii() else cell_len(text)


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[Text]], *, right: Iterable[int] = ()) -> str:
    """Columns two blanks apart, no trailing blanks, no styles: stable text for scripts."""
    align_right = set(right)
    body = [[cell.plain for cell in row] for row in rows]
    widths = [_width(h) for h in headers]
    for row in body:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], _width(text))

    def line(cells: Sequence[str]) -> str:
        padded = []
        for i, text in enumerate(cells):
            fill = " " * (widths[i] - _width(text))
            padded.append(fill + text if i in align_right else text + fill)
        return "  ".join(padded).rstrip()

    return "".join(line(cells) + "\n" for cells in [list(headers), *body])


class _RateColumn(ProgressColumn):
    """``123/s``: completed per second, as rich's own speed estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        # The first results arrive in a burst: no rate until there is a second to average over.
        if speed is None or (task.elapsed or 0.0) < 1.0:
            return Text("")
        return Text(f"{speed:,.0f}/s", style="progress.data.speed")


class NullProgress:
    """No progress display (not a terminal, or ``-q``): every method does nothing."""

    def discovering(self, projects: int) -> None:
        """Discovery of ``projects`` projects begins."""

    def project_done(self) -> None:
        """One project's consumer groups are all known."""

    def found(self, targets: int = 1) -> None:
        """``targets`` more targets to read."""

    def discovered(self) -> None:
        """Discovery is over: the total is final."""

    def advance(self, ok: bool) -> None:
        """One result arrived."""

    def stop(self) -> None:
        """Clear the display (before anything is printed to the same terminal)."""


class ScanProgress(NullProgress):
    """Two bars on stderr: projects discovered, and groups read (total, rate, ETA). Transient:
    :meth:`stop` erases it, so the table and the summary print on a clean screen."""

    def __init__(self, console: Console, *, what: str = "groups") -> None:
        self._what = what
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            _RateColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._discovery: TaskID | None = None
        self._reading = self._progress.add_task(f"reading {what}", total=None)
        self._total = 0
        self._failed = 0
        self._final = False
        self._progress.start()

    def discovering(self, projects: int) -> None:
        noun = "project" if projects == 1 else "projects"
        self._discovery = self._progress.add_task(f"discovering {projects:,} {noun}", total=projects)

    def project_done(self) -> None:
        if self._discovery is not None:
            self._progress.advance(self._discovery)

    def found(self, targets: int = 1) -> None:
        self._total += targets
        self._describe()

    def discovered(self) -> None:
        self._final = True
        if self._discovery is not None:
            self._progress.update(self._discovery, visible=False)
        self._describe()

    def advance(self, ok: bool) -> None:
        self._failed += not ok
        self._progress.advance(self._reading)
        if not ok:
            self._describe()

    def _describe(self) -> None:
        more = "" if self._final else "+"
        failed = f", {self._failed:,} failed" if self._failed else ""
        self._progress.update(
            self._reading,
            total=self._total,
            description=f"reading {self._total:,}{more} {self._what}{failed}",
        )

    def stop(self) -> None:
        self._progress.stop()


def progress_for(console: Console, *, enabled: bool, what: str = "groups") -> NullProgress:
    """A live display when ``enabled`` and ``console`` is a terminal, else :class:`NullProgress`."""
    if enabled and console.is_terminal:
        return ScanProgress(console, what=what)
    return NullProgress()


def log_handler(console: Console) -> logging.Handler:
    """Log lines that cooperate with the progress display: rich's handler on a terminal (printed
    above the live display), a plain one-line format elsewhere."""
    if console.is_terminal:
        handler: logging.Handler = RichHandler(
            console=console, show_time=False, show_path=False, markup=False, rich_tracebacks=False
        )
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        return handler
    stream: Any = console.file
    plain = logging.StreamHandler(stream)
    plain.setFormatter(logging.Formatter(LOG_FORMAT))
    return plain
