"""Fan-out benchmark: ``get_checkpoints_many`` vs bare aiohttp, in one run (issue #5, section 3).

The emulator runs in its own process, seeded with a fleet of consumer groups (default
4 projects x 25 logstores x 20 groups = 2,000 targets of 4 shards; N > fleet cycles over it).
Both sides talk to the same emulator process, which verifies signatures: aiosls signs every
request itself, bare aiohttp replays static headers that were signed once per fleet entry
before timing (a signature stays valid for 15 minutes). So the server does the same work for
both and its speed, which affects how many responses the client handles per event-loop
iteration, cannot favour either side. Only the client's CPU is compared; the server's CPU is
read from its process and printed, to show it is not what limits the client.

Each side runs in a fresh client subprocess (clean peak RSS, no shared warm caches), after an
untimed warm-up against the same emulator, alternating aiosls, bare, aiosls, bare ... for
``--repeat`` rounds; medians are reported. Per side: requests/s, client CPU us per request
(``time.process_time`` of the client process only), peak RSS, connections the emulator accepted
during the timed run, server CPU per request. Both sides keep ``C`` requests in flight (aiosls:
its own fan-out pool; bare: ``C`` worker coroutines over one shared iterator), use the same
keep-alive pool size, read every body and decode it with orjson;
aiosls additionally signs, validates names and structures ``ShardCheckpoint`` models.

The ``aiosls`` side is the service as users get it, ``CheckpointService(endpoint, credentials)``
with no transport argument: its default ``AiohttpTransport``, one ``aiohttp.ClientSession`` like
the bare side, so the difference to bare is what signing, parsing, retries and the fan-out cost
on top of an aiohttp request (issue #10's target: <= 1.25x bare). The ``aiosls+http11`` side
(skip it with ``--no-lean``) is the same service over the opt-in lean transport,
``aiosls.transport.http11.Http11Transport`` (target: <= 0.8x bare).

By default every round runs each side once signing V4 and once signing V1 (``--signature``
picks one); bare aiohttp replays headers pre-signed with the same version, so the server's
verification work matches. The load average is printed before and after: on a shared machine
compare only within one run.

With ``--official`` every round also runs the same N targets through the official SDKs (test and
benchmark peers only, never imported by ``aiosls``), each in its own fresh subprocess too:

- ``tea``: the Tea async SDK (``alibabacloud_sls20201230.client.Client.get_check_point_async``),
  one client, ``C`` worker coroutines over one shared iterator (the same bound as bare aiohttp);
- ``sync``: the sync SDK (``aliyun.log.LogClient.get_check_point``), one client shared by a
  ``concurrent.futures.ThreadPoolExecutor(--threads)`` (32), ``pool.map`` over the targets.

Both sign with the round's version (V4 with region cn-hangzhou, or V1) against the same
verifying emulator, with their default HTTP settings. Both put the project in the host name
(``{project}.localhost:PORT``), so their client process resolves ``*.localhost`` to 127.0.0.1 by
wrapping ``socket.getaddrinfo`` (the emulator is loopback only; proxy variables are dropped).

Usage::

    python benchmarks/fanout.py [--targets 2000] [--concurrency 64] [--repeat 3]
    python benchmarks/fanout.py --targets 20000 --signature v1 --repeat 5
    python benchmarks/fanout.py --official          # + the official Tea async and sync SDKs
    python benchmarks/fanout.py --memory            # aiosls alone: 1,000 vs 100,000 streamed targets
    python benchmarks/fanout.py --profile out.prof  # cProfile one aiosls run (client side)

Secrets are never printed: the emulator's well-known demo key is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

try:
    import aiosls  # noqa: F401  (installed, e.g. by nox)
except ImportError:  # run from a checkout: use its aiosls/ (the spawned processes inherit sys.path)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLEET = (4, 25, 20)  # projects, logstores per project, consumer groups per logstore
SHARDS = 4
PROFILE_ENV = "AIOSLS_FANOUT_PROFILE"
OFFICIAL = ("tea", "sync")  # --official sides: the Tea async SDK, the sync SDK from a thread pool
LEAN_SIDE = "aiosls+http11"  # the service over the opt-in Http11Transport instead of its default
#: Issue #10: the default transport's client CPU per request vs bare aiohttp, and the lean one's.
TARGET_DEFAULT = 1.25
TARGET_LEAN = 0.8


def _seed(projects: int, logstores: int, groups: int) -> dict[str, Any]:
    # Half the shards committed, half never ("" checkpoint): both shapes get parsed.
    checkpoints = {
        str(s): {
            "checkpoint": "MTUyNDE1NTM3OTM3MzkwODQ5Ng==",
            "consumer": f"c-{s}",
            "update_time": 1524224984800922,
        }
        for s in range(SHARDS // 2)
    }
    return {
        "projects": {
            f"bench-p{p}": {
                "logstores": {
                    f"store-{ls:03d}": {
                        "shards": SHARDS,
                        "consumer_groups": {
                            f"cg-{g:02d}": {"checkpoints": checkpoints} for g in range(groups)
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
        (f"bench-p{p}", f"store-{ls:03d}", f"cg-{g:02d}")
        for p in range(projects)
        for ls in range(logstores)
        for g in range(groups)
    ]


def _cycle(fleet: list[tuple[str, str, str]], n: int) -> Iterator[tuple[str, str, str]]:
    for i in range(n):
        yield fleet[i % len(fleet)]


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- the emulator, in its own process ----------------------------------------------------------


def _emulator_main(conn: Connection, seed_path: str, verify: bool) -> None:
    """Serve until told to stop; answer "counters" requests over ``conn`` (runs in a child)."""
    from aiosls.emulator import Emulator

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        async with Emulator(seed=seed_path, verify_signatures=verify) as emu:

            def on_message() -> None:
                msg = conn.recv()
                if msg == "stop":
                    loop.remove_reader(conn.fileno())
                    stop.set()
                else:
                    conn.send((emu.counters.connections, emu.counters.requests_total))

            loop.add_reader(conn.fileno(), on_message)
            conn.send(emu.endpoint)
            await stop.wait()

    asyncio.run(serve())


class EmulatorProcess:
    def __init__(self, seed_path: str, *, verify: bool) -> None:
        import psutil

        self.verify = verify
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_emulator_main, args=(child, seed_path, verify), daemon=True)
        self._proc.start()
        self.endpoint: str = self._conn.recv()
        assert self._proc.pid is not None
        self._ps = psutil.Process(self._proc.pid)

    def snapshot(self) -> tuple[int, int, float]:
        """(connections accepted, requests received, CPU seconds) so far."""
        self._conn.send("counters")
        connections, requests = self._conn.recv()
        cpu = self._ps.cpu_times()
        return connections, requests, cpu.user + cpu.system

    def close(self) -> None:
        self._conn.send("stop")
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()


# --- the clients (each run in a fresh subprocess) ------------------------------------------------


def _aiosls_targets(cfg: dict[str, Any], n: int) -> Any:
    """The N targets: a list built up front (untimed), or a lazy generator for --memory."""
    from aiosls import CheckpointTarget

    targets = (CheckpointTarget(*t) for t in _cycle(_fleet(*cfg["fleet"]), n))
    return targets if cfg["lazy"] else list(targets)


async def _run_aiosls(cfg: dict[str, Any], targets: Any) -> tuple[int, int]:
    """The service as users get it (no transport argument: its default ``AiohttpTransport``),
    or, for the ``aiosls+http11`` side, over the opt-in lean ``Http11Transport``."""
    from aiosls import CheckpointService, Credentials
    from aiosls.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET

    options: dict[str, Any] = {"max_connections": cfg["pool"]}
    transport = None
    if cfg["side"] == LEAN_SIDE:
        from aiosls.transport.http11 import Http11Transport

        transport = Http11Transport(max_connections=cfg["pool"])
        options = {"transport": transport}
    ok = failed = 0
    async with (
        CheckpointService(
            cfg["endpoint"],
            Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET),
            signature_version=cfg["signature"],
            region="cn-hangzhou" if cfg["signature"] == "v4" else None,
            **options,
        ) as svc,
        svc.get_checkpoints_many(targets, concurrency=cfg["concurrency"]) as results,
    ):
        async for result in results:
            if result.ok and result.checkpoints and len(result.checkpoints) == SHARDS:
                ok += 1
            else:
                failed += 1
    if transport is not None:
        await transport.aclose()
    return ok, failed


def _presigned(cfg: dict[str, Any]) -> list[tuple[Any, dict[str, str]]]:
    """Per fleet entry, the URL and *static* headers, signed once now by aiosls (untimed).

    A signature stays valid for 15 minutes (the emulator's allowed skew), so bare aiohttp can
    replay these exact headers against the same verifying emulator aiosls talks to.
    """
    from datetime import UTC, datetime

    from yarl import URL

    from aiosls import _sansio
    from aiosls.credentials import Credentials
    from aiosls.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET
    from aiosls.endpoint import parse_endpoint

    endpoint = parse_endpoint(cfg["endpoint"])
    credentials = Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET)
    now = datetime.now(UTC)
    out = []
    for p, ls, cg in _fleet(*cfg["fleet"]):
        req = _sansio.build_request(
            _sansio.get_checkpoint(p, ls, cg),
            endpoint=endpoint,
            credentials=credentials,
            now=now,
            signature_version=cfg["signature"],
            region="cn-hangzhou",
            user_agent="bench-bare",
        )
        out.append((URL(req.url, encoded=True), dict(req.headers)))
    return out


async def _run_bare(cfg: dict[str, Any], prepared: tuple[int, list[Any]]) -> tuple[int, int]:
    import aiohttp
    import orjson

    n, requests = prepared
    source = iter(range(n))
    ok = failed = 0
    connector = aiohttp.TCPConnector(limit=cfg["pool"])
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal ok, failed
            for i in source:
                url, headers = requests[i % len(requests)]
                async with session.get(url, headers=headers) as resp:
                    body = await resp.read()
                    if resp.status == 200 and len(orjson.loads(body)) == SHARDS:
                        ok += 1
                    else:
                        failed += 1

        await asyncio.gather(*(worker() for _ in range(cfg["concurrency"])))
    return ok, failed


# --- the official SDKs (--official; benchmark peers only, never imported by aiosls) -----------


def _localhost_dns() -> None:
    """Resolve ``*.localhost`` to 127.0.0.1 in this process: the SDKs use ``{project}.{endpoint}``.

    Also drops proxy variables, so that nothing can leave the loopback interface.
    """
    import socket

    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        os.environ.pop(var, None)
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


def _sdk_endpoint(cfg: dict[str, Any]) -> str:
    """``localhost:PORT``: the SDKs prepend the project, giving ``{project}.localhost:PORT``."""
    from urllib.parse import urlsplit

    return f"localhost:{urlsplit(cfg['endpoint']).port}"


_first_error: list[str] = []


def _note_error(exc: BaseException) -> None:
    """Print the first failure's type and code (never a header or a key) to stderr."""
    if not _first_error:
        code = getattr(exc, "code", None) or getattr(exc, "get_error_code", lambda: None)()
        _first_error.append(f"{type(exc).__name__} {code or ''}".strip())
        print(f"first failure: {_first_error[0]}", file=sys.stderr, flush=True)


async def _run_tea(cfg: dict[str, Any], targets: list[tuple[str, str, str]]) -> tuple[int, int]:
    from alibabacloud_sls20201230.client import Client
    from alibabacloud_sls20201230.models import GetCheckPointRequest
    from alibabacloud_tea_openapi.utils_models import Config

    from aiosls.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET

    client = Client(
        Config(
            access_key_id=DEMO_ACCESS_KEY_ID,
            access_key_secret=DEMO_ACCESS_KEY_SECRET,
            endpoint=_sdk_endpoint(cfg),
            protocol="http",
            region_id="cn-hangzhou",
            signature_version=cfg["signature"],
        )
    )
    source = iter(targets)
    ok = failed = 0

    async def worker() -> None:
        nonlocal ok, failed
        for p, ls, cg in source:
            try:
                resp = await client.get_check_point_async(p, ls, cg, GetCheckPointRequest())
            except Exception as exc:
                _note_error(exc)
                failed += 1
                continue
            if resp.status_code == 200 and len(resp.body) == SHARDS:
                ok += 1
            else:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(cfg["concurrency"])))
    return ok, failed


