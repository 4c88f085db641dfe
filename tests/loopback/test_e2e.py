"""End to end over real loopback sockets: CheckpointService vs the emulator.

Every test that goes through ``svc_for`` runs over the default ``AiohttpTransport`` and over the
opt-in ``Http11Transport``, each under asyncio and uvloop (``conftest.py``). Tests about one
transport's specifics pin ``transport_kind``.
"""

from __future__ import annotations

import asyncio
import gc
import re
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from aiosls import (
    NO_RETRY,
    AiohttpTransport,
    AlreadyExistsError,
    AuthError,
    CheckpointService,
    CheckpointTarget,
    Credentials,
    HttpRequest,
    HttpResponse,
    NotFoundError,
    ReadTimeout,
    ResponseParseError,
    RetryPolicy,
    ThrottlingError,
    Timeouts,
    TransientError,
    ValidationError,
)
from aiosls.emulator import Emulator, FaultConfig
from aiosls.transport.http11 import Http11Transport

AK, SK = "LTAIe2eKey", "e2e-secret-value"
STS_AK, STS_SK, STS_TOKEN = "STS.e2eKey", "sts-secret", "CAIS-e2e-token/abc+def=="
CHECKPOINT = "MTUyNDE1NTM3OTM3MzkwODQ5Ng=="


def fleet(groups: int = 3, shards: int = 4) -> dict[str, Any]:
    cgs = {
        f"cg-{g}": {
            "timeout": 60,
            "order": False,
            "checkpoints": {
                str(s): {"checkpoint": CHECKPOINT, "consumer": f"c-{s}", "update_time": 1524224984800922 + s}
                for s in range(shards)
                if s != shards - 1  # the last shard never committed
            },
        }
        for g in range(groups)
    }
    return {
        "projects": {
            "demo-project": {"logstores": {"app-log": {"shards": shards, "consumer_groups": cgs}}},
            "other-project": {
                "logstores": {"web-log": {"shards": 2, "consumer_groups": {"cg-x": {"timeout": 30}}}}
            },
        }
    }


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    keys = {AK: SK, STS_AK: STS_SK}
    async with Emulator(access_keys=keys, sts_tokens={STS_AK: STS_TOKEN}, seed=fleet()) as emulator:
        yield emulator


_kind = "aiohttp"
_borrowed: list[Http11Transport | AiohttpTransport] = []


