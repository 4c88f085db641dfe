"""GetCheckPoint throughput of the emulator, running in its own process.

Starts ``python -m aiosls.emulator`` (seeded with one logstore of 4 shards), drives it with a
raw aiohttp client at a fixed concurrency, and reports requests/s and the server process's CPU
time per request (from /proc, so client work is not counted). Run twice: with signature
verification (each request signed by ``aiosls._sansio.build_request``) and without it (the
pure server cost). Usage::

    python benchmarks/emulator_throughput.py [--seconds 5] [--concurrency 64] [--clients 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime

import aiohttp
import yarl

from aiosls import _sansio
from aiosls.credentials import Credentials
from aiosls.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET
from aiosls.endpoint import parse_endpoint

SEED = {
    "projects": {
        "bench-project": {
            "logstores": {
                "app-log": {
                    "shards": 4,
                    "consumer_groups": {
                        "cg-main": {
                            "checkpoints": {
                                "0": {"checkpoint": "MTUyNDE1NTM3OTM3MzkwODQ5Ng==", "consumer": "c"}
                            }
                        }
                    },
                }
            }
        }
    }
}


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drive(endpoint: str, seconds: float, concurrency: int) -> tuple[int, int]:
    ep = parse_endpoint(endpoint)
    creds = Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET)
    op = _sansio.get_checkpoint("bench-project", "app-log", "cg-main")
    ok = errors = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal ok, errors
            while time.monotonic() < deadline:
                req = _sansio.build_request(
                    op,
                    endpoint=ep,
                    credentials=creds,
                    now=datetime.now(UTC),
                    signature_version="v1",
                    region=None,
                    user_agent="bench",
                )
                async with session.get(yarl.URL(req.url, encoded=True), headers=dict(req.headers)) as r:
                    await r.read()
                    if r.status == 200:
                        ok += 1
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, errors


def _client(args: tuple[str, float, int]) -> tuple[int, int]:
    return asyncio.run(_drive(*args))


def run(verify: bool, seconds: float, concurrency: int, clients: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(SEED, f)
    cmd = [sys.executable, "-m", "aiosls.emulator", "--port", "0", "--seed", f.name]
    if not verify:
        cmd.append("--no-verify")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().split()[-1]
        _client((endpoint, 0.5, 4))  # warm up
        cpu0, t0 = _cpu_seconds(proc.pid), time.perf_counter()
        with multiprocessing.Pool(clients) as pool:
            results = pool.map(_client, [(endpoint, seconds, concurrency)] * clients)
        cpu1, t1 = _cpu_seconds(proc.pid), time.perf_counter()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        os.unlink(f.name)
    ok = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    return {
        "verify": verify,
        "requests": ok,
        "errors": errors,
        "rps": ok / (t1 - t0),
        "server_cpu_us_per_request": (cpu1 - cpu0) / max(ok, 1) * 1e6,
        "server_cpu_share": (cpu1 - cpu0) / (t1 - t0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    args = parser.parse_args()
    for verify in (True, False):
        r = run(verify, args.seconds, args.concurrency, args.clients)
        print(
            f"verify={r['verify']!s:5}  {r['rps']:8.0f} req/s  "
            f"server CPU {r['server_cpu_us_per_request']:6.1f} us/req  "
            f"(server busy {r['server_cpu_share']:.0%} of one core; {r['requests']} ok, {r['errors']} errors)"
        )


if __name__ == "__main__":
    main()
