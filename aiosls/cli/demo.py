"""``aiosls demo``: the embedded emulator, a live seeded fleet, and a few lag sweeps of it.

No account needed. The fleet has data being written and simulated consumers (one group of each
behaviour: healthy, slow, stalled, stopped, rewinding); the demo sweeps it :data:`DEMO_SWEEPS`
times, moving the emulator's simulated clock :data:`DEMO_STEP_SECONDS` on in between, so the
verdicts that need a trend (STALL, WARN, REWIND) appear within seconds of real time.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from .options import float_in, int_in
from .scan import add_reading_args

if TYPE_CHECKING:
    import random

    from ..discovery import DiscoveryProgress
    from ..fanout import LagStream
    from .run import Context

__all__ = ["add_arguments", "command", "demo_seed"]

DESCRIPTION = (
    "Start the emulator in-process with a live fleet (data written, simulated consumers),\n"
    "sweep its lag a few times through CheckpointService and show the verdicts."
)
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


#: The live logstore: one consumer group per simulated behaviour, and its starting lag.
LIVE_LOGSTORE: Final = "orders-live"
LIVE_GROUPS: Final = {
    "cg-healthy": ("healthy", 0.0),
    "cg-slow": ("slow", 120.0),
    "cg-stalled": ("stalled", 300.0),
    "cg-stopped": ("stopped", 600.0),
    "cg-rewinding": ("rewinding", 0.0),
}
#: Observations the demo makes, and the simulated seconds between two of them: enough for the
#: rewinding group to jump back (10 s after start) and for STALL and WARN to show a trend.
DEMO_SWEEPS: Final = 4
DEMO_STEP_SECONDS: Final = 15.0
#: Packages per second per shard: live on orders-live, and in the rest of the fleet.
_LIVE_RATE: Final = 2
_FLEET_RATE: Final = 0.2
#: Shards of orders-live (at most): enough to show each behaviour.
_LIVE_SHARDS: Final = 4
#: Data already in the fleet's shards (the stale groups' lag goes up to 6 h).
_FLEET_HISTORY: Final = 7 * 3600


def demo_seed(
    *, projects: int, logstores: int, groups: int, shards: int, now: datetime, rng: random.Random
) -> dict[str, Any]:
    """A realistic fleet in the emulator's seed format, with data being written: a mix of
    fresh (consumed by a healthy simulated consumer), stale (a dead consumer far behind),
    never-committed and unassigned (no consumer) groups; plus, in the first project, the
    ``orders-live`` logstore with one group of each simulated behaviour."""
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
                group: dict[str, Any] = {"timeout": 60, "order": False, "checkpoints": cps}
                if kind == "fresh":
                    group["simulate"] = "healthy"
                if kind != "never":
                    for shard in range(shards):
                        lag_s = rng.uniform(0, 40) if kind != "stale" else rng.uniform(900, 6 * 3600)
                        committed = rng.uniform(0, 10) if kind != "stale" else lag_s
                        cps[str(shard)] = {
                            "lag_seconds": round(lag_s, 1),
                            "consumer": "" if kind == "unassigned" else f"worker-{(shard % 2) + 1}",
                            "update_time": now_us - int(committed * 1_000_000),
                        }
                cgs[f"cg-{('alerting', 'etl', 'archiver', 'search')[g % 4]}-{g}"] = group
            stores[store] = {
                "shards": shards,
                "write_rate": _FLEET_RATE,
                "history_seconds": _FLEET_HISTORY,
                "history_rate": _FLEET_RATE,
                "consumer_groups": cgs,
            }
        if p == 0:
            stores[LIVE_LOGSTORE] = {
                "shards": min(shards, _LIVE_SHARDS),
                "write_rate": _LIVE_RATE,
                "history_seconds": 3600,
                "consumer_groups": {
                    name: {
                        "simulate": behaviour,
                        "checkpoints": {
                            str(shard): {"lag_seconds": lag, "consumer": f"{behaviour}-consumer"}
                            for shard in range(min(shards, _LIVE_SHARDS))
                        },
                    }
                    for name, (behaviour, lag) in LIVE_GROUPS.items()
                },
            }
        fleet[f"demo-project-{p + 1}"] = {"logstores": stores}
    return {"projects": fleet}


async def command(args: argparse.Namespace, ctx: Context) -> int:
    """Check the fleet's size, start the emulator, observe it a few times as a user would
    observe SLS (advancing the emulator's simulated time in between), print the last verdicts."""
    import random

    from ..credentials import Credentials
    from ..emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, Emulator, FaultConfig
    from ..service import CheckpointService
    from .exits import exit_code
    from .run import UsageError
    from .scan import Sweep, health_args, report, sweep

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
    health = health_args(args, window=DEMO_SWEEPS)
    projects = sorted(seed["projects"])
    sweeps: list[Sweep] = []
    async with emulator as emu:
        if ctx.show_summary:
            ctx.err.write(
                f"aiosls demo: emulator on {emu.endpoint}; {DEMO_SWEEPS} sweeps of {len(projects)} "
                f"project(s), {DEMO_STEP_SECONDS:g} simulated seconds apart\n"
            )
            ctx.err.flush()

        def simulated_now() -> datetime:
            # The demo moves the emulator's clock on; the client reads it as a (known) skew.
            return datetime.now(UTC) + emu.clock_offset

        # What a user does against the real service: only the endpoint (and the clock) differ.
        async with CheckpointService(
            emu.endpoint,
            Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET),
            signature_version="v4",
            region="cn-hangzhou",
            clock=simulated_now,
        ) as svc:

            def open_stream(hook: Callable[[DiscoveryProgress], None]) -> LagStream:
                return svc.scan_lag(
                    projects,
                    concurrency=args.concurrency,
                    per_project_concurrency=args.per_project_concurrency,
                    on_discovery=hook,
                )

            quiet_stream = argparse.Namespace(**{**vars(args), "format": "json"})
            for n in range(DEMO_SWEEPS):
                if n:
                    emu.advance(DEMO_STEP_SECONDS)
                last = n == DEMO_SWEEPS - 1
                # Only the last observation is printed (NDJSON streams it): the others fill the window.
                swept = await sweep(
                    svc, open_stream, args if last else quiet_stream, ctx, health, projects=len(projects)
                )
                sweeps.append(swept)
                if ctx.show_summary and not last and not swept.interrupted:
                    counts = Counter(v.status.name for v in swept.views)
                    seen = ", ".join(f"{k} {counts[k]}" for k in _ORDER if counts[k])
                    ctx.err.write(f"aiosls demo: sweep {n + 1}: {seen}\n")
                    ctx.err.flush()
                if swept.interrupted:
                    break
            requests = svc.requests_sent
        injected = {kind: n for kind, n in sorted(emu.faults.injected.items()) if n}
    seconds = sum(s.seconds for s in sweeps)
    rate = f"{requests / seconds:,.0f}" if seconds > 0 else "-"
    faults_text = ", ".join(f"{kind}={n}" for kind, n in injected.items()) or "none"
    note = (
        f"aiosls demo: {requests:,} requests in {len(sweeps)} sweeps ({rate}/s); "
        f"faults injected: {faults_text}"
    )
    swept = sweeps[-1]
    swept.retries = sum(s.retries for s in sweeps)
    report(swept, args, ctx, notes=[note])
    return ctx.exit_code(exit_code(swept.errors, succeeded=swept.ok))


_ORDER: Final = ("ERR", "REWIND", "STOP", "STALL", "WARN", "OK")
