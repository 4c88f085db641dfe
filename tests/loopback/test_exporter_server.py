"""The exporter over real HTTP: negotiation, gzip, /healthz, the status page, the shipped examples,
and a SIGTERM'd process."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from aiosls import CheckpointTarget, NotFoundError, ThrottlingError
from aiosls.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, Emulator
from aiosls.exporter.server import start_server
from aiosls.exporter.sweeper import Exporter, Source
from aiosls.models import LagResult
from tests.memory.test_exporter import group, shard

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
METRIC_NAME = re.compile(r"\b(?:sls|aiosls)_[a-z_]+[a-z]")


class Gate:
    """A sweep function that answers its first call at once and waits on ``release`` after."""

    def __init__(self, *sweeps: Sequence[LagResult]) -> None:
        self.sweeps = list(sweeps)
        self.release = asyncio.Event()
        self.waiting = asyncio.Event()
        self.calls = 0

    async def __call__(self) -> Sequence[LagResult]:
        self.calls += 1
        if self.calls > 1:
            self.waiting.set()
            await self.release.wait()
        return self.sweeps.pop(0) if len(self.sweeps) > 1 else self.sweeps[0]


def fleet() -> list[Source]:
    throttled = ThrottlingError("slow down", error_code="ReadQuotaExceed", status=403)
    missing = NotFoundError("no such project", error_code="ProjectNotExist", status=404)
    good = [
        group("prod-logs", "app-log", "cg-main", shard(0, 1.5), shard(1, 0.0)),
        group(
            "prod-logs", "app-log", "cg-<b>late</b>", shard(0, 900.0, age=2000.0), shard(1, 2.0, consumer="")
        ),
        LagResult(CheckpointTarget("prod-logs", "app-log", "cg-flaky"), error=throttled),
    ]
    return [
        Source(
            ("prod-logs",),
            Gate(good),
            labels={"env": "prod"},
            request_counts=lambda: {("GetCheckPoint", "ok"): 10, ("GetCheckPoint", "throttled"): 1},
        ),
        Source(("gone-project",), Gate([LagResult(CheckpointTarget("gone-project", "", ""), error=missing)])),
    ]


@pytest.fixture
async def served() -> AsyncIterator[tuple[Exporter, str, aiohttp.ClientSession]]:
    exporter = Exporter(fleet(), allowed_lag=60, stop_after=300)
    runner, port = await start_server(exporter, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            yield exporter, f"http://127.0.0.1:{port}", session
    finally:
        await runner.cleanup()


async def get(session: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    # aiohttp asks for gzip by default; ask for what the test says (identity unless told).
    async with session.get(url, headers={"Accept-Encoding": "identity", **headers}) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def test_metrics_answer_from_the_start_and_healthz_waits_for_the_first_sweep(served) -> None:
    exporter, base, session = served
    assert (await get(session, base + "/healthz"))[0] == 503
    status, _, body = await get(session, base + "/metrics")
    assert status == 200
    samples = {s.name for f in parse_text(body.decode()) for s in f.samples}
    assert "aiosls_exporter_sweep_duration_seconds_count" in samples
    assert not {n for n in samples if n.startswith("sls_")}
    assert "aiosls_exporter_last_sweep_timestamp_seconds" not in samples
    assert b"Waiting for the first sweep" in (await get(session, base + "/"))[2]
    await exporter.sweep_once()
    status, _, body = await get(session, base + "/healthz")
    assert status == 200
    assert body.startswith(b"ok: 1 sweep(s)")
    _, _, body = await get(session, base + "/metrics")
    assert b"sls_consumer_group_status{" in body


async def test_negotiates_text_openmetrics_and_gzip(served) -> None:
    exporter, base, session = served
    await exporter.sweep_once()
    status, headers, body = await get(session, base + "/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "Content-Encoding" not in headers
    text = {f.name for f in parse_text(body.decode())}
    assert "sls_consumer_group_lag_seconds" in text

    prometheus_accept = (
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    )
    status, headers, body = await get(
        session, base + "/metrics", Accept=prometheus_accept, **{"Accept-Encoding": "gzip"}
    )
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert headers["Content-Encoding"] == "gzip"
    om = {f.name: f for f in parse_openmetrics(gzip.decompress(body).decode())}
    assert om["aiosls_exporter_requests"].type == "counter"
    assert "Accept" in headers["Vary"]

    _, headers, _ = await get(session, base + "/metrics", **{"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in headers


async def test_scrapes_during_a_sweep_serve_the_last_completed_one(served) -> None:
    exporter, base, session = served
    await exporter.sweep_once()
    _, _, before = await get(session, base + "/metrics")
    gates = [source.sweep for source in exporter.sources]
    sweeping = asyncio.create_task(exporter.sweep_once())
    for gate in gates:
        await gate.waiting.wait()  # type: ignore[attr-defined]
    # The second sweep is stuck in SLS: every scrape answers at once, with the first sweep's data.
    for _ in range(3):
        status, _, body = await get(session, base + "/metrics")
        assert status == 200
        assert body == before
    for gate in gates:
        gate.release.set()  # type: ignore[attr-defined]
    await sweeping
    _, _, after = await get(session, base + "/metrics")
    assert after != before
    assert b"aiosls_exporter_sweep_duration_seconds_count 2.0" in after


async def test_status_page_lists_problems_worst_first_escaped(served) -> None:
    exporter, base, session = served
    await exporter.sweep_once()
    status, headers, body = await get(session, base + "/")
    page = body.decode()
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "<b>late</b>" not in page
    assert "cg-&lt;b&gt;late&lt;/b&gt;" in page
    # ERR (the throttled group, the missing project) before STOP before nothing for the OK group.
    assert page.index("cg-flaky") < page.index("cg-&lt;b&gt;late") < len(page)
    assert "cg-main" not in page
    assert "DOWN" in page


def referenced_metrics() -> set[str]:
    dashboard = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    exprs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "query", "definition") and isinstance(value, str):
                    exprs.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard)
    exprs += [
        line.split("expr:", 1)[1]
        for line in (EXAMPLES / "prometheus-alerts.yml").read_text().splitlines()
        if "expr:" in line
    ]
    return {name for expr in exprs for name in METRIC_NAME.findall(expr)}


async def test_every_metric_the_dashboard_and_alerts_use_is_served(served) -> None:
    exporter, base, session = served
    await exporter.sweep_once()
    _, _, body = await get(session, base + "/metrics")
    served_names = set()
    for family in parse_text(body.decode()):
        served_names.add(family.name)
        served_names.update(s.name for s in family.samples)
    referenced = referenced_metrics()
    assert len(referenced) >= 10
    assert referenced <= served_names, referenced - served_names


# --- a real process -----------------------------------------------------------------------------


async def test_sigterm_stops_the_process_with_exit_0(tmp_path: Path) -> None:
    seed = {
        "projects": {"prod-logs": {"logstores": {"app-log": {"shards": 2, "consumer_groups": {"cg": {}}}}}}
    }
    async with Emulator(seed=seed) as emu:
        env = {
            **os.environ,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": DEMO_ACCESS_KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEMO_ACCESS_KEY_SECRET,
            "PYTHONPATH": str(ROOT),
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aiosls.exporter",
            "--listen",
            "127.0.0.1:0",
            "--endpoint",
            emu.endpoint,
            "--region",
            "cn-hangzhou",
            "--project",
            "prod-logs",
            "--interval",
            "0.5",
            cwd=str(tmp_path),
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None
        port = None
        lines = []
        try:
            async with asyncio.timeout(30):
                while port is None:
                    line = (await proc.stderr.readline()).decode()
                    assert line, "".join(lines)
                    lines.append(line)
                    if m := re.search(r"serving http://127\.0\.0\.1:(\d+)/metrics", line):
                        port = int(m[1])
                async with aiohttp.ClientSession() as session:
                    while True:  # until a first sweep has completed
                        async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                            if resp.status == 200:
                                break
                        await asyncio.sleep(0.05)
                proc.send_signal(signal.SIGTERM)
                rest = (await proc.stderr.read()).decode()
                code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert code == 0, "".join(lines) + rest
    assert "stopping" in rest
    assert "Traceback" not in rest


async def test_bad_config_exits_2_with_one_line_before_starting(tmp_path: Path) -> None:
    config = tmp_path / "exporter.toml"
    config.write_text("interval = -1\nprojects = ['prod-logs']\nendpoint = 'cn-hangzhou.log.aliyuncs.com'\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiosls.exporter",
        "--config",
        str(config),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert err.decode().splitlines() == ["aiosls exporter: error: interval: must be in 0.01..86400, not -1"]


async def test_threaded_server_serves_while_the_sweeping_loop_is_blocked() -> None:
    import threading

    from aiosls.exporter.server import ThreadedServer

    exporter = Exporter(fleet())
    await exporter.sweep_once()
    server = ThreadedServer(exporter, "127.0.0.1", 0)
    port = await server.start()
    url = f"http://127.0.0.1:{port}/healthz"
    answered = threading.Event()
    failures: list[BaseException] = []

    def scrape_from_another_thread() -> None:
        import urllib.request

        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                assert resp.status == 200
        except BaseException as exc:  # reported to the test below
            failures.append(exc)
        answered.set()

    try:
        client = threading.Thread(target=scrape_from_another_thread)
        client.start()
        # This loop does not run until the scrape is answered: only the server's thread can.
        answered.wait(30)
        client.join()
        assert answered.is_set()
        assert failures == []
    finally:
        await server.aclose()
    assert not [t for t in threading.enumerate() if t.name == "aiosls-exporter-http"]


async def test_threaded_server_reports_a_port_in_use() -> None:
    from aiosls.exporter.server import ThreadedServer

    first = ThreadedServer(Exporter(fleet()), "127.0.0.1", 0)
    port = await first.start()
    try:
        with pytest.raises(OSError, match="in use"):
            await ThreadedServer(Exporter(fleet()), "127.0.0.1", port).start()
    finally:
        await first.aclose()