@pytest.fixture(params=["aiohttp", "http11"], autouse=True)
async def transport_kind(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """Which transport ``svc_for`` gives the service (the default aiohttp one, or the lean one)."""
    global _kind
    _kind = request.param
    yield request.param
    _kind = "aiohttp"
    while _borrowed:
        await _borrowed.pop().aclose()


def transport_for_kind(**kw: Any) -> Http11Transport | AiohttpTransport:
    """A transport of this run's kind, closed by the test itself."""
    return Http11Transport(**kw) if _kind == "http11" else AiohttpTransport(**kw)


def svc_for(
    emu: Emulator, version: str = "v4", creds: Credentials | None = None, **kw: Any
) -> CheckpointService:
    if _kind == "http11" and "transport" not in kw and "session" not in kw:
        timeouts = kw.get("timeouts", Timeouts())
        kw["transport"] = Http11Transport(connect_timeout=timeouts.connect, read_timeout=timeouts.read)
        _borrowed.append(kw["transport"])
    return CheckpointService(
        emu.endpoint, creds or Credentials(AK, SK), signature_version=version, region="cn-hangzhou", **kw
    )


@pytest.mark.parametrize("transport_kind", ["aiohttp"], indirect=True)
async def test_the_default_transport_is_an_owned_aiohttp_one(emu: Emulator) -> None:
    seen: list[str] = []

    async with CheckpointService(emu.endpoint, Credentials(AK, SK), region="cn-hangzhou") as svc:
        assert type(svc.transport) is AiohttpTransport
        await svc.get_checkpoints("demo-project", "app-log", "cg-0")
        seen.append(svc._pipeline.user_agent)
    assert svc.transport._session is None  # closed with the service
    assert seen[0].startswith("aiosls/")
    assert f"aiohttp/{aiohttp.__version__}" in seen[0]


@pytest.mark.parametrize("version", ["v1", "v4"])
@pytest.mark.parametrize("sts", [False, True])
async def test_get_checkpoints_v1_v4_sts(emu: Emulator, version: str, sts: bool) -> None:
    creds = Credentials(STS_AK, STS_SK, STS_TOKEN) if sts else Credentials(AK, SK)
    async with svc_for(emu, version, creds) as svc:
        cps = await svc.get_checkpoints("demo-project", "app-log", "cg-0")
        one = await svc.get_checkpoints("demo-project", "app-log", "cg-0", shard=1)
        none = await svc.get_checkpoints("demo-project", "app-log", "cg-0", shard=99)
    assert [c.shard for c in cps] == [0, 1, 2, 3]
    assert [c.checkpoint for c in cps] == [CHECKPOINT, CHECKPOINT, CHECKPOINT, ""]
    assert cps[1].update_time_us == 1524224984800923
    assert cps[1].update_time.isoformat() == "2018-04-20T11:49:44.800923+00:00"
    assert cps[1].consumer == "c-1"
    assert not cps[3].committed
    assert [c.shard for c in one] == [1]
    assert none == []
    assert emu.counters.errors == Counter()


async def test_errors_carry_code_status_and_request_id(emu: Emulator) -> None:
    async with svc_for(emu) as svc:
        with pytest.raises(NotFoundError) as missing:
            await svc.get_checkpoints("demo-project", "app-log", "no-such-group")
        with pytest.raises(NotFoundError) as no_project:
            await svc.get_checkpoints("ghost-project", "app-log", "cg-0")
    assert missing.value.error_code == "ConsumerGroupNotExist"
    assert missing.value.status == 404
    assert re.fullmatch(r"[0-9A-F]{24}", missing.value.request_id or "")
    assert missing.value.attempts == 1
    assert no_project.value.error_code == "ProjectNotExist"
    assert emu.counters.requests["GetCheckPoint"] == 2  # not retried


@pytest.mark.parametrize("version", ["v1", "v4"])
async def test_wrong_secret_and_unknown_key(emu: Emulator, version: str) -> None:
    async with svc_for(emu, version, Credentials(AK, "wrong-secret")) as svc:
        with pytest.raises(AuthError) as wrong:
            await svc.get_checkpoints("demo-project", "app-log", "cg-0")
    async with svc_for(emu, version, Credentials("LTAIunknown", SK)) as svc:
        with pytest.raises(AuthError) as unknown:
            await svc.get_checkpoints("demo-project", "app-log", "cg-0")
    assert wrong.value.error_code == "SignatureNotMatch"
    assert wrong.value.status == 401
    assert unknown.value.status == 401
    assert "wrong-secret" not in str(wrong.value) + repr(wrong.value)


async def test_bad_names_send_nothing(emu: Emulator) -> None:
    async with svc_for(emu) as svc:
        for args in (
            ("demo-project", "app-log/../x", "cg-0"),
            ("demo-project", "app-log", "cg 0"),
            ("Demo_Project", "app-log", "cg-0"),
            ("demo-project", "app-log", "cg#0"),
        ):
            with pytest.raises(ValidationError):
                await svc.get_checkpoints(*args)
    assert emu.counters.requests_total == 0
    assert emu.counters.connections == 0


async def test_commit_and_read_back_and_group_lifecycle(emu: Emulator) -> None:
    async with svc_for(emu) as svc:
        await svc.create_consumer_group("demo-project", "app-log", "cg-new", timeout=30, order=True)
        with pytest.raises(AlreadyExistsError):
            await svc.create_consumer_group("demo-project", "app-log", "cg-new", timeout=30)
        await svc.create_consumer_group("demo-project", "app-log", "cg-new", timeout=45, exist_ok=True)
        groups = {g.name: g for g in await svc.list_consumer_groups("demo-project", "app-log")}
        assert groups["cg-new"].timeout == 45
        assigned = await svc.heartbeat("demo-project", "app-log", "cg-new", "worker-1", [])
        assert sorted(assigned) == [0, 1, 2, 3]
        cursor = await svc.get_cursor("demo-project", "app-log", 2, "end")
        await svc.update_checkpoint(
            "demo-project", "app-log", "cg-new", 2, cursor, consumer="worker-1", force_success=False
        )
        back = await svc.get_checkpoints("demo-project", "app-log", "cg-new", shard=2)
        assert back[0].checkpoint == cursor
        assert back[0].consumer == "worker-1"
        received = await svc.get_cursor_time("demo-project", "app-log", 2, cursor)
        assert received.tzinfo is not None
        await svc.delete_consumer_group("demo-project", "app-log", "cg-new")
        with pytest.raises(NotFoundError):
            await svc.get_checkpoints("demo-project", "app-log", "cg-new")
        assert await svc.list_logstores("demo-project") == ["app-log"]
        shards = await svc.list_shards("demo-project", "app-log")
        assert [s.shard_id for s in shards] == [0, 1, 2, 3]


async def recorded_sleep(_seconds: float) -> None:
    """The default policy's schedule, without waiting it out: yield to the loop only."""
    await asyncio.sleep(0)


async def test_1000_calls_under_heavy_faults_all_correct_with_default_policy() -> None:
    faults = FaultConfig(throttle_rate=0.20, error_rate=0.10, reset_rate=0.05)
    async with Emulator(access_keys={AK: SK}, seed=fleet(groups=10), faults=faults, fault_seed=42) as emu:
        async with svc_for(emu, sleep=recorded_sleep) as svc:
            targets = [CheckpointTarget("demo-project", "app-log", f"cg-{i % 10}") for i in range(1000)]
            results = [r async for r in svc.get_checkpoints_many(targets, concurrency=50)]
        injected = dict(emu.faults.injected)
    assert len(results) == 1000
    assert Counter(r.target.consumer_group for r in results) == Counter(t.consumer_group for t in targets)
    assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok][:3]
    assert all([c.checkpoint for c in r.unwrap()] == [CHECKPOINT] * 3 + [""] for r in results)
    # The faults really happened, at about the rates asked.
    total = emu.counters.requests_total
    assert 0.15 < injected.get("throttle", 0) / total < 0.25
    assert sum(injected.get(k, 0) for k in ("reset", "reset_mid_body")) > 0
    assert sum(injected.get(k, 0) for k in ("internal_error", "server_busy", "bad_gateway")) > 0


