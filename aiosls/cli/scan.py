"""``aiosls scan``: discover every consumer group of projects and show their lag and status.

Discovery and reading are the library's ``svc.scan_lag()`` (one discovery, under the same
bounds as the reads); its ``on_discovery`` hook feeds the progress display. Each result is
judged as it arrives by :func:`aiosls.cli.triage.evaluate`: a scan is one observation, so the
verdict is ``HealthEvaluator(window=1)``'s. :func:`sweep` and :func:`report` are shared with
``aiosls lag`` and ``aiosls demo``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from .options import add_connection_args, add_output_args, concurrency, float_in, seconds

if TYPE_CHECKING:
    from ..discovery import DiscoveryProgress
    from ..errors import SlsError
    from ..fanout import LagStream
    from ..health import HealthEvaluator
    from ..service import CheckpointService
    from .output import NullProgress
    from .run import Context
    from .triage import GroupView

__all__ = ["Sweep", "add_arguments", "add_reading_args", "command", "health_args", "report", "sweep"]

DESCRIPTION = (
    "Discover every consumer group of PROJECTs (optionally only logstores matching a glob),\n"
    "measure each group's lag and judge it from this one observation (OK, WARN, STOP, REWIND,\n"
    "ERR; STALL needs two, see `aiosls lag --watch`): a table worst first, or JSON/NDJSON rows."
)
#: Failure lines printed under a table (the table and --format json hold them all).
MAX_FAILURE_LINES = 10
_positive_seconds = float_in(0.0, 30 * 86_400.0, "a number of seconds", low_open=True)

#: Opens the lag stream of one sweep, given the discovery hook (ignored without discovery).
OpenStream = Callable[[Callable[["DiscoveryProgress"], None]], "LagStream"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scan's own options."""
    parser.add_argument("projects", nargs="+", metavar="PROJECT")
    parser.add_argument("--logstore", metavar="GLOB", help="only logstores matching this glob")
    add_reading_args(parser)
    add_connection_args(parser)


def add_health_args(parser: argparse.ArgumentParser) -> None:
    """``--allowed-lag`` and ``--stop-after``: how a verdict is reached."""
    parser.add_argument(
        "--allowed-lag",
        type=seconds,
        default=60.0,
        metavar="SECONDS",
        help="lag still healthy; above it a group is WARN (default: 60)",
    )
    parser.add_argument(
        "--stop-after",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="STOP when data waits and nothing was committed for this long "
        "(default: the time the observations span, at least --allowed-lag)",
    )
    # Before lag, scan's status was commit age against --stale-after: the nearest meaning now.
    parser.add_argument("--stale-after", type=_positive_seconds, dest="stop_after", help=argparse.SUPPRESS)


def add_reading_args(parser: argparse.ArgumentParser) -> None:
    """Options of every command that reads many groups (``scan``, ``lag``, ``demo``)."""
    parser.add_argument(
        "--concurrency", type=concurrency, default=64, help="requests in flight (default: 64)"
    )
    parser.add_argument(
        "--per-project-concurrency",
        type=concurrency,
        default=None,
        metavar="N",
        help="requests in flight per project",
    )
    add_output_args(parser, stale_after=False)
    parser.add_argument("--problems", action="store_true", help="show only groups whose status is not OK")
    add_health_args(parser)


def health_args(args: argparse.Namespace, *, window: int) -> HealthEvaluator:
    """The evaluator the flags describe."""
    from ..health import HealthEvaluator

    return HealthEvaluator(allowed_lag=args.allowed_lag, window=window, stop_after=args.stop_after)


