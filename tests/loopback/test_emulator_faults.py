"""Fault injection and counters, observed by a real client over loopback."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import aiohttp
import pytest
import yarl
from helpers import EMULATOR_CREDS

from aiosls import _sansio
from aiosls.emulator import Emulator, FaultConfig
from aiosls.endpoint import parse_endpoint

P, L, G = "demo-project", "app-log", "cg-main"
SEED = {"projects": {P: {"logstores": {L: {"shards": 2, "consumer_groups": {G: {}}}}}}}


async def _send(session: aiohttp.ClientSession, emu: Emulator, op: _sansio.Operation, **kw):
    req = _sansio.build_request(
        op,
        endpoint=parse_endpoint(emu.endpoint),
        credentials=EMULATOR_CREDS,
        now=datetime.now(UTC),
        signature_version="v1",
        region=None,
        user_agent="t",
    )
    async with session.request(
        req.method,
        yarl.URL(req.url, encoded=True),
        headers=dict(req.headers),
        data=req.body or None,
        skip_auto_headers=("Content-Type",),
        **kw,
    ) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read()


GET = _sansio.get_checkpoint(P, L, G)
LIST = _sansio.list_consumer_groups(P, L)


async def test_fail_next_is_exact_and_api_scoped() -> None:
    async with Emulator(seed=SEED) as emu, aiohttp.ClientSession() as s:
        emu.faults.fail_next(2, "throttle", api="GetCheckPoint")
        assert (await _send(s, emu, LIST))[0] == 200  # another API is not affected
        for _ in range(2):
            status, headers, body = await _send(s, emu, GET)
            assert status == 403
            assert json.loads(body)["errorCode"] == "ReadQuotaExceed"
            assert len(headers["x-log-requestid"]) == 24
        assert (await _send(s, emu, GET))[0] == 200
        assert emu.faults.injected["throttle"] == 2
        assert emu.faults.pending == 0
        assert emu.counters.requests["GetCheckPoint"] == 3
        assert emu.counters.served["GetCheckPoint"] == 1
        assert emu.counters.errors["ReadQuotaExceed"] == 2


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("internal_error", 500, "InternalServerError"), ("server_busy", 503, "ServerBusy")],
)
async def test_server_errors(kind, status, code) -> None:
    async with Emulator(seed=SEED) as emu, aiohttp.ClientSession() as s:
        emu.faults.fail_next(1, kind)
        got_status, _, body = await _send(s, emu, GET)
        assert (got_status, json.loads(body)["errorCode"]) == (status, code)


async def test_bad_gateway_is_a_bare_html_page() -> None:
    async with Emulator(seed=SEED) as emu, aiohttp.ClientSession() as s:
        emu.faults.fail_next(1, "bad_gateway")
        status, headers, body = await _send(s, emu, GET)
        assert status == 502
        assert headers["content-type"].startswith("text/html")
        assert "x-log-requestid" not in headers
        assert b"502 Bad Gateway" in body


async def test_resets_before_and_mid_body() -> None:
    async with Emulator(seed=SEED) as emu:
        emu.faults.fail_next(1, "reset")
        # A POST: aiohttp silently retries a disconnected GET once, which would hide the reset.
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.ServerDisconnectedError):
                await _send(s, emu, _sansio.update_checkpoint(P, L, G, 0, "MTIz"))
        # "reset" drops the request unprocessed; "reset_mid_body" processes it, then cuts the answer.
        assert emu.state.get_checkpoints(P, L, G, 0)[0]["checkpoint"] == ""
        emu.faults.fail_next(1, "reset_mid_body")
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.ClientPayloadError):
                await _send(s, emu, GET)
        assert emu.faults.injected == {"reset": 1, "reset_mid_body": 1}


async def test_latency_pushes_a_client_past_its_read_timeout() -> None:
    async with Emulator(seed=SEED) as emu, aiohttp.ClientSession() as s:
        emu.faults.fail_next(1, "latency", delay=2.0)
        with pytest.raises(asyncio.TimeoutError):
            await _send(s, emu, GET, timeout=aiohttp.ClientTimeout(sock_read=0.2))
        assert (await _send(s, emu, GET))[0] == 200  # the next one is served at once


async def test_faults_come_after_authentication() -> None:
    async with Emulator(seed=SEED, access_keys={"OTHER": "x"}) as emu, aiohttp.ClientSession() as s:
        emu.faults.fail_next(1, "internal_error")
        status, _, body = await _send(s, emu, GET)  # signed with the demo key, unknown here
        assert (status, json.loads(body)["errorCode"]) == (401, "Unauthorized")
        assert emu.faults.pending == 1
        assert emu.faults.injected == {}


async def _statuses(seed: int, n: int, config: FaultConfig) -> list[int]:
    async with Emulator(seed=SEED, faults=config, fault_seed=seed) as emu, aiohttp.ClientSession() as s:
        return [(await _send(s, emu, GET))[0] for _ in range(n)]


async def test_random_rates_are_about_right_and_repeatable() -> None:
    config = FaultConfig(throttle_rate=0.2, error_rate=0.3)
    first = await _statuses(7, 300, config)
    assert first == await _statuses(7, 300, config)  # same seed, same faults
    assert first != await _statuses(8, 300, config)
    throttled = first.count(403) / len(first)
    errors = sum(first.count(c) for c in (500, 502, 503)) / len(first)
    # Binomial sd at n=300 is about 0.025; 0.08 is more than 3 sd.
    assert abs(throttled - 0.2) < 0.08
    assert abs(errors - 0.3) < 0.08
    assert {500, 502, 503} <= set(first)


async def test_rates_can_be_scoped_and_changed_at_runtime() -> None:
    config = FaultConfig(error_rate=1.0, apis={"ListConsumerGroup"})
    async with Emulator(seed=SEED, faults=config) as emu, aiohttp.ClientSession() as s:
        assert (await _send(s, emu, GET))[0] == 200
        assert (await _send(s, emu, LIST))[0] in (500, 502, 503)
        emu.faults.configure(error_rate=0.0, throttle_rate=1.0, apis=None)
        assert (await _send(s, emu, GET))[0] == 403
        emu.faults.clear()
        assert (await _send(s, emu, GET))[0] == 200


async def test_connection_counter_shows_keep_alive_reuse() -> None:
    async with Emulator(seed=SEED) as emu:
        async with aiohttp.ClientSession() as s:
            for _ in range(10):
                assert (await _send(s, emu, GET))[0] == 200
        assert emu.counters.connections == 1
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            for _ in range(5):
                assert (await _send(s, emu, GET))[0] == 200
        assert emu.counters.connections == 6
        assert emu.counters.requests_total == 15
        emu.counters.reset()
        assert emu.counters.served == {}


def test_fault_config_validation() -> None:
    with pytest.raises(ValueError, match=r"0\.\.1"):
        FaultConfig(error_rate=1.5)
    with pytest.raises(ValueError, match="exceed 1"):
        FaultConfig(error_rate=0.6, throttle_rate=0.6)
    emu = Emulator()
    with pytest.raises(ValueError, match="unknown fault kind"):
        emu.faults.fail_next(1, "explode")  # type: ignore[arg-type]


@pytest.mark.parametrize("latency", [float("nan"), float("inf"), -float("inf"), -1.0, True, "5"])
def test_fault_config_rejects_latency_that_is_not_a_finite_number(latency) -> None:
    # nan passed "< 0" and made every request sleep forever; inf did so by request.
    with pytest.raises(ValueError, match="latency_ms"):
        FaultConfig(latency_ms=latency)
    with pytest.raises(ValueError, match="latency_ms"):
        Emulator().faults.configure(latency_ms=latency)


@pytest.mark.parametrize("rate", [float("nan"), float("inf"), -0.1, True])
def test_fault_config_rejects_rates_that_are_not_finite_numbers(rate) -> None:
    for name in ("throttle_rate", "error_rate", "reset_rate"):
        with pytest.raises(ValueError, match=name):
            FaultConfig(**{name: rate})


@pytest.mark.parametrize("n", [0, -1, 1.5, 1.0, True, "2"])
def test_fail_next_needs_an_int_count(n) -> None:
    # 1.5 never counted down to exactly 0, so it failed every request forever; True was 1.
    faults = Emulator().faults
    with pytest.raises(ValueError, match="n must be an integer"):
        faults.fail_next(n)
    assert faults.pending == 0


@pytest.mark.parametrize("delay", [float("nan"), float("inf"), -1.0])
def test_fail_next_needs_a_finite_delay(delay) -> None:
    faults = Emulator().faults
    with pytest.raises(ValueError, match="delay"):
        faults.fail_next(1, "latency", delay=delay)
    assert faults.pending == 0


async def test_finite_latency_still_serves() -> None:
    async with Emulator(seed=SEED, faults=FaultConfig(latency_ms=1.5)) as emu, aiohttp.ClientSession() as s:
        assert (await _send(s, emu, GET))[0] == 200
        assert emu.faults.injected["latency"] == 1