def _run_sync(cfg: dict[str, Any], targets: list[tuple[str, str, str]]) -> tuple[int, int]:
    from concurrent.futures import ThreadPoolExecutor

    from aliyun.log import LogClient
    from aliyun.log.auth import AUTH_VERSION_1, AUTH_VERSION_4

    from aiosls.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET

    auth: dict[str, Any] = (
        {"auth_version": AUTH_VERSION_4, "region": "cn-hangzhou"}
        if cfg["signature"] == "v4"
        else {"auth_version": AUTH_VERSION_1}
    )
    # source= avoids the SDK's UDP-socket probe for the local IP (it would target a public IP).
    client = LogClient(
        _sdk_endpoint(cfg), DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, source="127.0.0.1", **auth
    )

    def fetch(target: tuple[str, str, str]) -> bool:
        try:
            points = client.get_check_point(*target).get_consumer_group_check_points()
        except Exception as exc:
            _note_error(exc)
            return False
        return len(points) == SHARDS

    ok = failed = 0
    try:
        with ThreadPoolExecutor(cfg["threads"]) as pool:
            for good in pool.map(fetch, targets):
                if good:
                    ok += 1
                else:
                    failed += 1
    finally:
        client._session.close()  # the SDK has no close(); its requests.Session holds the sockets
    return ok, failed


