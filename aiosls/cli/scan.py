"""``aiosls scan``: discover every consumer group of projects and show their checkpoints.

Discovery (ListLogStores, ListConsumerGroup) runs here rather than in ``svc.scan()`` so the
progress display can say how many projects are being discovered and how many groups were found
so far; the reading is the library's fan-out (``get_checkpoints_many``) fed as groups are
found. The statuses come from :func:`aiosls.cli.triage.evaluate`.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .options import add_connection_args, add_output_args, concurrency

if TYPE_CHECKING:
    import asyncio

    from ..errors import SlsError
    from ..models import CheckpointResult, CheckpointTarget
    from ..service import CheckpointService
    from .output import NullProgress
    from .run import Context

__all__ = ["Sweep", "add_arguments", "command", "discover", "report", "sweep"]

DESCRIPTION = (
    "Discover every consumer group of PROJECTs (optionally only logstores matching a glob)\n"
    "and read their checkpoints: a table worst first, or JSON/NDJSON rows with status and ages."
)
#: Failure lines printed under a table (the table and --format json hold them all).
MAX_FAILURE_LINES = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scan's own options."""
    parser.add_argument("projects", nargs="+", metavar="PROJECT")
    parser.add_argument("--logstore", metavar="GLOB", help="only logstores matching this glob")
    add_reading_args(parser)
    add_connection_args(parser)


def add_reading_args(parser: argparse.ArgumentParser) -> None:
    """Options of every command that reads many groups (``scan``, ``demo``)."""
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
    add_output_args(parser)
    parser.add_argument("--problems", action="store_true", help="show only groups whose status is not ok")


async def discover(
    svc: CheckpointService,
    projects: Sequence[str],
    *,
    logstore_glob: str | None,
    concurrency: int,
    failures: list[CheckpointResult],
    progress: NullProgress,
) -> AsyncIterator[CheckpointTarget]:
    """Yield a target per consumer group of ``projects``, a logstore's groups as soon as they
    are listed. A listing that fails becomes a result in ``failures`` (its target names the
    scope: empty logstore or group) and hides nothing else."""
    import asyncio

    from ..errors import SlsError
    from ..models import CheckpointResult, CheckpointTarget

    found: asyncio.Queue[list[CheckpointTarget] | None] = asyncio.Queue()
    limit = asyncio.Semaphore(concurrency)

    async def one_logstore(project: str, logstore: str) -> None:
        try:
            async with limit:
                groups = await svc.list_consumer_groups(project, logstore)
        except SlsError as exc:
            failures.append(CheckpointResult(CheckpointTarget(project, logstore, ""), error=exc))
            groups = []
        found.put_nowait([CheckpointTarget(project, logstore, g.name) for g in groups])
        progress.found(len(groups))

    async def one_project(project: str) -> None:
        try:
            async with limit:
                logstores = await svc.list_logstores(project)
        except SlsError as exc:
            failures.append(CheckpointResult(CheckpointTarget(project, "", ""), error=exc))
            found.put_nowait([])
        else:
            if logstore_glob is not None:
                logstores = [s for s in logstores if fnmatch.fnmatchcase(s, logstore_glob)]
            async with asyncio.TaskGroup() as tg:
                for logstore in logstores:
                    tg.create_task(one_logstore(project, logstore))
        progress.project_done()

    async def every_project() -> None:
        # Runs ahead of the reading (the fan-out pulls targets as workers free up), so the
        # progress display's total is final as soon as discovery is over.
        try:
            async with asyncio.TaskGroup() as tg:
                for project in projects:
                    tg.create_task(one_project(project))
            progress.discovered()
        finally:
            found.put_nowait(None)

    progress.discovering(len(projects))
    runner = asyncio.ensure_future(every_project())
    try:
        while (batch := await found.get()) is not None:
            for target in batch:
                yield target
        await runner  # a bug in discovery propagates
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


class Sweep:
    """What a scan read: every result (none kept when streamed), its errors and counts."""

    def __init__(self) -> None:
        self.results: list[CheckpointResult] = []
        self.errors: list[SlsError] = []
        self.total = 0
        self.ok = 0
        self.seconds = 0.0
        self.retries = 0
        self.interrupted = False


def _now(svc: CheckpointService) -> datetime:
    """Now on the server's clock, as far as the service has learned it (ages are then true)."""
    return datetime.now(UTC) + svc.clock_offset


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


