"""CheckpointService over the in-memory transport: the logic above the wire, no sockets."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta

import pytest
from helpers import T0, FakeTime, checkpoints_body, ok, scripted, sls_error, split

from aiosls import (
    NO_RETRY,
    AuthError,
    CheckpointService,
    CheckpointTarget,
    ClientError,
    ClockSkewError,
    ConnectError,
    Credentials,
    HttpRequest,
    HttpResponse,
    InMemoryTransport,
    NotFoundError,
    ReadTimeout,
    RefreshingCredentialsProvider,
    ResponseParseError,
    RetryPolicy,
    ServiceClosedError,
    ThrottlingError,
    Timeouts,
    TransientError,
    TransportError,
    ValidationError,
    signing,
)

CREDS = Credentials("AKID", "s3cret-value", security_token=None)


def make(handler, *, time: FakeTime | None = None, **kwargs) -> tuple[CheckpointService, InMemoryTransport]:
    time = time or FakeTime()
    transport = InMemoryTransport(handler)
    kwargs.setdefault("region", "cn-hangzhou")
    svc = CheckpointService(
        endpoint="cn-hangzhou.log.aliyuncs.com",
        credentials=kwargs.pop("credentials", CREDS),
        transport=transport,
        clock=time.clock,
        sleep=time.sleep,
        monotonic=time.monotonic,
        rng=random.Random(7),
        **kwargs,
    )
    return svc, transport


async def test_get_checkpoints_all_shards_and_one_shard() -> None:
    def handler(request: HttpRequest) -> HttpResponse:
        path, query = split(request)
        assert path == "/logstores/app-log/consumergroups/cg-main"
        body = checkpoints_body(4)
        if "shard" in query:
            body = [cp for cp in body if cp["shard"] == int(query["shard"])]
        return ok(body)

    svc, transport = make(handler)
    async with svc:
        cps = await svc.get_checkpoints("my-project", "app-log", "cg-main")
        one = await svc.get_checkpoints("my-project", "app-log", "cg-main", shard=1)
        missing = await svc.get_checkpoints("my-project", "app-log", "cg-main", shard=9)
    assert [cp.shard for cp in cps] == [0, 1, 2, 3]
    assert cps[0].checkpoint == "MTUy0=="
    assert cps[0].consumer == "c-0"
    assert cps[0].update_time == datetime(2018, 4, 20, 11, 49, 44, 800922, tzinfo=UTC)
    assert cps[0].update_time_us == 1524224984800922
    assert [cp.shard for cp in one] == [1]
    assert missing == []
    first = transport.requests[0]
    assert (
        first.url
        == "https://my-project.cn-hangzhou.log.aliyuncs.com/logstores/app-log/consumergroups/cg-main"
    )
    assert "shard" not in first.url  # all shards: no shard parameter at all
    assert transport.requests[1].url.endswith("?shard=1")
    assert first.headers["Authorization"].startswith("SLS4-HMAC-SHA256 Credential=AKID/20240905/cn-hangzhou/")


async def test_v1_signature_and_sts_token_headers() -> None:
    svc, transport = make(
        scripted(ok([])), signature_version="v1", credentials=Credentials("STS.ak", "sk", "tok")
    )
    async with svc:
        await svc.get_checkpoints("my-project", "app-log", "cg-main")
    headers = transport.requests[0].headers
    assert headers["Authorization"].startswith("LOG STS.ak:")
    assert headers["x-acs-security-token"] == "tok"
    assert headers["Date"] == "Thu, 05 Sep 2024 08:30:15 GMT"
    assert "x-log-date" not in headers


async def test_invalid_names_fail_before_any_request() -> None:
    svc, transport = make(scripted())
    async with svc:
        with pytest.raises(ValidationError, match="logstore") as info:
            await svc.get_checkpoints("my-project", "app/../x", "cg")
        with pytest.raises(ValidationError, match="project"):
            await svc.get_checkpoints("My_Project", "app-log", "cg")
        with pytest.raises(ValidationError, match="consumer_group"):
            await svc.get_checkpoints("my-project", "app-log", "cg?shard=1")
        with pytest.raises(ValidationError, match="shard"):
            await svc.get_checkpoints("my-project", "app-log", "cg", shard=-1)
        with pytest.raises(ValueError, match="shard"):  # ValidationError is also a ValueError
            await svc.get_checkpoints("my-project", "app-log", "cg", shard=True)  # type: ignore[arg-type]
    assert transport.requests == []
    assert info.value.status is None


@pytest.mark.parametrize(
    ("response", "cls", "code"),
    [
        (sls_error(404, "ConsumerGroupNotExist"), NotFoundError, "ConsumerGroupNotExist"),
        (sls_error(404, "ProjectNotExist"), NotFoundError, "ProjectNotExist"),
        (sls_error(401, "SignatureNotMatch"), AuthError, "SignatureNotMatch"),
        (sls_error(400, "ParameterInvalid"), ClientError, "ParameterInvalid"),
    ],
)
async def test_non_retryable_errors_surface_on_first_attempt(response, cls, code) -> None:
    time = FakeTime()
    svc, transport = make(scripted(response), time=time)
    async with svc:
        with pytest.raises(cls) as info:
            await svc.get_checkpoints("my-project", "app-log", "cg-main")
    assert info.value.error_code == code
    assert info.value.status == response.status
    assert info.value.request_id == response.headers["x-log-requestid"]
    assert len(transport.requests) == 1
    assert time.sleeps == []


async def test_retries_throttling_and_transient_then_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    time = FakeTime()
    svc, transport = make(
        scripted(
            sls_error(403, "ReadQuotaExceed"),
            sls_error(503, "ServerBusy"),
            ConnectError("refused"),
            HttpResponse(502, {}, b"<html><body>502 Bad Gateway</body></html>"),
            ok(checkpoints_body(1)),
        ),
        time=time,
    )
    with caplog.at_level(logging.DEBUG, logger="aiosls"):
        async with svc:
            cps = await svc.get_checkpoints("my-project", "app-log", "cg-main")
    assert [cp.shard for cp in cps] == [0]
    assert len(transport.requests) == 5
    # One DEBUG line per retry (quiet by default), naming operation, logstore, code; no secret.
    retry_records = [r for r in caplog.records if r.name == "aiosls.retry"]
    assert {r.levelno for r in retry_records} == {logging.DEBUG}
    retry_lines = [r.getMessage() for r in retry_records]
    assert len(retry_lines) == 4
    assert "GetCheckPoint my-project/app-log" in retry_lines[0]
    assert "ReadQuotaExceed" in retry_lines[0]
    assert "ServerBusy" in retry_lines[1]
    assert all("s3cret" not in line for line in caplog.messages)
    # Throttling uses the long curve (ceiling 1 s), the rest the short one (0.2, 0.4, 0.8 s ceilings).
    assert len(time.sleeps) == 4
    assert 0 <= time.sleeps[0] <= 1.0
    assert 0 <= time.sleeps[1] <= 0.4
    assert 0 <= time.sleeps[2] <= 0.8
    assert 0 <= time.sleeps[3] <= 1.6


async def test_one_warning_when_giving_up_and_counters(caplog: pytest.LogCaptureFixture) -> None:
    time = FakeTime()
    busy = [sls_error(503, "ServerBusy") for _ in range(3)]
    svc, _ = make(scripted(*busy, ok([])), time=time, retry=RetryPolicy(max_attempts=3, deadline=None))
    with caplog.at_level(logging.WARNING, logger="aiosls"):
        async with svc:
            with pytest.raises(TransientError) as failed:
                await svc.get_checkpoints("my-project", "app-log", "cg-main")
            await svc.get_checkpoints("my-project", "app-log", "cg-main")
            assert svc.requests_sent == 4
            assert svc.retries == 2
            assert svc.request_counts == {
                ("GetCheckPoint", "server_error"): 3,
                ("GetCheckPoint", "ok"): 1,
            }
    assert failed.value.attempts == 3
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == "giving up on GetCheckPoint my-project/app-log after 3 attempts: ServerBusy"


async def test_retry_after_is_honoured_within_the_deadline() -> None:
    time = FakeTime()
    svc, _ = make(scripted(sls_error(503, "ServerBusy", **{"Retry-After": "30"}), ok([])), time=time)
    async with svc:
        await svc.get_checkpoints("my-project", "app-log", "cg-main")
    assert time.sleeps == [30.0]
    # Past the deadline, the call gives up at once with the server's error.
    time2 = FakeTime()
    policy = RetryPolicy(deadline=10.0)
    busy = sls_error(503, "ServerBusy", **{"Retry-After": "30"})
    svc2, transport = make(scripted(busy), time=time2, retry=policy)
    async with svc2:
        with pytest.raises(TransientError) as failed:
            await svc2.get_checkpoints("my-project", "app-log", "cg-main")
    assert failed.value.error_code == "ServerBusy"
    assert time2.sleeps == []
    assert len(transport.requests) == 1


async def test_connect_failures_get_their_own_small_budget() -> None:
    time = FakeTime()
    svc, transport = make(scripted(*[ConnectError("refused") for _ in range(12)]), time=time)
    async with svc:
        with pytest.raises(ConnectError) as failed:
            await svc.get_checkpoints("my-project", "app-log", "cg-main")
    assert len(transport.requests) == 3  # not the policy's twelve
    assert failed.value.attempts == 3


async def test_every_attempt_is_re_signed_with_a_fresh_date() -> None:
    time = FakeTime()
    svc, transport = make(scripted(sls_error(500, "InternalServerError"), ok([])), time=time)
    async with svc:
        # The clock jumps an hour between the attempts (e.g. a laptop resumed from sleep).
        await svc.get_checkpoints("my-project", "app-log", "cg-main", shard=0)
    assert len(time.sleeps) == 1
    first, second = transport.requests
    expected = signing.v4_timestamp(T0 + timedelta(seconds=time.sleeps[0]))
    assert first.headers["x-log-date"] == "20240905T083015Z"
    assert second.headers["x-log-date"] == expected
    assert (first.headers["x-log-date"] == expected) == (
        first.headers["Authorization"] == second.headers["Authorization"]
    )


async def test_re_signing_uses_the_clock_at_each_attempt() -> None:
    time = FakeTime()

    def handler(request: HttpRequest) -> HttpResponse:
        time.now += timedelta(hours=1)  # time passes while the first attempt is on the wire
        return sls_error(503, "ServerBusy") if len(transport.requests) == 1 else ok([])

    svc, transport = make(handler, time=time)
    async with svc:
        await svc.get_checkpoints("my-project", "app-log", "cg-main")
    first, second = transport.requests
    assert first.headers["x-log-date"] == "20240905T083015Z"
    assert second.headers["x-log-date"].startswith("20240905T0930")
    assert first.headers["Authorization"] != second.headers["Authorization"]


async def test_gives_up_after_max_attempts_with_our_error_and_attempt_count() -> None:
    time = FakeTime()
    svc, transport = make(
        lambda _req: sls_error(403, "ReadQuotaExceed"),
        time=time,
        retry=RetryPolicy(max_attempts=4, deadline=None),
    )
    async with svc:
        with pytest.raises(ThrottlingError) as info:
            await svc.get_checkpoints("my-project", "app-log", "cg-main")
    assert len(transport.requests) == 4
    assert info.value.attempts == 4
    assert "after 4 attempts" in str(info.value)
    assert len(time.sleeps) == 3


async def test_deadline_stops_before_a_sleep_that_would_cross_it() -> None:
    time = FakeTime()
    policy = RetryPolicy(max_attempts=100, deadline=10.0)
    svc, transport = make(lambda _req: sls_error(403, "ReadQuotaExceed"), time=time, retry=policy)
    async with svc:
        with pytest.raises(ThrottlingError):
            await svc.get_checkpoints("my-project", "app-log", "cg-main")
    assert sum(time.sleeps) < 10.0
    assert len(transport.requests) == len(time.sleeps) + 1


async def test_parse_errors_are_typed_and_not_retried() -> None:
    svc, transport = make(scripted(HttpResponse(200, {"x-log-requestid": "RID1"}, b"<html>")))
    async with svc:
        with pytest.raises(ResponseParseError) as info:
            await svc.get_checkpoints("my-project", "app-log", "cg-main")
    assert info.value.status == 200
    assert info.value.request_id == "RID1"
    assert len(transport.requests) == 1


async def test_read_timeout_retried_for_reads() -> None:
    svc, transport = make(scripted(ReadTimeout("slow"), TransportError("reset"), ok([])))
    async with svc:
        assert await svc.get_checkpoints("my-project", "app-log", "cg-main") == []
    assert len(transport.requests) == 3


async def test_no_retry_policy_per_call() -> None:
    svc, transport = make(scripted(sls_error(503, "ServerBusy")))
    async with svc:
        with pytest.raises(TransientError):
            await svc.get_checkpoints("my-project", "app-log", "cg-main", retry=NO_RETRY)
    assert len(transport.requests) == 1


async def test_clock_skew_is_learned_from_the_server_date_and_kept() -> None:
    time = FakeTime()
    server_now = T0 + timedelta(hours=1)
    svc, transport = make(
        scripted(
            sls_error(400, "RequestTimeExpired", Date="Thu, 05 Sep 2024 09:30:15 GMT"),
            ok([]),
            ok([]),
        ),
        time=time,
    )
    async with svc:
        await svc.get_checkpoints("my-project", "app-log", "cg-main")
        await svc.get_checkpoints("my-project", "app-log", "cg-main")
    assert svc.clock_offset == server_now - T0
    dates = [r.headers["x-log-date"] for r in transport.requests]
    assert dates == ["20240905T083015Z", "20240905T093015Z", "20240905T093015Z"]
    assert time.sleeps == []


async def test_expired_sts_token_is_refreshed_once_and_retried() -> None:
    issued: list[Credentials] = []

    async def fetch() -> Credentials:
        creds = Credentials("STS.ak", "sk", f"token-{len(issued)}", expiration=T0 + timedelta(hours=1))
        issued.append(creds)
        return creds

    time = FakeTime()
    provider = RefreshingCredentialsProvider(fetch, clock=time.clock)
    svc, transport = make(
        scripted(sls_error(401, "Unauthorized", "The security token you provided has expired"), ok([])),
        time=time,
        credentials=provider,
    )
    async with svc:
        assert await svc.get_checkpoints("my-project", "app-log", "cg-main") == []
    tokens = [r.headers["x-acs-security-token"] for r in transport.requests]
    assert tokens == ["token-0", "token-1"]
    assert provider.refresh_count == 2


async def test_total_timeout_bounds_the_whole_call() -> None:
    async def never(_req: HttpRequest) -> HttpResponse:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    svc, _ = make(never, timeouts=Timeouts(total=0.05))
    async with svc:
        with pytest.raises(ReadTimeout, match="total timeout"):
            await svc.get_checkpoints("my-project", "app-log", "cg-main")


async def test_cancellation_mid_request_propagates_untouched() -> None:
    started = asyncio.Event()

    async def hang(_req: HttpRequest) -> HttpResponse:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    svc, _ = make(hang)
    async with svc:
        task = asyncio.create_task(svc.get_checkpoints("my-project", "app-log", "cg-main"))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_cancellation_mid_backoff_propagates_untouched() -> None:
    sleeping = asyncio.Event()

    async def slow_sleep(_seconds: float) -> None:
        sleeping.set()
        await asyncio.Event().wait()

    transport = InMemoryTransport(lambda _r: sls_error(503, "ServerBusy"))
    async with CheckpointService(
        "cn-hangzhou.log.aliyuncs.com", CREDS, transport=transport, sleep=slow_sleep
    ) as svc:
        task = asyncio.create_task(svc.get_checkpoints("my-project", "app-log", "cg-main"))
        await sleeping.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(transport.requests) == 1


async def test_closed_service_refuses_use_and_close_is_idempotent() -> None:
    svc, transport = make(scripted(ok([])))
    async with svc:
        pass
    await svc.aclose()
    assert svc.closed
    assert transport.closed is False  # a transport passed in is borrowed, not closed
    with pytest.raises(ServiceClosedError):
        await svc.get_checkpoints("my-project", "app-log", "cg-main")
    with pytest.raises(ServiceClosedError):
        async with svc:
            pass


def test_v4_without_a_derivable_region_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="region"):
        CheckpointService("http://127.0.0.1:8080", CREDS, signature_version="v4")
    with pytest.raises(ValueError, match="signature_version"):
        CheckpointService("cn-hangzhou.log.aliyuncs.com", CREDS, signature_version="v2")  # type: ignore[arg-type]


async def test_update_checkpoint_wire_format_and_prompt_retry() -> None:
    time = FakeTime()
    svc, transport = make(
        lambda _r: sls_error(500, "InternalServerError"),
        time=time,
    )
    async with svc:
        with pytest.raises(TransientError):
            await svc.update_checkpoint(
                "my-project", "app-log", "cg-main", 1, "MTcy+MzA5/NDEz==", consumer="worker 1"
            )
    request = transport.requests[0]
    path, query = split(request)
    assert path == "/logstores/app-log/consumergroups/cg-main"
    assert query == {"type": "checkpoint", "consumer": "worker 1", "forceSuccess": "true"}
    assert "consumer=worker%201" in request.url
    assert request.body == b'{"shard":1,"checkpoint":"MTcy+MzA5/NDEz=="}'
    assert request.headers["Content-Type"] == "application/json"
    # Prompt only: 3 attempts, each sleep at most half a second, all within 2 s.
    assert len(transport.requests) == 3
    assert all(s <= 0.5 for s in time.sleeps)


async def test_discovery_calls() -> None:
    def handler(request: HttpRequest) -> HttpResponse:
        path, query = split(request)
        if path == "/logstores":
            offset, size = int(query["offset"]), int(query["size"])
            names = [f"ls-{i:04d}" for i in range(1203)][offset : offset + size]
            return ok({"count": len(names), "total": 1203, "logstores": names})
        if path.endswith("/consumergroups"):
            return ok([{"name": "cg-a", "timeout": 60, "order": False}])
        if path.endswith("/shards"):
            return ok(
                [
                    {
                        "shardID": 0,
                        "status": "readwrite",
                        "inclusiveBeginKey": "00",
                        "exclusiveEndKey": "ff",
                        "createTime": 1700000000,
                    }
                ]
            )
        raise AssertionError(path)

    svc, transport = make(handler)
    async with svc:
        stores = await svc.list_logstores("my-project")
        groups = await svc.list_consumer_groups("my-project", "ls-0001")
        shards = await svc.list_shards("my-project", "ls-0001")
    assert len(stores) == 1203
    assert stores[0] == "ls-0000"
    assert len(transport.requests) == 3 + 2  # three pages of 500
    assert groups[0].name == "cg-a"
    assert groups[0].timeout == 60
    assert shards[0].shard_id == 0
    assert shards[0].create_time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_credentials_never_show_secrets() -> None:
    creds = Credentials("AKID", "s3cret-value", "sts-tok3n")
    for text in (repr(creds), str(creds), repr(RefreshingCredentialsProvider(lambda: None))):  # type: ignore[arg-type,return-value]
        assert "s3cret" not in text
        assert "tok3n" not in text
    assert "AKID" in repr(creds)


async def test_an_absurd_server_date_is_not_learned() -> None:
    time = FakeTime()
    svc, transport = make(
        scripted(
            sls_error(400, "RequestTimeExpired", Date="Fri, 31 Dec 9999 23:59:59 GMT"),
            ok([]),
        ),
        time=time,
    )
    async with svc:
        with pytest.raises(ClockSkewError):
            await svc.get_checkpoints("my-project", "app-log", "cg-main")
        assert svc.clock_offset == timedelta(0)
        assert await svc.get_checkpoints("my-project", "app-log", "cg-main") == []  # still signs fine
    assert len(transport.requests) == 2


async def test_a_failing_credentials_provider_is_an_auth_error_per_target() -> None:
    class Broken:
        async def get_credentials(self) -> Credentials:
            raise ConnectionResetError("sts endpoint down")

    svc, transport = make(scripted(), credentials=Broken())
    async with svc:
        with pytest.raises(AuthError, match="could not obtain credentials") as info:
            await svc.get_checkpoints("my-project", "app-log", "cg-main")
        targets = [CheckpointTarget("my-project", "app-log", f"cg-{i}") for i in range(3)]
        results = [r async for r in svc.get_checkpoints_many(targets, concurrency=2)]
    assert info.value.error_code == "CredentialsUnavailable"
    # Unchained: a provider's own exception may quote what it fetched (a key, a token).
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert [type(r.error) for r in results] == [AuthError] * 3
    assert transport.requests == []