def _client_main(raw: str) -> None:
    """One side's run in this fresh process: warm up, say "ready", wait for "go", run, report."""
    cfg = json.loads(raw)
    side = cfg["side"]
    aiosls = side in ("aiosls", LEAN_SIDE)
    if side in OFFICIAL:
        _localhost_dns()
    run: Any = {
        "aiosls": _run_aiosls,
        LEAN_SIDE: _run_aiosls,
        "bare": _run_bare,
        "tea": _run_tea,
        "sync": _run_sync,
    }[side]
    signed = _presigned(cfg) if side == "bare" else None

    def prepare(n: int) -> Any:
        if side in OFFICIAL:
            return list(_cycle(_fleet(*cfg["fleet"]), n))
        return _aiosls_targets(cfg, n) if aiosls else (n, signed)

    def execute(prepared: Any) -> tuple[int, int]:
        return run(cfg, prepared) if side == "sync" else asyncio.run(run(cfg, prepared))

    warm = min(cfg["targets"], max(500, 4 * cfg["concurrency"]))
    execute(prepare(warm))  # untimed: imports, lazy hooks, code paths
    prepared = prepare(cfg["targets"])
    print("ready", flush=True)
    sys.stdin.readline()
    rss0 = _rss_mib()
    profiler = None
    if cfg.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    times0 = os.times()
    cpu0, t0 = time.process_time(), time.perf_counter()
    ok, failed = execute(prepared)
    cpu1, t1 = time.process_time(), time.perf_counter()
    times1 = os.times()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(cfg["profile"])
    result = {
        "ok": ok,
        "failed": failed,
        "wall": t1 - t0,
        "cpu": cpu1 - cpu0,
        # The kernel's share (loopback TCP work is charged to the sending process).
        "sys_share": (times1.system - times0.system) / max(cpu1 - cpu0, 1e-9),
        "peak_rss": _peak_rss_mib(),
        "rss_before": rss0,
    }
    print(json.dumps(result), flush=True)


