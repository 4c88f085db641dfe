"""Lag benchmark: a lag sweep of 2,000 groups x 4 shards, aiosls against the official SDK (issue #12).

The emulator runs in its own process (the one of ``benchmarks/fanout.py``, verifying
signatures), seeded with 4 projects x 25 logstores x 20 groups = 2,000 consumer groups of 4
shards over data written at 1 package/s for 10 minutes, nothing written while the benchmark
runs (``--write-rate`` changes that). Every shard of every group is behind by its own number of
seconds, so no two groups share a checkpoint's time: the worst case for the cursor-time cache.

Two sides, each in a fresh client subprocess, alternating for ``--repeat`` rounds (medians):

- ``aiosls``: ``CheckpointService.get_lag_many(targets, concurrency=64)``, then the same sweep
  again on the same service (the *repeated* sweep: unchanged checkpoints, cursor times cached);
- ``sdk``: the official sync SDK's per-group approach: ``LogClient.get_check_point_fixed``
  (GetCheckPoint, then GetCursorTime of each checkpoint's previous cursor) plus, per shard,
  ``get_end_cursor`` and ``get_previous_cursor_time`` of the end cursor for the newest data's
  time (``get_check_point_fixed`` gives no end time, and a lag needs one). One client shared
  by a ``ThreadPoolExecutor(--threads)`` (32), ``pool.map`` over the groups; twice, like aiosls.

Per sweep: requests the emulator received (its counters), wall time, client CPU
(``time.process_time`` of the client process, all threads), and a checksum of the lags so the
two sides are seen to compute the same values. The ratios printed are sdk / aiosls.

Usage::

    python benchmarks/lag.py [--repeat 3] [--concurrency 64] [--threads 32] [--signature v4|v1]

Secrets are never printed: the emulator's well-known demo key is used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.dirname(_HERE)]  # fanout.py's emulator process; aiosls from this tree
from fanout import EmulatorProcess, _localhost_dns, _sdk_endpoint  # noqa: E402

FLEET = (4, 25, 20)  # projects, logstores per project, consumer groups per logstore
SHARDS = 4
HISTORY = 600  # seconds of data, one package per second per shard


def _lag_of(g: int, shard: int) -> int:
    """The seeded lag (seconds) of group ``g``'s shard: distinct across a logstore's groups."""
    return 1 + (g * SHARDS + shard) * 7 % (HISTORY - 10)


def _seed(projects: int, logstores: int, groups: int, write_rate: float) -> dict[str, Any]:
    return {
        "projects": {
            f"lag-p{p}": {
                "logstores": {
                    f"store-{ls:03d}": {
                        "shards": SHARDS,
                        "write_rate": write_rate,
                        "history_seconds": HISTORY,
                        "history_rate": 1,
                        "consumer_groups": {
                            f"cg-{g:02d}": {
                                "checkpoints": {
                                    str(s): {"lag_seconds": _lag_of(g, s), "consumer": f"c-{s}"}
                                    for s in range(SHARDS)
                                }
                            }
                            for g in range(groups)
                        },
                    }
                    for ls in range(logstores)
                }
            }
            for p in range(projects)
        }
    }


def _fleet(projects: int, logstores: int, groups: int) -> list[tuple[str, str, str]]:
    return [
        (f"lag-p{p}", f"store-{ls:03d}", f"cg-{g:02d}")
        for p in range(projects)
        for ls in range(logstores)
        for g in range(groups)
    ]


# --- the clients (each side in a fresh subprocess) ---------------------------------------------


def _sweep(go: Any) -> dict[str, Any]:
    cpu0, t0 = time.process_time(), time.perf_counter()
    ok, failed, checksum = go()
    return {
        "ok": ok,
        "failed": failed,
        "checksum": checksum,
        "wall": time.perf_counter() - t0,
        "cpu": time.process_time() - cpu0,
    }


def _client_aiosls(cfg: dict[str, Any], report: Any) -> None:
    """Both sweeps on one service (the repeated one uses its cursor-time cache).

    The service lives on an event loop in a helper thread so that ``report`` (which blocks on
    stdin between sweeps) stays synchronous; ``process_time`` counts every thread anyway.
    """
    import asyncio
    import threading

    from aiosls import CheckpointService, CheckpointTarget, Credentials
    from aiosls.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET

    targets = [CheckpointTarget(*t) for t in _fleet(*cfg["fleet"])]
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    async def service() -> CheckpointService:
        return CheckpointService(
            cfg["endpoint"],
            Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET),
            signature_version=cfg["signature"],
            region="cn-hangzhou" if cfg["signature"] == "v4" else None,
        )

    async def sweep(svc: CheckpointService, some: list[CheckpointTarget]) -> tuple[int, int, float]:
        ok = failed = 0
        total = 0.0
        async for r in svc.get_lag_many(some, concurrency=cfg["concurrency"]):
            if r.ok and r.lag is not None and len(r.lag.shards) == SHARDS:
                ok += 1
                total += sum(s.lag_seconds or 0.0 for s in r.lag.shards)
            else:
                failed += 1
        return ok, failed, total

    warm = run(service())  # untimed, its own cache: imports and code paths
    run(sweep(warm, targets[:50]))
    run(warm.aclose())
    svc = run(service())
    for name in ("first", "repeated"):
        report(name, lambda: run(sweep(svc, targets)))
    run(svc.aclose())
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _client_sdk(cfg: dict[str, Any], report: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from aliyun.log import LogClient
    from aliyun.log.auth import AUTH_VERSION_1, AUTH_VERSION_4

    from aiosls.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET

    _localhost_dns()
    auth: dict[str, Any] = (
        {"auth_version": AUTH_VERSION_4, "region": "cn-hangzhou"}
        if cfg["signature"] == "v4"
        else {"auth_version": AUTH_VERSION_1}
    )
    # source= avoids the SDK's UDP-socket probe for the local IP (it would target a public IP).
    client = LogClient(
        _sdk_endpoint(cfg), DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, source="127.0.0.1", **auth
    )
    fleet = _fleet(*cfg["fleet"])

    def group_lag(target: tuple[str, str, str]) -> float | None:
        project, logstore, group = target
        try:
            points = client.get_check_point_fixed(project, logstore, group).get_consumer_group_check_points()
            total = 0.0
            for point in points:
                shard = point["shard"]
                end = client.get_end_cursor(project, logstore, shard).get_cursor()
                latest = client.get_previous_cursor_time(project, logstore, shard, end).get_cursor_time()
                if point["checkpoint"] and point["checkpoint"] != end:
                    total += max(0, latest - point["checkpoint_previous_cursor_time"])
        except Exception as exc:
            print(f"sdk failure: {type(exc).__name__}", file=sys.stderr, flush=True)
            return None
        return total if len(points) == SHARDS else None

    with ThreadPoolExecutor(cfg["threads"]) as pool:
        list(pool.map(group_lag, fleet[:50]))  # warm-up, untimed

        def sweep() -> tuple[int, int, float]:
            lags = list(pool.map(group_lag, fleet))
            good = [x for x in lags if x is not None]
            return len(good), len(lags) - len(good), sum(good)

        for name in ("first", "repeated"):
            report(name, sweep)
    client._session.close()  # the SDK has no close(); its requests.Session holds the sockets


def _client_main(raw: str) -> None:
    """One side in this fresh process: for each sweep, say "ready", wait for "go", report."""
    cfg = json.loads(raw)

    def report(name: str, go: Any) -> None:
        print("ready", flush=True)
        sys.stdin.readline()
        print(json.dumps({"sweep": name} | _sweep(go)), flush=True)

    {"aiosls": _client_aiosls, "sdk": _client_sdk}[cfg["side"]](cfg, report)


def run_side(emu: EmulatorProcess, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--_client", json.dumps(cfg | {"endpoint": emu.endpoint})],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    sweeps = []
    for _ in ("first", "repeated"):
        line = proc.stdout.readline()
        if line.strip() != "ready":
            proc.kill()
            raise RuntimeError(f"client {cfg['side']} failed: {line!r}")
        _, r0, s0 = emu.snapshot()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        result: dict[str, Any] = json.loads(proc.stdout.readline())
        _, r1, s1 = emu.snapshot()
        result.update(side=cfg["side"], requests=r1 - r0, server_cpu=s1 - s0)
        sweeps.append(result)
    proc.wait(60)
    return sweeps


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['side']:6} {r['sweep']:8} requests {r['requests']:6.0f}  wall {r['wall']:6.2f} s  "
        f"client CPU {r['cpu']:6.2f} s  ({r['cpu'] / max(r['requests'], 1) * 1e6:5.0f} us/req)  "
        f"server CPU {r['server_cpu']:5.2f} s  groups ok {r['ok']} failed {r['failed']}  "
        f"lag checksum {r['checksum']:.0f}"
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--_client":
        _client_main(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds; medians reported")
    parser.add_argument("--concurrency", type=int, default=64, help="aiosls groups in flight")
    parser.add_argument("--threads", type=int, default=32, help="official SDK thread pool")
    parser.add_argument("--signature", choices=("v1", "v4"), default="v4")
    parser.add_argument("--write-rate", type=float, default=0.0, help="live packages/s per shard")
    args = parser.parse_args()
    projects, logstores, groups = FLEET
    g, l_, s = projects * logstores * groups, projects * logstores, SHARDS
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(_seed(*FLEET, args.write_rate), f)
    emu = EmulatorProcess(f.name, verify=True)
    base = {
        "fleet": FLEET,
        "concurrency": args.concurrency,
        "threads": args.threads,
        "signature": args.signature,
    }
    print(
        f"lag sweep of {g} groups x {s} shards over {l_} logstores, one verifying emulator process, "
        f"signature {args.signature}; aiosls get_lag_many(concurrency={args.concurrency}) vs the sync "
        f"SDK's get_check_point_fixed + get_end_cursor + get_previous_cursor_time per group from "
        f"ThreadPoolExecutor({args.threads}); goal: first <= {g + 2 * l_ * s + g * s}, "
        f"repeated <= {g + 2 * l_ * s} requests",
        flush=True,
    )
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        for i in range(args.repeat):
            for side in ("aiosls", "sdk"):
                for r in run_side(emu, base | {"side": side}):
                    runs.setdefault((side, r["sweep"]), []).append(r)
                    print(f"  round {i + 1}: {_line(r)}", flush=True)
    finally:
        emu.close()
        os.unlink(f.name)
    med = {
        key: {k: statistics.median(r[k] for r in rs) for k in ("requests", "wall", "cpu", "server_cpu")}
        | {"side": key[0], "sweep": key[1], "ok": rs[0]["ok"], "failed": rs[0]["failed"]}
        | {"checksum": rs[0]["checksum"]}
        for key, rs in runs.items()
    }
    print("median:")
    for r in med.values():
        print(f"  {_line(r)}")
    for sweep in ("first", "repeated"):
        a, o = med[("aiosls", sweep)], med[("sdk", sweep)]
        print(
            f"{sweep} sweep, sdk / aiosls: requests {o['requests'] / a['requests']:.1f}x, "
            f"wall {o['wall'] / a['wall']:.1f}x, client CPU {o['cpu'] / a['cpu']:.1f}x; "
            f"same lags: {a['checksum'] == o['checksum']}"
        )


if __name__ == "__main__":
    main()
