"""Fan-out over the in-memory transport: bounds, streaming, partial failure, cleanup."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest
from helpers import FakeTime, checkpoints_body, ok, sls_error, split

from aiosls import (
    NO_RETRY,
    CheckpointService,
    CheckpointTarget,
    Credentials,
    HttpRequest,
    HttpResponse,
    InMemoryTransport,
    NotFoundError,
    ThrottlingError,
    ValidationError,
)

CREDS = Credentials("AKID", "secret")


def group_of(request: HttpRequest) -> str:
    return split(request)[0].rsplit("/", 1)[1]


class Gate:
    """An async handler that records concurrency and can hold requests until released."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.per_project: Counter[str] = Counter()
        self.peak_per_project: Counter[str] = Counter()
        self.release = asyncio.Event()
        self.release.set()
        self.saturate_at = 0
        self.saturated = asyncio.Event()

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        project = request.headers["Host"].split(".", 1)[0]
        self.in_flight += 1
        self.per_project[project] += 1
        self.peak = max(self.peak, self.in_flight)
        if self.saturate_at and self.in_flight >= self.saturate_at:
            self.saturated.set()
        self.peak_per_project[project] = max(self.peak_per_project[project], self.per_project[project])
        try:
            await asyncio.sleep(0)  # let the others pile up
            await self.release.wait()
            group = group_of(request)
            if group.startswith("missing"):
                return sls_error(404, "ConsumerGroupNotExist")
            if group.startswith("throttled"):
                return sls_error(403, "ReadQuotaExceed")
            return ok(checkpoints_body(2))
        finally:
            self.in_flight -= 1
            self.per_project[project] -= 1


def service(handler, **kwargs) -> tuple[CheckpointService, InMemoryTransport]:
    transport = InMemoryTransport(handler, record=False)
    return CheckpointService("cn-hangzhou.log.aliyuncs.com", CREDS, transport=transport, **kwargs), transport


def targets(n: int, *, project: str = "proj-a", prefix: str = "cg") -> list[CheckpointTarget]:
    return [CheckpointTarget(project, "app-log", f"{prefix}-{i}") for i in range(n)]


async def test_thousands_of_targets_one_result_each_with_partial_failures() -> None:
    gate = Gate()
    time = FakeTime()  # the throttled project's cool-downs pass without waiting
    svc, _ = service(gate, sleep=time.sleep, monotonic=time.monotonic, clock=time.clock)
    wanted = targets(1500) + targets(100, prefix="missing") + targets(50, prefix="throttled")
    wanted.append(CheckpointTarget("proj-a", "bad/name", "cg"))
    async with svc:
        results = [r async for r in svc.get_checkpoints_many(wanted, concurrency=32, retry=NO_RETRY)]
    assert len(results) == len(wanted)
    assert {r.target for r in results} == set(wanted)
    by_kind = Counter(type(r.error).__name__ if r.error else "ok" for r in results)
    assert by_kind == {"ok": 1500, "NotFoundError": 100, "ThrottlingError": 50, "ValidationError": 1}
    good = next(r for r in results if r.ok)
    assert good.checkpoints is not None
    assert [cp.shard for cp in good.unwrap()] == [0, 1]
    bad = next(r for r in results if isinstance(r.error, NotFoundError))
    assert bad.error is not None
    assert bad.error.request_id is not None
    with pytest.raises(NotFoundError):
        bad.unwrap()
    assert gate.peak <= 32


async def test_concurrency_bound_is_respected_and_reached() -> None:
    gate = Gate()
    svc, _ = service(gate)
    async with svc:
        results = [r async for r in svc.get_checkpoints_many(targets(500), concurrency=16)]
    assert len(results) == 500
    assert gate.peak == 16


async def test_per_project_cap() -> None:
    gate = Gate()
    svc, _ = service(gate)
    mixed = [
        t
        for pair in zip(targets(200, project="proj-a"), targets(200, project="proj-b"), strict=True)
        for t in pair
    ]
    async with svc:
        results = [
            r async for r in svc.get_checkpoints_many(mixed, concurrency=20, per_project_concurrency=4)
        ]
    assert len(results) == 400
    assert gate.peak_per_project["proj-a"] <= 4
    assert gate.peak_per_project["proj-b"] <= 4
    assert gate.peak <= 8