class Sweep:
    """What one sweep read: every verdict (none kept when streamed), its errors and counts."""

    def __init__(self) -> None:
        self.views: list[GroupView] = []
        self.errors: list[SlsError] = []
        self.total = 0
        self.ok = 0
        self.not_ok = 0
        self.seconds = 0.0
        self.retries = 0
        self.requests = 0
        self.interrupted = False


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class _DiscoveryDisplay:
    """Turns the library's cumulative :class:`DiscoveryProgress` into progress-display steps."""

    def __init__(self, progress: NullProgress) -> None:
        self.progress = progress
        self.projects = 0
        self.found = 0
        self.finished = False

    def __call__(self, p: DiscoveryProgress) -> None:
        for _ in range(p.projects_done - self.projects):
            self.progress.project_done()
        if p.targets_found > self.found:
            self.progress.found(p.targets_found - self.found)
        self.projects, self.found = p.projects_done, p.targets_found
        if p.finished and not self.finished:
            self.finished = True
            self.progress.discovered()


async def sweep(
    svc: CheckpointService,
    open_stream: OpenStream,
    args: argparse.Namespace,
    ctx: Context,
    health: HealthEvaluator,
    *,
    projects: int | None = None,
    known_total: int | None = None,
) -> Sweep:
    """Read one sweep and judge each result as it arrives; NDJSON lines are written then. A
    signal stops the sending and keeps what was read. ``projects`` (discovery) or
    ``known_total`` (explicit targets) sizes the progress display."""
    from ..health import Health
    from .output import progress_for
    from .triage import evaluate, group_dict

    result = Sweep()
    streaming = args.format == "ndjson"
    # NDJSON lines on the same terminal would run through the live display (and are progress
    # enough): the display is for output that comes at the end.
    progress = progress_for(
        ctx.err_console, enabled=ctx.show_progress and not (streaming and ctx.out.isatty())
    )
    display = _DiscoveryDisplay(progress)
    if projects is not None:
        progress.discovering(projects)
    elif known_total is not None:
        progress.found(known_total)
        progress.discovered()
    retries, requests = svc.retries, svc.requests_sent

    async def read() -> None:
        async with open_stream(display) as stream:
            async for r in stream:
                view = evaluate(r, health)
                result.total += 1
                if r.error is None:
                    result.ok += 1
                else:
                    result.errors.append(r.error)
                result.not_ok += view.status is not Health.OK
                progress.advance(r.ok)
                if not streaming:
                    result.views.append(view)
                elif not args.problems or view.status is not Health.OK:
                    ctx.out.write(_dumps(group_dict(view)) + "\n")
                    ctx.out.flush()

    started = time.perf_counter()
    try:
        result.interrupted = await ctx.interruptible(read())
    finally:
        progress.stop()  # before anything else is printed to the terminal
        result.seconds = time.perf_counter() - started
        result.retries = svc.retries - retries
        result.requests = svc.requests_sent - requests
    return result


def _where(v: GroupView) -> str:
    t = v.result.target
    return "/".join(part for part in (t.project, t.logstore, t.consumer_group) if part)


def _lag_cell(v: GroupView) -> str:
    from ..health import format_duration

    if v.result.error is not None:
        return "-"
    lag = v.lag_seconds
    return "-" if lag is None else format_duration(lag)


def table_rows(
    views: Sequence[GroupView], layout: Literal["scan", "lag"]
) -> tuple[list[str], list[Any], set[int]]:
    """Headers, rows and right-aligned columns of the scan or lag table (pure; cells escaped)."""
    from ..health import format_duration
    from .output import cell, severity_style

    rows = []
    for v in views:
        t = v.result.target
        failed = v.result.error is not None
        status = cell(v.label)
        status.stylize(severity_style(5 - int(v.status)))
        age = (
            "-"
            if failed
            else (
                "never" if v.last_commit_age_seconds is None else format_duration(v.last_commit_age_seconds)
            )
        )
        names = [cell(t.project), cell(t.logstore or "*"), cell(t.consumer_group or "*")]
        if layout == "lag":
            worst = v.worst_shard
            rows.append(
                [
                    *names,
                    cell(_lag_cell(v)),
                    cell("-" if worst is None else worst),
                    cell(age),
                    status,
                    cell(v.health.reason),
                ]
            )
            continue
        shards = v.result.lag.shards if v.result.lag is not None else ()
        consumers = sorted({s.consumer for s in shards if s.consumer})
        more = f",+{len(consumers) - 3}" if len(consumers) > 3 else ""
        rows.append(
            [
                *names,
                cell("-" if failed else len(shards)),
                cell("-" if failed else sum(s.checkpoint != "" for s in shards)),
                cell(_lag_cell(v)),
                cell(v.last_commit_time.strftime("%Y-%m-%d %H:%M:%S") if v.last_commit_time else "-"),
                cell(age),
                cell(",".join(consumers[:3]) + more if consumers else "-"),
                status,
            ]
        )
    if layout == "lag":
        headers = ["PROJECT", "LOGSTORE", "GROUP", "LAG", "WORST SHARD", "LAST COMMIT", "STATUS", "REASON"]
        return headers, rows, {3, 4, 5}
    headers = ["PROJECT", "LOGSTORE", "GROUP", "SHARDS", "COMMITTED", "LAG", "LAST COMMIT (UTC)", "AGE"]
    return [*headers, "CONSUMERS", "STATUS"], rows, {3, 4, 5, 7}