async def test_html_502_and_throttle_surface_typed_without_retry(emu: Emulator) -> None:
    async with svc_for(emu, retry=NO_RETRY) as svc:
        emu.faults.fail_next(1, "bad_gateway")
        with pytest.raises(TransientError) as bad_gateway:
            await svc.get_checkpoints("demo-project", "app-log", "cg-0")
        emu.faults.fail_next(1, "throttle")
        with pytest.raises(ThrottlingError) as throttled:
            await svc.get_checkpoints("demo-project", "app-log", "cg-0")
    assert bad_gateway.value.status == 502
    assert bad_gateway.value.error_code is None
    assert "502" in str(bad_gateway.value)
    assert throttled.value.error_code == "ReadQuotaExceed"
    assert throttled.value.status == 403


async def test_read_timeout_then_retry_succeeds(emu: Emulator) -> None:
    async with svc_for(emu, timeouts=Timeouts(read=0.2), sleep=recorded_sleep) as svc:
        emu.faults.fail_next(1, "latency", delay=1.0)
        cps = await svc.get_checkpoints("demo-project", "app-log", "cg-0")
        assert len(cps) == 4
        emu.faults.fail_next(1, "latency", delay=1.0)
        with pytest.raises(ReadTimeout):
            await svc.get_checkpoints("demo-project", "app-log", "cg-0", retry=NO_RETRY)


async def test_clock_skew_corrected_from_server_date(emu: Emulator) -> None:
    emu.clock_offset = timedelta(minutes=20)
    async with svc_for(emu) as svc:
        cps = await svc.get_checkpoints("demo-project", "app-log", "cg-0")
        again = await svc.get_checkpoints("demo-project", "app-log", "cg-1")
    assert len(cps) == len(again) == 4
    assert abs(svc.clock_offset - timedelta(minutes=20)) < timedelta(seconds=5)
    assert emu.counters.errors["RequestTimeExpired"] == 1  # learned once, kept afterwards


async def test_oversized_response_is_a_typed_error(emu: Emulator) -> None:
    emu.state.create_logstore("demo-project", "wide-log", shard_count=64)
    emu.state.create_consumer_group("demo-project", "wide-log", "cg-wide", timeout=60, order=False)
    transport = transport_for_kind(max_response_bytes=1024)
    async with svc_for(emu, transport=transport) as svc:
        with pytest.raises(ResponseParseError) as info:
            await svc.get_checkpoints("demo-project", "wide-log", "cg-wide")
    await transport.aclose()
    assert info.value.status == 200
    assert info.value.request_id
    assert "too large" in str(info.value)