async def sweep(
    svc: CheckpointService,
    projects: Sequence[str],
    args: argparse.Namespace,
    ctx: Context,
    *,
    logstore_glob: str | None = None,
) -> Sweep:
    """Discover and read; NDJSON lines are written as results arrive. A signal stops the
    sending and keeps what was read."""
    from .output import progress_for
    from .triage import Status, evaluate, group_dict

    result = Sweep()
    failures: list[CheckpointResult] = []
    streaming = args.format == "ndjson"
    # NDJSON lines on the same terminal would run through the live display (and are progress
    # enough): the display is for output that comes at the end.
    progress = progress_for(
        ctx.err_console, enabled=ctx.show_progress and not (streaming and ctx.out.isatty())
    )

    def take(r: CheckpointResult) -> None:
        result.total += 1
        if r.error is None:
            result.ok += 1
        else:
            result.errors.append(r.error)
        progress.advance(r.ok)
        if not streaming:
            result.results.append(r)
            return
        now = _now(svc)
        view = evaluate(r, now, stale_after=args.stale_after)
        if not args.problems or view.status is not Status.OK:
            ctx.out.write(_dumps(group_dict(view, now)) + "\n")
            ctx.out.flush()

    async def read() -> None:
        targets = discover(
            svc,
            projects,
            logstore_glob=logstore_glob,
            concurrency=args.concurrency,
            failures=failures,
            progress=progress,
        )
        async with svc.get_checkpoints_many(
            targets, concurrency=args.concurrency, per_project_concurrency=args.per_project_concurrency
        ) as stream:
            async for r in stream:
                take(r)
                while failures:
                    take(failures.pop(0))
        while failures:
            take(failures.pop(0))

    started = time.perf_counter()
    try:
        result.interrupted = await ctx.interruptible(read())
        while failures:  # a discovery failure noted just before the signal
            take(failures.pop(0))
    finally:
        progress.stop()  # before anything else is printed to the terminal
        result.seconds = time.perf_counter() - started
        result.retries = svc.retries
    return result


def _where(r: CheckpointResult) -> str:
    t = r.target
    return "/".join(part for part in (t.project, t.logstore, t.consumer_group) if part)


def report(
    swept: Sweep, args: argparse.Namespace, ctx: Context, now: datetime, *, notes: Sequence[str] = ()
) -> None:
    """The table or JSON document of a sweep (NDJSON was streamed), failure lines under a
    table, ``notes``, then the summary line: always the last line of stderr."""
    from .output import cell, print_table, severity_style
    from .run import one_line, summary_line
    from .triage import Status, evaluate, group_dict, human_age, worst_first

    views = worst_first([evaluate(r, now, stale_after=args.stale_after) for r in swept.results])
    shown = [v for v in views if not args.problems or v.status is not Status.OK]
    if args.format == "json":
        ctx.out.write(_dumps([group_dict(v, now) for v in shown]) + "\n")
    elif args.format == "table":
        rows = []
        for v in shown:
            t = v.result.target
            cps = v.result.checkpoints or ()
            consumers = sorted({cp.consumer for cp in cps if cp.consumer})
            more = f",+{len(consumers) - 3}" if len(consumers) > 3 else ""
            failed = v.result.error is not None
            status = cell(v.label)
            status.stylize(severity_style(v.status.severity))
            rows.append(
                [
                    cell(t.project),
                    cell(t.logstore or "*"),
                    cell(t.consumer_group or "*"),
                    cell("-" if failed else len(cps)),
                    cell("-" if failed else sum(cp.committed for cp in cps)),
                    cell(v.last_commit_time.strftime("%Y-%m-%d %H:%M:%S") if v.last_commit_time else "-"),
                    cell("-" if failed else human_age(v.last_commit_age_seconds)),
                    cell(",".join(consumers[:3]) + more if consumers else "-"),
                    status,
                ]
            )
        headers = ("PROJECT", "LOGSTORE", "GROUP", "SHARDS", "COMMITTED", "LAST COMMIT (UTC)", "AGE")
        print_table(ctx.out_console, (*headers, "CONSUMERS", "STATUS"), rows, right=(3, 4, 6))
        failures = [v.result for v in views if v.result.error is not None]
        for r in failures[:MAX_FAILURE_LINES]:
            assert r.error is not None
            ctx.err.write(f"aiosls: {_where(r)}: {one_line(r.error)}\n")
        if len(failures) > MAX_FAILURE_LINES:
            ctx.err.write(
                f"aiosls: ... and {len(failures) - MAX_FAILURE_LINES:,} more failures "
                "(--format json lists every error)\n"
            )
    ctx.out.flush()
    if ctx.show_summary:
        ctx.err.write("".join(note + "\n" for note in notes))
        signum = ctx.interrupted if swept.interrupted else None
        line = summary_line(
            total=swept.total, ok=swept.ok, retries=swept.retries, seconds=swept.seconds, interrupted=signum
        )
        ctx.err.write(line + "\n")
    ctx.reported = swept.interrupted  # the summary says so (and -q wants no more than the exit code)


async def command(args: argparse.Namespace, ctx: Context) -> int:
    """Validate, scan, print; the exit code tells partial results from outages."""
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
    async with service(args, ctx.stdin) as svc:
        swept = await sweep(svc, args.projects, args, ctx, logstore_glob=args.logstore)
        now = _now(svc)
    report(swept, args, ctx, now)
    return ctx.exit_code(exit_code(swept.errors, succeeded=swept.ok))