def run_side(emu: EmulatorProcess, cfg: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--_client", json.dumps(cfg | {"endpoint": emu.endpoint})],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"client {cfg['side']} failed to start: {line!r}")
    c0, r0, s0 = emu.snapshot()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    result: dict[str, Any] = json.loads(proc.stdout.readline())
    c1, r1, s1 = emu.snapshot()
    proc.wait(30)
    n = result["ok"] + result["failed"]
    result.update(
        side=cfg["side"],
        requests=n,
        rps=n / result["wall"],
        cpu_us=result["cpu"] / n * 1e6,
        connections=c1 - c0,
        server_requests=r1 - r0,
        server_cpu_us=(s1 - s0) / max(r1 - r0, 1) * 1e6,
        server_busy=(s1 - s0) / result["wall"],
    )
    return result


# --- modes -------------------------------------------------------------------------------------


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['side']:14} {r['rps']:8.0f} req/s  client CPU {r['cpu_us']:6.1f} us/req "
        f"(sys {r['sys_share']:4.0%})  "
        f"peak RSS {r['peak_rss']:6.1f} MiB  connections {r['connections']:4d}  "
        f"server CPU {r['server_cpu_us']:5.1f} us/req (busy {r['server_busy']:4.0%})  "
        f"ok {r['ok']} failed {r['failed']}"
    )


