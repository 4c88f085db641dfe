"""``aiosls checkpoints PROJECT LOGSTORE GROUP``: one consumer group's checkpoints, per shard."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .options import add_connection_args, add_output_args, int_in

if TYPE_CHECKING:
    from .run import Context

__all__ = ["add_arguments", "command"]

DESCRIPTION = (
    "Read one consumer group's checkpoint per shard: update time, age, consumer and status\n"
    "(JSON keeps the raw cursor)."
)
#: SLS shard ids are non-negative 32-bit integers.
_shard = int_in(0, 2**31 - 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's positional names and options."""
    parser.add_argument("project")
    parser.add_argument("logstore")
    parser.add_argument("group")
    parser.add_argument("--shard", type=_shard, default=None, help="only this shard")
    add_output_args(parser)
    add_connection_args(parser)


async def command(args: argparse.Namespace, ctx: Context) -> int:
    """GetCheckPoint (and ListShards when ``--shard`` names no shard)."""
    from ..errors import ValidationError
    from ..names import validate_consumer_group, validate_logstore, validate_project
    from .connect import service
    from .exits import EXIT_OK
    from .output import cell, print_table, severity_style
    from .run import UsageError
    from .triage import checkpoint_dict, human_age, shard_status

    try:
        validate_project(args.project)
        validate_logstore(args.logstore)
        validate_consumer_group(args.group)
    except ValidationError as exc:
        raise UsageError(exc.message) from None
    async with service(args, ctx.stdin) as svc:
        cps = await svc.get_checkpoints(args.project, args.logstore, args.group, shard=args.shard)
        if args.shard is not None and not cps:
            # GetCheckPoint answers [] for a shard that does not exist: say which ones do.
            ids = sorted(s.shard_id for s in await svc.list_shards(args.project, args.logstore))
            listed = ", ".join(map(str, ids[:20])) + (", ..." if len(ids) > 20 else "")
            raise UsageError(
                f"--shard {args.shard}: no such shard; {args.logstore} has {len(ids)} "
                f"shard{'s' if len(ids) != 1 else ''} ({listed or 'none'})"
            )
        now = datetime.now(UTC) + svc.clock_offset
    cps = sorted(cps, key=lambda cp: cp.shard)
    if args.format == "table":
        rows = []
        for cp in cps:
            status = shard_status(cp, now, stale_after=args.stale_after)
            age = (now - cp.update_time).total_seconds() if cp.committed else None
            label = cell(status.label)
            label.stylize(severity_style(status.severity))
            rows.append(
                [
                    cell(cp.shard),
                    cell(cp.update_time.strftime("%Y-%m-%d %H:%M:%S") if cp.committed else "-"),
                    cell(human_age(age)),
                    cell(cp.consumer or "-"),
                    label,
                ]
            )
        print_table(
            ctx.out_console, ("SHARD", "UPDATED (UTC)", "AGE", "CONSUMER", "STATUS"), rows, right=(0, 2)
        )
    else:
        docs = [checkpoint_dict(cp, now, stale_after=args.stale_after) for cp in cps]
        lines = [json.dumps(docs, ensure_ascii=False)] if args.format == "json" else []
        lines += [json.dumps(d, ensure_ascii=False) for d in docs] if args.format == "ndjson" else []
        ctx.out.write("".join(line + "\n" for line in lines))
    return EXIT_OK
