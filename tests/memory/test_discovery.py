"""Discovery over the in-memory transport: concurrent projects, isolation, bounded paging."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from helpers import FakeTime, checkpoints_body, ok, sls_error, split

from aiosls import (
    NO_RETRY,
    CheckpointService,
    Credentials,
    HttpRequest,
    HttpResponse,
    InMemoryTransport,
    ReadTimeout,
    ResponseParseError,
    Timeouts,
)

CREDS = Credentials("AKID", "secret")
GROUPS = [{"name": "cg-1", "timeout": 60, "order": False}]


def project_of(request: HttpRequest) -> str:
    return request.headers["Host"].split(".", 1)[0]


def service(handler, **kwargs) -> CheckpointService:
    transport = InMemoryTransport(handler, record=False)
    return CheckpointService("cn-hangzhou.log.aliyuncs.com", CREDS, transport=transport, **kwargs)


async def test_projects_are_discovered_concurrently_and_a_dead_one_delays_only_itself() -> None:
    """40 projects, 5 of which never answer: every other project's targets are read while the
    dead ones wait out the total timeout, each failing as its own result."""
    dead = {f"proj-{i}" for i in range(0, 40, 8)}
    listing_started: Counter[str] = Counter()
    all_listing = asyncio.Event()
    hang = asyncio.Event()  # never set: a dead project's answers never come

    async def handler(request: HttpRequest) -> HttpResponse:
        project = project_of(request)
        path, _ = split(request)
        if path == "/logstores":
            listing_started[project] += 1
            if len(listing_started) == 40:
                all_listing.set()
            if project in dead:
                await hang.wait()
            # Discovery of one project waits until every project's listing has started: a
            # serial discovery would never get there (the test would fail, not hang: see below).
            await asyncio.wait_for(all_listing.wait(), 5)
            return ok({"count": 2, "total": 2, "logstores": ["app-log", "web-log"]})
        if path.endswith("/consumergroups"):
            return ok(GROUPS)
        return ok(checkpoints_body(2))

    svc = service(handler, retry=NO_RETRY, timeouts=Timeouts(total=1.0))
    projects = [f"proj-{i}" for i in range(40)]
    async with svc:
        results = [r async for r in svc.scan(projects, concurrency=64)]
    assert len(listing_started) == 40
    good = [r for r in results if r.ok]
    assert len(good) == 35 * 2
    failed = {r.target.project: r.error for r in results if not r.ok}
    assert set(failed) == dead
    assert all(isinstance(e, ReadTimeout) for e in failed.values())
    assert all(r.target.logstore == "" for r in results if not r.ok)


async def test_a_page_that_repeats_stops_the_listing_with_a_clear_error() -> None:
    """A server that keeps answering the same non-empty page with a large total."""
    sent = 0

    def handler(request: HttpRequest) -> HttpResponse:
        nonlocal sent
        sent += 1
        return ok({"count": 2, "total": 1_000_000, "logstores": ["app-log", "web-log"]})

    svc = service(handler)
    async with svc:
        with pytest.raises(ResponseParseError, match="paging does not advance") as info:
            await svc.list_logstores("proj-a")
        results = [r async for r in svc.scan(["proj-a"])]
    assert info.value.error_code == "PagingDoesNotAdvance"
    assert sent <= 4  # two for the call, two for the scan
    assert len(results) == 1
    assert isinstance(results[0].error, ResponseParseError)


async def test_endless_distinct_pages_stop_at_the_page_cap() -> None:
    page = 0

    def handler(request: HttpRequest) -> HttpResponse:
        nonlocal page
        page += 1
        names = [f"store-{page:06d}-{i:03d}" for i in range(500)]
        return ok({"count": 500, "total": 10**9, "logstores": names})

    svc = service(handler)
    async with svc:
        with pytest.raises(ResponseParseError, match="more than 200 pages"):
            await svc.list_logstores("proj-a")
    assert page == 200


async def test_paging_follows_offsets_until_total() -> None:
    names = [f"store-{i:04d}" for i in range(1203)]

    def handler(request: HttpRequest) -> HttpResponse:
        _, query = split(request)
        offset, size = int(query["offset"]), int(query["size"])
        chunk = names[offset : offset + size]
        return ok({"count": len(chunk), "total": len(names), "logstores": chunk})

    svc = service(handler)
    async with svc:
        assert await svc.list_logstores("proj-a") == names


async def test_discovery_respects_the_throttled_projects_backpressure() -> None:
    """Discovery calls go through the same project gates as the reads."""
    time = FakeTime()
    sent: Counter[str] = Counter()

    def handler(request: HttpRequest) -> HttpResponse:
        project = project_of(request)
        sent[project] += 1
        if project == "hot":
            return sls_error(403, "ReadQuotaExceed")
        path, _ = split(request)
        if path == "/logstores":
            return ok({"count": 1, "total": 1, "logstores": ["app-log"]})
        if path.endswith("/consumergroups"):
            return ok(GROUPS)
        return ok([])

    svc = service(handler, sleep=time.sleep, monotonic=time.monotonic, clock=time.clock)
    async with svc:
        results = [r async for r in svc.scan(["hot", "cool"], concurrency=4)]
    assert [str(r.target) for r in results if r.ok] == ["cool/app-log/cg-1"]
    (hot,) = [r for r in results if not r.ok]
    assert hot.target.project == "hot"
    assert sent["cool"] == 3