async def test_a_throttled_project_slows_down_alone() -> None:
    """proj-a throttles every request; proj-b's targets are all served, while the requests to
    proj-a fall to a trickle paced by its cool-down (fake time: nothing really waits)."""
    time = FakeTime()
    sent: Counter[str] = Counter()

    def handler(request: HttpRequest) -> HttpResponse:
        project = request.headers["Host"].split(".", 1)[0]
        sent[project] += 1
        if project == "proj-a":
            return sls_error(403, "ReadQuotaExceed")
        return ok([])

    svc, _ = service(handler, sleep=time.sleep, monotonic=time.monotonic, clock=time.clock)
    wanted = [t for pair in zip(targets(50), targets(50, project="proj-b"), strict=True) for t in pair]
    async with svc:
        results = [r async for r in svc.get_checkpoints_many(wanted, concurrency=8)]
    by_project = Counter((r.target.project, r.ok) for r in results)
    assert by_project == {("proj-a", False): 50, ("proj-b", True): 50}
    assert sent["proj-b"] == 50
    # Without backpressure: 50 targets x 12 attempts = 600 requests to proj-a.
    assert sent["proj-a"] < 600
    elapsed = time.mono - 1000.0
    assert sent["proj-a"] / elapsed < 8  # under one request per worker per (fake) second


async def test_throttling_storm_keeps_tasks_and_rate_bounded() -> None:
    """Every request throttled: live tasks stay at the pool size and the request rate falls."""
    time = FakeTime()
    peak_tasks = 0
    requests = 0

    def handler(_request: HttpRequest) -> HttpResponse:
        nonlocal peak_tasks, requests
        requests += 1
        peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
        return sls_error(403, "ReadQuotaExceed")

    svc, _ = service(handler, sleep=time.sleep, monotonic=time.monotonic, clock=time.clock)
    async with svc:
        count = 0
        async for result in svc.get_checkpoints_many(targets(300), concurrency=10):
            assert isinstance(result.error, ThrottlingError)
            count += 1
    assert count == 300
    assert peak_tasks <= 10 + 2  # the pool, the test's own task, and nothing per target
    elapsed = time.mono - 1000.0
    assert requests / elapsed < 10  # the old code sent ~1,450 requests per second


async def test_lazy_source_of_100k_targets_stays_bounded() -> None:
    pulled = 0
    max_tasks = 0

    def lazy() -> Iterator[CheckpointTarget]:
        nonlocal pulled
        for i in range(100_000):
            pulled += 1
            yield CheckpointTarget("proj-a", "app-log", f"cg-{i}")

    def handler(_request: HttpRequest) -> HttpResponse:
        nonlocal max_tasks
        max_tasks = max(max_tasks, len(asyncio.all_tasks()))
        return ok([])

    svc, _ = service(handler)
    count = 0
    async with svc:
        async for result in svc.get_checkpoints_many(lazy(), concurrency=8):
            count += 1
            assert result.ok
            # The source is pulled only as fast as results are consumed.
            assert pulled - count <= 2 * 8 + 1
    assert count == 100_000
    assert max_tasks <= 2 * 8 + 1  # the pool plus the test's own task: no task per target


async def test_async_iterable_source() -> None:
    async def source() -> AsyncIterator[CheckpointTarget]:
        for t in targets(30):
            await asyncio.sleep(0)
            yield t

    svc, _ = service(lambda _r: ok([]))
    async with svc:
        results = [r async for r in svc.get_checkpoints_many(source(), concurrency=4)]
    assert sorted(r.target.consumer_group for r in results) == sorted(t.consumer_group for t in targets(30))


async def test_breaking_out_cancels_in_flight_work() -> None:
    gate = Gate()
    svc, _ = service(gate)
    baseline = len(asyncio.all_tasks())
    async with svc:
        async with svc.get_checkpoints_many(targets(1000), concurrency=10) as stream:
            async for _result in stream:
                gate.release.clear()  # hold everything else in flight
                break
        assert len(asyncio.all_tasks()) == baseline
        assert gate.in_flight == 0


async def test_plain_break_without_context_manager_also_cleans_up() -> None:
    gate = Gate()
    svc, _ = service(gate)
    baseline = len(asyncio.all_tasks())
    async with svc:
        async for _result in svc.get_checkpoints_many(targets(1000), concurrency=10):
            gate.release.clear()
            break
        # The dropped stream cancelled its workers; they finish within a few loop turns.
        for _ in range(10):
            if len(asyncio.all_tasks()) == baseline:
                break
            await asyncio.sleep(0)
        assert len(asyncio.all_tasks()) == baseline


async def test_a_bug_propagates_and_stops_the_fan_out() -> None:
    def handler(request: HttpRequest) -> HttpResponse:
        if group_of(request) == "cg-3":
            raise RuntimeError("bug in a handler")
        return ok([])

    svc, _ = service(handler)
    async with svc:
        with pytest.raises(RuntimeError, match="bug in a handler"):
            async for _ in svc.get_checkpoints_many(targets(50), concurrency=4):
                pass


async def test_wrong_target_type_is_a_bug_not_a_result() -> None:
    svc, _ = service(lambda _r: ok([]))
    async with svc:
        with pytest.raises(TypeError, match="CheckpointTarget"):
            async for _ in svc.get_checkpoints_many([("p", "l", "g")], concurrency=2):  # type: ignore[list-item]
                pass