def _load() -> str:
    """The load average, as ``uptime`` prints it: the machine may be shared with other work."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def _signatures(args: argparse.Namespace) -> tuple[str, ...]:
    return ("v4", "v1") if args.signature == "both" else (args.signature,)


def compare(args: argparse.Namespace, seed_path: str) -> None:
    emu = EmulatorProcess(seed_path, verify=not args.no_verify)
    signatures = _signatures(args)
    base = {
        "fleet": FLEET,
        "targets": args.targets,
        "concurrency": args.concurrency,
        "pool": args.pool,
        "lazy": False,
        "threads": args.threads,
    }
    print(
        f"fan-out of {args.targets} GetCheckPoint targets, concurrency {args.concurrency}, "
        f"keep-alive pool {args.pool}, {args.repeat} alternating rounds, one emulator process "
        f"{'verifying signatures' if not args.no_verify else 'with --no-verify'} for every side; "
        f"aiosls signs each request ({' and '.join(signatures)}), bare aiohttp replays static headers "
        "pre-signed with the same version before timing; all read every body and decode it with orjson",
        flush=True,
    )
    print(f"before: {_load()}", flush=True)
    sides = ("aiosls", "bare") + ((LEAN_SIDE,) if not args.no_lean else ())
    sides += OFFICIAL if args.official else ()
    if args.official:
        print(
            "official SDKs, same targets and emulator, each in its own fresh process: "
            f"tea = Tea async SDK get_check_point_async with {args.concurrency} worker coroutines, "
            f"sync = LogClient.get_check_point from a ThreadPoolExecutor({args.threads}); "
            "both sign with the round's version (V4 with region cn-hangzhou), default HTTP settings",
            flush=True,
        )
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {
        (sig, side): [] for sig in signatures for side in sides
    }
    try:
        for i in range(args.repeat):
            for sig in signatures:
                for side in sides:
                    cfg = base | {"side": side, "signature": sig}
                    if side == "aiosls" and args.profile and i == 0:
                        cfg["profile"] = f"{args.profile}.{sig}" if len(signatures) > 1 else args.profile
                    r = run_side(emu, cfg)
                    runs[sig, side].append(r)
                    print(f"  round {i + 1} {sig}: {_line(r)}", flush=True)
    finally:
        emu.close()
    print(f"after: {_load()}")
    for sig in signatures:
        _summary(args, sig, sides, {side: runs[sig, side] for side in sides})


def _summary(
    args: argparse.Namespace, sig: str, sides: tuple[str, ...], runs: dict[str, list[dict[str, Any]]]
) -> None:
    """One signature version's medians and ratios vs bare aiohttp (same run, same rounds)."""
    med = {
        side: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "side"} | {"side": side}
        for side, rs in runs.items()
    }
    for r in med.values():
        r["ok"], r["failed"], r["connections"] = int(r["ok"]), int(r["failed"]), int(r["connections"])
    print(f"median, {sig}:")
    for side in sides:
        print(f"  {_line(med[side])}")
    a = med["aiosls"]
    cpu, rounds, rps = _vs_bare(runs, med, "aiosls")
    print(
        f"{sig} ratio aiosls/bare (default AiohttpTransport): client CPU per request {cpu} "
        f"(per round {rounds}; target <= {TARGET_DEFAULT}x), req/s {rps}; "
        f"connections {a['connections']} (target <= concurrency {args.concurrency})"
    )
    if LEAN_SIDE in med:
        cpu, rounds, rps = _vs_bare(runs, med, LEAN_SIDE)
        print(
            f"{sig} ratio {LEAN_SIDE}/bare (opt-in Http11Transport): client CPU per request {cpu} "
            f"(per round {rounds}; target <= {TARGET_LEAN}x), req/s {rps}"
        )
    for side in OFFICIAL if args.official else ():
        o = med[side]
        cpu, rounds, rps = _vs_bare(runs, med, side)
        print(
            f"{sig} ratio {side}/bare: client CPU per request {cpu} (per round {rounds}), req/s {rps}; "
            f"connections {o['connections']} for {o['requests']:.0f} requests; "
            f"aiosls uses {o['cpu_us'] / a['cpu_us']:.2f}x less client CPU per request"
        )