async def test_fan_out_thousands_with_failures_keep_alive_and_exactly_one_result_each(emu: Emulator) -> None:
    emu.faults.configure(throttle_rate=0.3, apis={"GetCheckPoint"})
    targets = [CheckpointTarget("demo-project", "app-log", f"cg-{i % 3}", shard=i % 5) for i in range(2000)]
    targets += [CheckpointTarget("demo-project", "app-log", f"missing-{i}") for i in range(100)]
    policy = RetryPolicy(max_attempts=1, deadline=None)  # throttled targets fail fast and say so
    async with svc_for(emu) as svc:
        results = [r async for r in svc.get_checkpoints_many(targets, concurrency=32, retry=policy)]
    assert len(results) == len(targets)
    assert Counter(r.target for r in results) == Counter(targets)
    kinds = Counter(type(r.error).__name__ if r.error else "ok" for r in results)
    # Throttling is decided before the group lookup, so some missing groups are throttled too.
    missing = [r for r in results if r.target.consumer_group.startswith("missing")]
    assert all(isinstance(r.error, NotFoundError | ThrottlingError) for r in missing)
    assert kinds["NotFoundError"] == sum(isinstance(r.error, NotFoundError) for r in missing) >= 50
    assert 0.2 < kinds["ThrottlingError"] / len(targets) < 0.4
    assert kinds["ok"] + kinds["ThrottlingError"] + kinds["NotFoundError"] == len(targets)
    for r in results:
        if r.ok and r.target.shard is not None:
            assert [c.shard for c in r.unwrap()] == ([] if r.target.shard == 4 else [r.target.shard])
    assert emu.counters.connections <= 32


def fan_out_workers() -> list[asyncio.Task[Any]]:
    """Our fan-out's worker tasks (the emulator's own server tasks share this loop)."""
    return [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "_Pool.work"]  # type: ignore[union-attr]


async def test_breaking_out_of_a_fan_out_leaves_nothing_behind(emu: Emulator) -> None:
    emu.faults.configure(latency_ms=50)
    targets = [CheckpointTarget("demo-project", "app-log", "cg-0")] * 500
    async with svc_for(emu) as svc:
        async with svc.get_checkpoints_many(targets, concurrency=16) as stream:
            async for _ in stream:
                assert len(fan_out_workers()) == 16  # one worker per in-flight slot
                break
        assert fan_out_workers() == []
        # The pool keeps only idle keep-alive connections, never one per abandoned request.
        assert emu.counters.connections <= 16
        transport = svc.transport
        if isinstance(transport, Http11Transport):
            # Cancelled requests' sockets were dropped, not pooled half-read (at most the
            # first finished request's socket can be idle, if its worker had not reused it).
            assert transport.open_connections <= 1
    if isinstance(transport, Http11Transport):  # borrowed: closing it drops every socket
        await transport.aclose()
        assert transport.open_connections == 0
    # svc closed: a leaked connection or session would raise ResourceWarning (warnings are errors).
    gc.collect()


