"""``aiosls lag``: how far behind each consumer group is, and its verdict (exit 1 if not OK).

``aiosls lag PROJECT`` discovers every group of the project (``svc.scan_lag``); with LOGSTORE,
that logstore's groups (one ListConsumerGroup, then ``svc.get_lag_many``); with GROUP, that group
only. ``--watch N`` sweeps again every N seconds with one :class:`aiosls.HealthEvaluator` whose
window fills sweep after sweep, so STALL and WARN (which need a trend) appear; Ctrl-C or SIGTERM
ends it with the last sweep printed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from .options import add_connection_args, float_in, int_in
from .scan import add_reading_args

if TYPE_CHECKING:
    from ..discovery import DiscoveryProgress
    from ..fanout import LagStream
    from ..health import HealthEvaluator
    from ..models import CheckpointTarget
    from ..service import CheckpointService
    from .run import Context
    from .scan import Sweep

__all__ = ["add_arguments", "command"]

DESCRIPTION = (
    "Measure consumer-group lag (receive time of the newest data minus that of the last data\n"
    "consumed, per shard; a group's lag is its worst shard's) and judge it: OK, WARN, STALL,\n"
    "STOP, REWIND or ERR. Worst first. Exit 0 when every group is OK, 1 otherwise.\n"
    "With --watch, sweep again every N seconds: verdicts that need a trend appear as the\n"
    "window of observations fills."
)
#: Observations a --watch window holds (the evaluator's default).
DEFAULT_WINDOW: Final = 10
_watch_seconds = float_in(0.0, 86_400.0, "a number of seconds", low_open=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """PROJECT [LOGSTORE [GROUP]], the reading and health options, ``--watch``."""
    parser.add_argument("project", metavar="PROJECT")
    parser.add_argument("logstore", nargs="?", metavar="LOGSTORE", help="only this logstore's groups")
    parser.add_argument("group", nargs="?", metavar="GROUP", help="only this consumer group")
    add_reading_args(parser)
    parser.add_argument(
        "--watch",
        type=_watch_seconds,
        default=None,
        metavar="SECONDS",
        help="sweep again every SECONDS until Ctrl-C, judging over the last --window sweeps",
    )
    parser.add_argument(
        "--window",
        type=int_in(1, 1000),
        default=DEFAULT_WINDOW,
        metavar="N",
        help=f"observations a verdict looks back over with --watch (default: {DEFAULT_WINDOW})",
    )
    add_connection_args(parser)


def _validate(args: argparse.Namespace) -> None:
    from ..errors import ValidationError
    from ..names import validate_consumer_group, validate_logstore, validate_project
    from .run import UsageError

    try:
        validate_project(args.project)
        if args.logstore is not None:
            validate_logstore(args.logstore)
        if args.group is not None:
            validate_consumer_group(args.group)
    except ValidationError as exc:
        raise UsageError(exc.message) from None


async def _one_sweep(
    svc: CheckpointService, args: argparse.Namespace, ctx: Context, health: HealthEvaluator
) -> Sweep:
    """One sweep: discovery of the project, a logstore's groups, or one group."""
    from ..errors import SlsError
    from ..models import CheckpointTarget, LagResult
    from .scan import Sweep, sweep
    from .triage import evaluate

    bounds = {"concurrency": args.concurrency, "per_project_concurrency": args.per_project_concurrency}
    if args.logstore is None:

        def discover(hook: Callable[[DiscoveryProgress], None]) -> LagStream:
            return svc.scan_lag(args.project, on_discovery=hook, **bounds)

        return await sweep(svc, discover, args, ctx, health, projects=1)
    if args.group is not None:
        targets = [CheckpointTarget(args.project, args.logstore, args.group)]
    else:
        try:
            groups = await svc.list_consumer_groups(args.project, args.logstore)
        except SlsError as exc:
            # The logstore could not be listed: that is this sweep's one (failed) row.
            failed = Sweep()
            failed.total = 1
            failed.errors.append(exc)
            failed.views.append(
                evaluate(LagResult(CheckpointTarget(args.project, args.logstore, ""), error=exc), health)
            )
            failed.not_ok = 1
            return failed
        targets = [CheckpointTarget(args.project, args.logstore, g.name) for g in groups]

    def explicit(_hook: Callable[[DiscoveryProgress], None]) -> LagStream:
        return svc.get_lag_many(targets, **bounds)

    return await sweep(svc, explicit, args, ctx, health, known_total=len(targets))


async def command(args: argparse.Namespace, ctx: Context) -> int:
    """Sweep (once, or every --watch seconds), judge, print; exit 1 unless every group is OK."""
    import asyncio

    from .connect import service
    from .exits import EXIT_OK, EXIT_PARTIAL, exit_code
    from .scan import health_args, report

    _validate(args)
    watching = args.watch is not None
    health = health_args(args, window=args.window if watching else 1)
    seen: set[CheckpointTarget] = set()
    n = 0
    swept: Sweep | None = None
    async with service(args, ctx.stdin) as svc:
        try:
            while True:
                n += 1
                current = await _one_sweep(svc, args, ctx, health)
                swept = current
                # A group gone since the last sweep (deleted, or its logstore) must not linger.
                now_seen = {v.result.target for v in current.views}
                for gone in seen - now_seen:
                    health.forget(gone)
                seen = now_seen
                if (
                    watching
                    and not current.interrupted
                    and ctx.out_console.is_terminal
                    and args.format == "table"
                ):
                    ctx.out_console.clear()
                notes = [f"aiosls lag: sweep {n}, {current.requests:,} requests"] if watching else []
                report(current, args, ctx, layout="lag", notes=notes)
                if not watching or current.interrupted:
                    break
                if await ctx.interruptible(asyncio.sleep(args.watch)):
                    break
        except asyncio.CancelledError:
            # A signal that fell between two sections (a sweep just ended, or a logstore was being
            # listed): the last whole sweep is printed already; end as after any signal.
            task = asyncio.current_task()
            if ctx.interrupted is None or swept is None or task is None:
                raise
            task.uncancel()
    assert swept is not None
    failed = exit_code(swept.errors, succeeded=swept.ok)
    if failed != EXIT_OK:
        return ctx.exit_code(failed)
    return ctx.exit_code(EXIT_PARTIAL if swept.not_ok else EXIT_OK)