def report(
    swept: Sweep,
    args: argparse.Namespace,
    ctx: Context,
    *,
    layout: Literal["scan", "lag"] = "scan",
    notes: Sequence[str] = (),
    summary: bool = True,
) -> None:
    """The table or JSON document of a sweep (NDJSON was streamed), failure lines under a
    table, ``notes``, then the summary line: always the last line of stderr."""
    from ..health import Health
    from .output import print_table
    from .run import one_line, summary_line
    from .triage import group_dict, worst_first

    views = worst_first(swept.views)
    shown = [v for v in views if not args.problems or v.status is not Health.OK]
    if args.format == "json":
        ctx.out.write(_dumps([group_dict(v) for v in shown]) + "\n")
    elif args.format == "table":
        headers, rows, right = table_rows(shown, layout)
        print_table(ctx.out_console, headers, rows, right=right)
        failures = [v for v in views if v.result.error is not None]
        for v in failures[:MAX_FAILURE_LINES]:
            assert v.result.error is not None
            ctx.err.write(f"aiosls: {_where(v)}: {one_line(v.result.error)}\n")
        if len(failures) > MAX_FAILURE_LINES:
            ctx.err.write(
                f"aiosls: ... and {len(failures) - MAX_FAILURE_LINES:,} more failures "
                "(--format json lists every error)\n"
            )
    ctx.out.flush()
    if ctx.show_summary and summary:
        ctx.err.write("".join(note + "\n" for note in notes))
        signum = ctx.interrupted if swept.interrupted else None
        line = summary_line(
            total=swept.total, ok=swept.ok, retries=swept.retries, seconds=swept.seconds, interrupted=signum
        )
        ctx.err.write(line + "\n")
    ctx.reported = swept.interrupted  # the summary says so (and -q wants no more than the exit code)


def _now(svc: CheckpointService) -> datetime:
    """Now on the server's clock, as far as the service has learned it."""
    return datetime.now(UTC) + svc.clock_offset


async def command(args: argparse.Namespace, ctx: Context) -> int:
    """Validate, scan, judge, print; the exit code tells partial results from outages."""
    from ..errors import ValidationError
    from ..names import validate_project
    from .connect import service
    from .exits import exit_code
    from .run import UsageError

    for project in args.projects:
        try:
            validate_project(project)
        except ValidationError as exc:
            raise UsageError(exc.message) from None
    health = health_args(args, window=1)
    async with service(args, ctx.stdin) as svc:

        def open_stream(hook: Callable[[DiscoveryProgress], None]) -> LagStream:
            return svc.scan_lag(
                args.projects,
                logstore_filter=args.logstore,
                concurrency=args.concurrency,
                per_project_concurrency=args.per_project_concurrency,
                on_discovery=hook,
            )

        swept = await sweep(svc, open_stream, args, ctx, health, projects=len(set(args.projects)))
    report(swept, args, ctx)
    return ctx.exit_code(exit_code(swept.errors, succeeded=swept.ok))