@pytest.mark.parametrize("transport_kind", ["aiohttp"], indirect=True)  # session= is aiohttp
async def test_borrowed_session_is_not_closed(emu: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with svc_for(emu, session=session) as svc:
            assert len(await svc.get_checkpoints("demo-project", "app-log", "cg-0")) == 4
        assert not session.closed
        async with session.get(emu.endpoint + "/") as resp:  # still usable
            assert resp.status >= 400


@pytest.mark.parametrize("transport_kind", ["aiohttp"], indirect=True)  # the service owns it
async def test_unclosed_service_warns() -> None:
    async with Emulator(access_keys={AK: SK}, seed=fleet()) as emu:
        svc = svc_for(emu)
        await svc.get_checkpoints("demo-project", "app-log", "cg-0")
        transport = svc.transport
        # Dropping the last reference runs __del__ at once (refcounting), so it must happen inside.
        with pytest.warns(ResourceWarning, match="unclosed"):  # noqa: PT031
            del svc
            gc.collect()
        await transport.aclose()


@pytest.mark.parametrize("transport_kind", ["aiohttp"], indirect=True)  # the default transport
async def test_https_is_the_default_and_verifies_certificates() -> None:
    svc = CheckpointService("127.0.0.1:1", Credentials(AK, SK), region="cn-hangzhou", retry=NO_RETRY)
    async with svc:
        with pytest.raises(TransientError) as info:  # ConnectError: nothing listens on port 1
            await svc.get_checkpoints("demo-project", "app-log", "cg-0")
    assert "https://127.0.0.1:1/" in repr(svc) or "https://127.0.0.1:1" in repr(svc)
    assert info.value.status is None


@pytest.mark.parametrize("transport_kind", ["aiohttp"], indirect=True)  # session= is aiohttp
async def test_cancel_mid_request_on_real_sockets_leaks_nothing(emu: Emulator) -> None:
    emu.faults.fail_next(1, "latency", delay=30.0)
    headers_sent = asyncio.Event()

    async def on_headers_sent(*_args: Any) -> None:
        headers_sent.set()

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(on_headers_sent)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        async with svc_for(emu, session=session) as svc:
            task = asyncio.create_task(svc.get_checkpoints("demo-project", "app-log", "cg-0"))
            await headers_sent.wait()  # the request is on the wire, its answer 30 s away
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The service still works afterwards.
            assert len(await svc.get_checkpoints("demo-project", "app-log", "cg-1")) == 4
        connector = session.connector
        assert connector is not None
        # The cancelled request's connection was dropped, not returned to the pool half-read.
        assert sum(len(conns) for conns in connector._conns.values()) <= 1
    # Closed: an unreleased connection or session would raise ResourceWarning here.
    gc.collect()


async def test_cancel_mid_backoff_on_real_sockets(emu: Emulator) -> None:
    emu.faults.fail_next(1, "server_busy")
    sleeping = asyncio.Event()

    async def sleep(_seconds: float) -> None:
        sleeping.set()
        await asyncio.Event().wait()

    async with svc_for(emu, sleep=sleep) as svc:
        task = asyncio.create_task(svc.get_checkpoints("demo-project", "app-log", "cg-0"))
        await sleeping.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert emu.counters.requests_total == 1


@pytest.mark.parametrize("transport_kind", ["aiohttp"], indirect=True)  # session= is aiohttp
async def test_borrowed_session_raising_for_status_still_gets_typed_errors(emu: Emulator) -> None:
    async with (
        aiohttp.ClientSession(raise_for_status=True) as session,
        svc_for(emu, session=session) as svc,
    ):
        with pytest.raises(NotFoundError) as info:
            await svc.get_checkpoints("demo-project", "app-log", "no-such-group")
    assert info.value.error_code == "ConsumerGroupNotExist"
    assert info.value.request_id
    assert emu.counters.requests_total == 1  # not retried as if the connection had failed


async def test_compressed_body_is_capped_after_decompression(unused_tcp_port: int) -> None:
    import gzip

    from aiohttp import web

    bomb = gzip.compress(b"[" + b" " * (8 * 1024 * 1024) + b"]")  # 8 MiB of JSON in ~8 KiB

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "x-log-requestid": "RIDGZ"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    try:
        transport = transport_for_kind(max_response_bytes=1024 * 1024)
        async with CheckpointService(
            f"http://127.0.0.1:{unused_tcp_port}",
            Credentials(AK, SK),
            region="cn-hangzhou",
            transport=transport,
        ) as svc:
            with pytest.raises(ResponseParseError, match="too large") as info:
                await svc.get_checkpoints("demo-project", "app-log", "cg-0")
        await transport.aclose()
    finally:
        await runner.cleanup()
    assert info.value.request_id == "RIDGZ"


@pytest.mark.parametrize("transport_kind", ["aiohttp"], indirect=True)  # session= is aiohttp
async def test_scan_discovery_counts_against_the_concurrency_bound(emu: Emulator) -> None:
    for i in range(12):
        emu.state.create_logstore("demo-project", f"ls-{i:02d}", shard_count=1)
        emu.state.create_consumer_group("demo-project", f"ls-{i:02d}", "cg-a", timeout=60, order=False)
    emu.faults.configure(latency_ms=20)
    in_flight = peak = 0
    trace = aiohttp.TraceConfig()

    async def start(*_args: Any) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)

    async def end(*_args: Any) -> None:
        nonlocal in_flight
        in_flight -= 1

    trace.on_request_start.append(start)
    trace.on_request_end.append(end)
    trace.on_request_exception.append(end)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session, svc_for(emu, session=session) as svc:
        results = [r async for r in svc.scan("demo-project", concurrency=3)]
    assert sum(r.ok for r in results) == 12 + 3  # the new groups and the seeded app-log ones
    assert peak <= 3