async def test_consumer_cancellation_propagates() -> None:
    gate = Gate()
    gate.release.clear()
    gate.saturate_at = 4
    svc, _ = service(gate)
    baseline = len(asyncio.all_tasks())

    async def consume() -> None:
        async for _ in svc.get_checkpoints_many(targets(100), concurrency=4):
            pass

    async with svc:
        task = asyncio.create_task(consume())
        await gate.saturated.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(10):
            if len(asyncio.all_tasks()) == baseline:
                break
            await asyncio.sleep(0)
        assert len(asyncio.all_tasks()) == baseline


async def test_gather_checkpoints_keeps_input_order() -> None:
    svc, _ = service(lambda r: sls_error(404, "ConsumerGroupNotExist") if group_of(r) == "cg-2" else ok([]))
    wanted = targets(6)
    async with svc:
        results = await svc.gather_checkpoints(wanted, concurrency=3)
    assert [r.target for r in results] == wanted
    assert [r.ok for r in results] == [True, True, False, True, True, True]


async def test_scan_discovers_and_reports_discovery_failures() -> None:
    def handler(request: HttpRequest) -> HttpResponse:
        project = request.headers["Host"].split(".", 1)[0]
        path, _query = split(request)
        if project == "gone":
            return sls_error(404, "ProjectNotExist")
        if path == "/logstores":
            names = ["app-log", "web-log", "audit", "broken"]
            return ok({"count": len(names), "total": len(names), "logstores": names})
        if path == "/logstores/broken/consumergroups":
            return sls_error(403, "ReadQuotaExceed")
        if path.endswith("/consumergroups"):
            return ok(
                [
                    {"name": "cg-1", "timeout": 60, "order": False},
                    {"name": "cg-2", "timeout": 60, "order": True},
                ]
            )
        return ok(checkpoints_body(3))

    svc, _ = service(handler, retry=NO_RETRY)
    async with svc:
        results = [r async for r in svc.scan(["proj-a", "gone"], logstore_filter="*-log")]
        everything = [r async for r in svc.scan("proj-a")]
    ok_targets = sorted(str(r.target) for r in results if r.ok)
    assert ok_targets == [
        "proj-a/app-log/cg-1",
        "proj-a/app-log/cg-2",
        "proj-a/web-log/cg-1",
        "proj-a/web-log/cg-2",
    ]
    failed = [r for r in results if not r.ok]
    assert len(failed) == 1
    assert failed[0].target.project == "gone"
    assert isinstance(failed[0].error, NotFoundError)
    assert sum(r.ok for r in everything) == 6
    broken = [r for r in everything if not r.ok]
    assert [str(r.target) for r in broken] == ["proj-a/broken/"]
    assert isinstance(broken[0].error, ThrottlingError)


async def test_concurrency_must_be_positive() -> None:
    svc, _ = service(lambda _r: ok([]))
    async with svc:
        with pytest.raises(ValueError, match="concurrency"):
            svc.get_checkpoints_many(targets(1), concurrency=0)


async def test_validation_error_is_a_per_target_result() -> None:
    svc, transport = service(lambda _r: ok([]))
    transport._record = True
    bad = CheckpointTarget("Bad_Project", "app-log", "cg")
    async with svc:
        results = [r async for r in svc.get_checkpoints_many([bad, *targets(2)], concurrency=2)]
    assert isinstance(next(r for r in results if r.target == bad).error, ValidationError)
    assert len(transport.requests) == 2
    assert len(list(itertools.chain(results))) == 3


async def test_per_project_cap_does_not_block_other_projects() -> None:
    """Targets sorted by project (as scan produces them) still fill every allowed slot."""
    gate = Gate()
    gate.release.clear()
    gate.saturate_at = 8
    svc, _ = service(gate)
    # 5 per project: within the look-ahead (4 x concurrency) that skips a project at its cap.
    by_project = [t for p in ("proj-a", "proj-b", "proj-c", "proj-d") for t in targets(5, project=p)]
    async with svc:
        stream = svc.get_checkpoints_many(by_project, concurrency=8, per_project_concurrency=2)
        async with stream:
            first = asyncio.ensure_future(anext(stream))
            await gate.saturated.wait()  # 8 in flight: 2 for each of the 4 projects
            gate.release.set()
            results = [await first] + [r async for r in stream]
    assert len(results) == 20
    assert gate.peak == 8
    assert max(gate.peak_per_project.values()) == 2


@pytest.mark.parametrize("bad", [None, ("proj-a", "app-log", "cg")])
async def test_a_non_target_is_a_type_error_not_the_end(bad: object) -> None:
    svc, _ = service(lambda _r: ok([]))
    async with svc:
        with pytest.raises(TypeError, match="CheckpointTarget"):
            async for _ in svc.get_checkpoints_many([*targets(1), bad, *targets(3)], concurrency=1):  # type: ignore[list-item]
                pass