def _vs_bare(
    runs: dict[str, list[dict[str, Any]]], med: dict[str, dict[str, Any]], side: str
) -> tuple[str, str, str]:
    """``side`` against bare, as printed: median CPU ratio, per-round CPU ratios, req/s ratio."""
    o, b = med[side], med["bare"]
    pairs = zip(runs[side], runs["bare"], strict=True)
    rounds = ", ".join(f"{x['cpu_us'] / y['cpu_us']:.2f}" for x, y in pairs)
    return f"{o['cpu_us'] / b['cpu_us']:.2f}x", rounds, f"{o['rps'] / b['rps']:.2f}x"


def memory(args: argparse.Namespace, seed_path: str) -> None:
    emu = EmulatorProcess(seed_path, verify=not args.no_verify)
    base = {
        "fleet": FLEET,
        "concurrency": args.concurrency,
        "pool": args.pool,
        "signature": "v4" if args.signature == "both" else args.signature,
        "lazy": True,
        "side": "aiosls",
    }
    print(f"aiosls alone, lazy generator of targets, concurrency {args.concurrency}, fresh process each")
    try:
        results = {}
        for n in (1_000, args.memory_targets):
            r = run_side(emu, base | {"targets": n})
            results[n] = r
            print(f"  {n:7d} targets: {_line(r)}", flush=True)
    finally:
        emu.close()
    small, large = results[1_000], results[args.memory_targets]
    diff = large["peak_rss"] - small["peak_rss"]
    print(
        f"peak RSS {small['peak_rss']:.1f} MiB (1,000) vs {large['peak_rss']:.1f} MiB "
        f"({args.memory_targets:,}): difference {diff:+.1f} MiB (target within 30 MiB)"
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--_client":
        _client_main(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--targets", type=int, default=2_000, help="GetCheckPoint calls per side")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (both sides)")
    parser.add_argument("--pool", type=int, default=100, help="keep-alive pool size (the service default)")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds; medians reported")
    parser.add_argument(
        "--signature", choices=("both", "v1", "v4"), default="both", help="signature version(s) per round"
    )
    parser.add_argument("--no-verify", action="store_true", help="aiosls talks to a --no-verify emulator too")
    parser.add_argument("--memory", action="store_true", help="peak RSS, 1,000 vs --memory-targets")
    parser.add_argument("--memory-targets", type=int, default=100_000)
    parser.add_argument("--profile", metavar="FILE", help="cProfile the first aiosls run into FILE")
    parser.add_argument(
        "--official", action="store_true", help="also time the official Tea async and sync SDKs"
    )
    parser.add_argument("--threads", type=int, default=32, help="sync SDK thread pool (--official)")
    parser.add_argument(
        "--no-lean", action="store_true", help=f"skip the {LEAN_SIDE} side (the opt-in Http11Transport)"
    )
    args = parser.parse_args()
    if args.official and args.memory:
        parser.error("--official compares sides; it does not apply to --memory")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(_seed(*FLEET), f)
    try:
        if args.memory:
            memory(args, f.name)
        else:
            compare(args, f.name)
    finally:
        os.unlink(f.name)


if __name__ == "__main__":
    main()