@pytest.mark.parametrize("transport_kind", ["aiohttp"], indirect=True)  # the default transport
async def test_no_token_in_request_repr_or_error_chain(unused_tcp_port: int) -> None:
    from aiosls import InMemoryTransport, TransportError

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 9999 Not A Status\r\n\r\n")  # aiohttp: ClientResponseError
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", unused_tcp_port)
    creds = Credentials(STS_AK, STS_SK, STS_TOKEN)
    try:
        async with CheckpointService(
            f"http://127.0.0.1:{unused_tcp_port}", creds, region="cn-hangzhou", retry=NO_RETRY
        ) as svc:
            with pytest.raises(TransportError) as info:
                await svc.get_checkpoints("demo-project", "app-log", "cg-0")
    finally:
        server.close()
        await server.wait_closed()
    chain = [info.value, info.value.__cause__, info.value.__context__]
    assert all(STS_TOKEN not in repr(e) and STS_TOKEN not in str(e) for e in chain)
    # Recorded requests (a test double users inspect) never show the token or the signature.
    recorder = InMemoryTransport(lambda _r: HttpResponse(200, {}, b"[]"))
    async with svc_for_endpoint(f"http://127.0.0.1:{unused_tcp_port}", creds, recorder) as svc:
        await svc.get_checkpoints("demo-project", "app-log", "cg-0")
    shown = repr(recorder.requests[0])
    assert STS_TOKEN not in shown
    assert recorder.requests[0].headers["Authorization"] not in shown


def svc_for_endpoint(endpoint: str, creds: Credentials, transport: Any) -> CheckpointService:
    return CheckpointService(endpoint, creds, region="cn-hangzhou", transport=transport)


@pytest.mark.parametrize("transport_kind", ["aiohttp"], indirect=True)  # Http11Transport: its own tests
async def test_aiohttp_transport_verifies_certificates_and_takes_a_trusting_context(
    unused_tcp_port: int,
) -> None:
    import ssl

    import trustme
    from aiohttp import web

    from aiosls import CertificateError

    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    answered = 0

    async def handler(_request: web.Request) -> web.Response:
        nonlocal answered
        answered += 1
        return web.Response(body=b"[]", headers={"x-log-requestid": "RIDTLS"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port, ssl_context=server_tls).start()
    endpoint = f"https://127.0.0.1:{unused_tcp_port}"
    try:
        # Default: the system CAs, which do not know trustme's: a ClientError, never retried.
        untrusted = AiohttpTransport()
        async with svc_for_endpoint(endpoint, Credentials(AK, SK), untrusted) as svc:
            with pytest.raises(CertificateError, match="certificate verification failed") as info:
                await svc.get_checkpoints("demo-project", "app-log", "cg-0")
        await untrusted.aclose()
        assert info.value.attempts == 1
        assert answered == 0
        # A context trusting the CA: its own transport, or a borrowed session's per request.
        trusted = AiohttpTransport(ssl_context=trusting)
        async with svc_for_endpoint(endpoint, Credentials(AK, SK), trusted) as svc:
            assert await svc.get_checkpoints("demo-project", "app-log", "cg-0") == []
        await trusted.aclose()
        async with (
            aiohttp.ClientSession() as session,
            CheckpointService(
                endpoint, Credentials(AK, SK), region="cn-hangzhou", session=session, ssl_context=trusting
            ) as svc,
        ):
            assert await svc.get_checkpoints("demo-project", "app-log", "cg-0") == []
        assert answered == 2
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("transport_kind", ["http11"], indirect=True)  # each transport is named below
@pytest.mark.parametrize("make", [Http11Transport, AiohttpTransport, "memory"])
async def test_a_transport_of_ones_own_is_an_async_context_manager(emu: Emulator, make: Any) -> None:
    from aiosls import InMemoryTransport, ServiceClosedError

    transport = InMemoryTransport(lambda _r: HttpResponse(200, {}, b"[]")) if make == "memory" else make()
    async with transport as t, svc_for(emu, transport=t) as svc:
        assert t is transport
        await svc.get_checkpoints("demo-project", "app-log", "cg-0")
    with pytest.raises(ServiceClosedError):  # closed on the way out, though the service did not own it
        await transport.send(HttpRequest("GET", emu.endpoint + "/", {"Host": "h"}))
