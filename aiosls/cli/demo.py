"""``aiosls demo``: the embedded emulator, a seeded fleet, and a scan of it (no account needed)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from .options import float_in, int_in
from .scan import add_reading_args

if TYPE_CHECKING:
    import random

    from .run import Context

__all__ = ["add_arguments", "command", "demo_seed"]

DESCRIPTION = "Start the emulator in-process, seed a fleet, scan it through CheckpointService."
# `aiosls demo` builds its whole fleet in memory: keep it to what a laptop scans in minutes.
MAX_DEMO_PROJECTS: Final = 1000
MAX_DEMO_LOGSTORES: Final = 1000
MAX_DEMO_GROUPS: Final = 30  # the SLS limit per logstore
MAX_DEMO_SHARDS: Final = 256  # the SLS limit per logstore
MAX_DEMO_TARGETS: Final = 100_000  # consumer groups in the fleet
MAX_DEMO_CHECKPOINTS: Final = 1_000_000  # consumer groups x shards
MAX_DEMO_LATENCY_MS: Final = 3_600_000
_rate = float_in(0.0, 1.0, "a share")
_latency_ms = float_in(0.0, MAX_DEMO_LATENCY_MS, "a number of milliseconds")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The fleet, the faults, and the reading options of ``scan``."""
    parser.add_argument(
        "--projects", type=int_in(1, MAX_DEMO_PROJECTS), default=3, help=f"1..{MAX_DEMO_PROJECTS}"
    )
    parser.add_argument(
        "--logstores",
        type=int_in(1, MAX_DEMO_LOGSTORES),
        default=10,
        help=f"logstores per project (1..{MAX_DEMO_LOGSTORES})",
    )
    parser.add_argument(
        "--groups",
        type=int_in(1, MAX_DEMO_GROUPS),
        default=3,
        help=f"consumer groups per logstore (1..{MAX_DEMO_GROUPS})",
    )
    parser.add_argument(
        "--shards",
        type=int_in(1, MAX_DEMO_SHARDS),
        default=4,
        help=f"shards per logstore (1..{MAX_DEMO_SHARDS})",
    )
    parser.add_argument("--throttle-rate", type=_rate, default=0.0, help="inject 403 ReadQuotaExceed")
    parser.add_argument("--error-rate", type=_rate, default=0.0, help="inject 500/503/HTML 502")
    parser.add_argument("--reset-rate", type=_rate, default=0.0, help="inject connection resets")
    parser.add_argument("--latency-ms", type=_latency_ms, default=0.0, help="added server latency")
    parser.add_argument(
        "--fault-seed", type=int_in(0, 2**63 - 1), default=1, help="seed for faults and the fleet"
    )
    add_reading_args(parser)


def demo_seed(
    *, projects: int, logstores: int, groups: int, shards: int, now: datetime, rng: random.Random
) -> dict[str, Any]:
    """A realistic fleet in the emulator's seed format: a mix of fresh, stale, never-committed
    and unassigned (no consumer) checkpoints."""
    import base64

    now_us = int(now.timestamp() * 1_000_000)
    names = (
        "app-log",
        "nginx-access",
        "audit",
        "billing-events",
        "clicks",
        "orders",
        "payments",
        "search-log",
        "metrics-raw",
        "security",
    )
    fleet: dict[str, Any] = {}
    for p in range(projects):
        stores: dict[str, Any] = {}
        for s in range(logstores):
            base = names[s % len(names)]
            store = base if s < len(names) else f"{base}-{s // len(names)}"
            cgs: dict[str, Any] = {}
            for g in range(groups):
                kind = rng.choices(("fresh", "stale", "never", "unassigned"), (6, 2, 1, 1))[0]
                cps: dict[str, Any] = {}
                if kind != "never":
                    for shard in range(shards):
                        lag_s = rng.uniform(0, 40) if kind != "stale" else rng.uniform(900, 6 * 3600)
                        consumer = "" if kind == "unassigned" else f"worker-{(shard % 2) + 1}"
                        cursor = str(1_700_000_000_000_000 + rng.randrange(10**9))
                        cps[str(shard)] = {
                            "checkpoint": base64.b64encode(cursor.encode()).decode(),
                            "consumer": consumer,
                            "update_time": now_us - int(lag_s * 1_000_000),
                        }
                cgs[f"cg-{('alerting', 'etl', 'archiver', 'search')[g % 4]}-{g}"] = {
                    "timeout": 60,
                    "order": False,
                    "checkpoints": cps,
                }
            stores[store] = {"shards": shards, "consumer_groups": cgs}
        fleet[f"demo-project-{p + 1}"] = {"logstores": stores}
    return {"projects": fleet}


async def command(args: argparse.Namespace, ctx: Context) -> int:
    """Check the fleet's size, start the emulator, scan it as a user would scan SLS."""
    import random

    from ..credentials import Credentials
    from ..emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, Emulator, FaultConfig
    from ..service import CheckpointService
    from .exits import exit_code
    from .run import UsageError
    from .scan import report, sweep

    targets = args.projects * args.logstores * args.groups
    if targets > MAX_DEMO_TARGETS:
        raise UsageError(
            f"--projects x --logstores x --groups is {targets} consumer groups; "
            f"the demo allows {MAX_DEMO_TARGETS}"
        )
    if targets * args.shards > MAX_DEMO_CHECKPOINTS:
        raise UsageError(
            f"the fleet would hold {targets * args.shards} checkpoints (consumer groups x --shards); "
            f"the demo allows {MAX_DEMO_CHECKPOINTS}"
        )
    try:
        # The emulator validates the fleet and the faults: what it rejects is a usage error (the
        # SeedError or ValueError names the bad value), not a failed target.
        seed = demo_seed(
            projects=args.projects,
            logstores=args.logstores,
            groups=args.groups,
            shards=args.shards,
            now=datetime.now(UTC),
            rng=random.Random(args.fault_seed),
        )
        faults = FaultConfig(
            throttle_rate=args.throttle_rate,
            error_rate=args.error_rate,
            reset_rate=args.reset_rate,
            latency_ms=args.latency_ms,
        )
        emulator = Emulator(seed=seed, faults=faults, fault_seed=args.fault_seed)
    except ValueError as exc:  # SeedError is a ValueError
        from .._text import safe_text

        raise UsageError(safe_text(" ".join(str(exc).split()), 500)) from None
    async with emulator as emu:
        if ctx.show_summary:
            ctx.err.write(
                f"aiosls demo: emulator on {emu.endpoint}; scanning {len(seed['projects'])} project(s)\n"
            )
            ctx.err.flush()
        # Exactly what a user does against the real service: only the endpoint differs.
        async with CheckpointService(
            emu.endpoint,
            Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET),
            signature_version="v4",
            region="cn-hangzhou",
        ) as svc:
            swept = await sweep(svc, sorted(seed["projects"]), args, ctx)
            requests = svc.requests_sent
            now = datetime.now(UTC) + svc.clock_offset
        injected = {kind: n for kind, n in sorted(emu.faults.injected.items()) if n}
    rate = f"{requests / swept.seconds:,.0f}" if swept.seconds > 0 else "-"
    faults_text = ", ".join(f"{kind}={n}" for kind, n in injected.items()) or "none"
    note = f"aiosls demo: {requests:,} requests ({rate}/s); faults injected: {faults_text}"
    report(swept, args, ctx, now, notes=[note])
    return ctx.exit_code(exit_code(swept.errors, succeeded=swept.ok))
