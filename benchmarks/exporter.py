"""The exporter at scale: 10,000 consumer groups x 4 shards on the emulator.

Measures what an operator sizing one exporter process needs: sweep wall time (first and steady),
SLS requests per sweep (first: cursor times unknown; steady: cached), the rendering, RSS, and
scrape latency p50/p99 *during* sweeps, scraped from another process the way Prometheus does
(OpenMetrics, gzip). The emulator runs in its own process (signature checks off: its CPU is not
what is measured), so the exporter's process holds only the exporter.

    python benchmarks/exporter.py                     # 10,000 groups x 4 shards
    python benchmarks/exporter.py --groups 2000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiosls import CheckpointService, Credentials  # noqa: E402
from aiosls.exporter.cli import SWITCH_INTERVAL, service_source  # noqa: E402
from aiosls.exporter.config import TargetConfig  # noqa: E402
from aiosls.exporter.server import ThreadedServer, start_server  # noqa: E402
from aiosls.exporter.sweeper import Exporter  # noqa: E402

PROJECT = "bench-project"
GROUPS_PER_LOGSTORE = 30  # the SLS limit

EMULATOR = """
import asyncio, sys
from aiosls.emulator import Emulator

async def main():
    async with Emulator(seed=sys.argv[1], verify_signatures=False) as emu:
        print(emu.endpoint, flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""

SCRAPER = """
import http.client, json, signal, sys, time
port = int(sys.argv[1])
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
accept = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
scrapes, sizes = [], []
conn = http.client.HTTPConnection("127.0.0.1", port)
print("ready", flush=True)
while not stop:
    at, start = time.time(), time.perf_counter()
    conn.request("GET", "/metrics", headers={"Accept": accept, "Accept-Encoding": "gzip"})
    resp = conn.getresponse()
    body = resp.read()
    if resp.status == 200:
        scrapes.append((at, time.perf_counter() - start))
        sizes.append(len(body))
    time.sleep(0.02)
print(json.dumps({"scrapes": scrapes, "bytes": sizes[-1] if sizes else 0}), flush=True)
"""


def make_seed(groups: int, shards: int, rng: random.Random) -> dict[str, Any]:
    """``groups`` consumer groups over logstores of ``shards`` shards, with seeded lag."""
    logstores: dict[str, Any] = {}
    for start in range(0, groups, GROUPS_PER_LOGSTORE):
        names = range(start, min(start + GROUPS_PER_LOGSTORE, groups))
        logstores[f"ls-{start // GROUPS_PER_LOGSTORE:04d}"] = {
            "shards": shards,
            "history_seconds": 3600,
            "history_rate": 1,
            "consumer_groups": {
                f"cg-{i:05d}": {
                    "checkpoints": {
                        str(s): {"lag_seconds": rng.choice((0, 5, 60, 600)), "consumer": f"c-{i}"}
                        for s in range(shards)
                    }
                }
                for i in names
            },
        }
    return {"projects": {PROJECT: {"logstores": logstores}}}


def rss_mib() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        seed_path = Path(tmp) / "seed.json"
        seed_path.write_text(json.dumps(make_seed(args.groups, args.shards, rng)))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        emulator = await asyncio.create_subprocess_exec(
            sys.executable, "-c", EMULATOR, str(seed_path), stdout=asyncio.subprocess.PIPE, env=env
        )
        try:
            assert emulator.stdout is not None
            endpoint = (await emulator.stdout.readline()).decode().strip()
            return await measure(args, endpoint, env)
        finally:
            emulator.terminate()
            await emulator.wait()


class GcPauses:
    """Collections that stopped the process for more than 20 ms (gc.callbacks)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._start = 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        elif (took := time.perf_counter() - self._start) > 0.02:
            self.pauses.append((info["generation"], round(took * 1000)))


async def measure(args: argparse.Namespace, endpoint: str, env: dict[str, str]) -> dict[str, Any]:
    pauses = GcPauses()
    target = TargetConfig(endpoint, (PROJECT,), region="cn-hangzhou", concurrency=args.concurrency)
    rss_before = rss_mib()
    async with CheckpointService(
        endpoint, Credentials("bench", "bench"), region="cn-hangzhou", max_connections=args.concurrency
    ) as svc:
        exporter = Exporter(
            [service_source(svc, target)],
            interval=3600,
            granularity=args.granularity,
            freeze_gc=not args.no_freeze,
        )
        if args.in_loop:
            runner, port = await start_server(exporter, "127.0.0.1", 0)
            close = runner.cleanup
        else:
            sys.setswitchinterval(SWITCH_INTERVAL)  # as the command does
            threaded = ThreadedServer(exporter, "127.0.0.1", 0)
            port = await threaded.start()
            close = threaded.aclose
        try:
            sweeps = []
            windows: list[tuple[float, float]] = []
            scraper = None
            for i in range(args.sweeps):
                if i == 1:  # from the second sweep on there is something to scrape
                    scraper = await asyncio.create_subprocess_exec(
                        sys.executable, "-c", SCRAPER, str(port), stdout=asyncio.subprocess.PIPE, env=env
                    )
                    assert scraper.stdout is not None
                    await scraper.stdout.readline()
                    # A baseline: scrapes while nothing else runs (the machine's own noise).
                    await asyncio.sleep(args.idle)
                pauses.pauses.clear()
                sent = svc.requests_sent
                cpu = time.process_time()
                start, began = time.perf_counter(), time.time()
                stats = await exporter.sweep_once()
                wall = time.perf_counter() - start
                if i >= 1:
                    windows.append((began, time.time()))
                sweeps.append(
                    {
                        "gc_pauses_ms": [ms for _, ms in pauses.pauses],
                        "wall_s": round(wall, 3),
                        "sweep_s": round(stats.duration, 3),
                        "render_s": round(wall - stats.duration, 3),
                        "cpu_s": round(time.process_time() - cpu, 3),
                        "requests": svc.requests_sent - sent,
                        "groups": stats.groups,
                        "not_ok": stats.not_ok,
                        "err": stats.errors,
                        "series": stats.series,
                    }
                )
            scrapes: dict[str, Any] = {"scrapes": [], "bytes": 0}
            if scraper is not None:
                scraper.send_signal(signal.SIGTERM)
                out, _ = await scraper.communicate()
                scrapes = json.loads(out.decode().strip().splitlines()[-1])
        finally:
            await close()
        rendered = exporter.rendered
        during = [ms for at, ms in scrapes["scrapes"] if any(a <= at <= b for a, b in windows)]
        idle = [ms for at, ms in scrapes["scrapes"] if at < windows[0][0]] if windows else []
        lat = [x * 1000 for x in during]
        base = [x * 1000 for x in idle]
        return {
            "groups": args.groups,
            "shards": args.shards,
            "granularity": args.granularity,
            "concurrency": args.concurrency,
            "sweeps": sweeps,
            "scrapes_during_sweeps": len(lat),
            "scrape_ms": {
                "p50": round(pct(lat, 0.5), 2),
                "p99": round(pct(lat, 0.99), 2),
                "max": round(max(lat), 2) if lat else None,
                "mean": round(statistics.fmean(lat), 2) if lat else None,
            },
            "scrape_ms_idle": {
                "count": len(base),
                "p50": round(pct(base, 0.5), 2),
                "p99": round(pct(base, 0.99), 2),
            },
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
            "body_bytes": {
                "text": len(rendered.bodies["text"]) if rendered else 0,
                "openmetrics_gzip": scrapes["bytes"],
            },
            "rss_mib": {"before": round(rss_before, 1), "after": round(rss_mib(), 1)},
            "goal_requests_first": args.groups
            + 2 * (args.groups // GROUPS_PER_LOGSTORE + 1) * args.shards
            + args.groups * args.shards,
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--sweeps", type=int, default=3, help="first + steady sweeps (default 3)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--granularity", choices=("group", "shard"), default="shard")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-freeze", action="store_true", help="leave the garbage collector as it is")
    parser.add_argument("--in-loop", action="store_true", help="serve on the sweeping loop, not a thread")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of baseline scrapes before sweep 2")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        result = runner.run(bench(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"exporter: {result['groups']} groups x {result['shards']} shards, {result['granularity']} series")
    for i, s in enumerate(result["sweeps"]):
        kind = "first " if i == 0 else "steady"
        print(
            f"  sweep {i + 1} ({kind}): {s['wall_s']:7.2f} s wall ({s['sweep_s']:.2f} s SLS, "
            f"{s['render_s']:.2f} s render), {s['cpu_s']:.2f} s CPU, {s['requests']} requests, "
            f"{s['series']} series, {s['not_ok']} not OK, {s['err']} ERR, GC pauses {s['gc_pauses_ms']} ms"
        )
    sc = result["scrape_ms"]
    print(
        f"  scrapes during sweeps: {result['scrapes_during_sweeps']}, "
        f"p50 {sc['p50']} ms, p99 {sc['p99']} ms, "
        f"max {sc['max']} ms (OpenMetrics gzip {result['body_bytes']['openmetrics_gzip']} B, "
        f"text {result['body_bytes']['text']} B)"
    )
    idle = result["scrape_ms_idle"]
    print(f"  scrapes with no sweep running: {idle['count']}, p50 {idle['p50']} ms, p99 {idle['p99']} ms")
    print(f"  RSS: {result['rss_mib']['before']} MiB before, {result['rss_mib']['after']} MiB after")
    print(f"  machine: {result['cpus']} CPUs, load average {result['load_average']}")


if __name__ == "__main__":
    main()
