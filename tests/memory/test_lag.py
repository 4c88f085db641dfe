"""Lag sweeps over the in-memory transport: every edge case of a shard's lag, with exact fields,
and the call economy of repeated sweeps, counted request by request.

``FakeSls`` plays the four calls a sweep makes (GetCheckPoint, GetCursor begin/end,
GetCursorTime) over integer cursors whose receive time is ``BASE + cursor`` seconds unless a
test says otherwise, so a lag is a difference of cursors and every value is exact.
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import attrs
import pytest
from helpers import T0, FakeTime, ok, sls_error, split

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
)
from aiosls.transport.memory import Handler

CREDS = Credentials("AKID", "s3cret-value")
P = "lag-project"
BASE = int(T0.timestamp()) - 10_000  # cursor c was received at BASE + c: lags are cursor differences


def cursor(value: int) -> str:
    return base64.b64encode(str(value).encode()).decode()


def value_of(text: str) -> int:
    return int(base64.b64decode(text))


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@attrs.define
class FakeShard:
    """Retained packages are the cursors ``begin .. end - 1``; ``end`` is the next one to write."""

    begin: int
    end: int
    #: Receive time of a cursor; ``BASE + cursor`` by default.
    times: dict[int, int] = attrs.Factory(dict)

    def time_of(self, value: int) -> int:
        return self.times.get(value, BASE + value)


@attrs.define
class FakeSls:
    """A handler that answers like SLS for the calls a lag sweep makes, and counts them."""

    #: (project, logstore) -> shard id -> shard
    logstores: dict[tuple[str, str], dict[int, FakeShard]] = attrs.Factory(dict)
    #: (project, logstore, group) -> shard id -> (checkpoint value or None, update time us)
    groups: dict[tuple[str, str, str], dict[int, tuple[int | None, int]]] = attrs.Factory(dict)
    #: The server's clock (what it puts in Date and answers for an empty shard).
    server_now: datetime = T0
    #: (operation, project, logstore, shard, query) for every request.
    calls: list[tuple[str, str, str, int | None, str]] = attrs.Factory(list)
    #: Answers to force: (operation, cursor or ``from``) -> response, used once each.
    override: dict[tuple[str, str], HttpResponse] = attrs.Factory(dict)
    #: Reject requests whose date is this far off the server's clock (as SLS does after 15 min).
    skew_check: bool = False

    def add(self, logstore: str, shards: dict[int, FakeShard], project: str = P) -> None:
        self.logstores[(project, logstore)] = shards

    def group(
        self, logstore: str, group: str, checkpoints: dict[int, int | None], *, update_s: int | None = None
    ) -> None:
        update_us = (update_s if update_s is not None else int(self.server_now.timestamp()) - 5) * 1_000_000
        self.groups[(P, logstore, group)] = {s: (v, update_us) for s, v in checkpoints.items()}

    def count(self, operation: str, **where: Any) -> int:
        keys = ("operation", "project", "logstore", "shard", "query")
        return sum(
            1
            for call in self.calls
            if call[0] == operation and all(call[keys.index(k)] == v for k, v in where.items())
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path, query = split(request)
        project = request.headers["Host"].split(".", 1)[0]
        parts = path.strip("/").split("/")
        logstore = parts[1]
        operation = request.operation
        shard = int(parts[3]) if parts[2] == "shards" else None
        detail = query.get("from") or query.get("cursor") or ""
        self.calls.append((operation, project, logstore, shard, detail))
        date = {"Date": format_datetime(self.server_now, usegmt=True)}
        if self.skew_check and abs(self._request_time(request) - self.server_now) > timedelta(minutes=15):
            return sls_error(400, "RequestTimeExpired", "request time expired", **date)
        forced = self.override.pop((operation, detail), None)
        if forced is not None:
            return forced
        if (project, logstore) not in self.logstores:
            return sls_error(404, "ProjectNotExist" if project != P else "LogStoreNotExist")
        shards = self.logstores[(project, logstore)]
        if operation == "GetCheckPoint":
            group = self.groups.get((project, logstore, parts[3]))
            if group is None:
                return sls_error(404, "ConsumerGroupNotExist")
            return ok(
                [
                    {
                        "shard": s,
                        "checkpoint": "" if v is None else cursor(v),
                        "updateTime": us,
                        "consumer": "" if v is None else f"c-{s}",
                    }
                    for s, (v, us) in sorted(group.items())
                ],
                **date,
            )
        assert shard is not None
        sh = shards[shard]
        if operation == "GetCursor":
            return ok({"cursor": cursor(sh.begin if query["from"] == "begin" else sh.end)}, **date)
        assert operation == "GetCursorTime"
        value = value_of(query["cursor"])
        if sh.begin == sh.end and value in (sh.end - 1, sh.end):
            return ok({"cursor_time": int(self.server_now.timestamp())}, **date)  # SLS: an empty shard
        if not sh.begin <= value <= sh.end:
            return sls_error(400, "InvalidCursor", f"cursor {query['cursor']} is out of range")
        return ok({"cursor_time": sh.time_of(value)}, **date)

    @staticmethod
    def _request_time(request: HttpRequest) -> datetime:
        stamp = request.headers.get("x-log-date")
        if stamp is not None:
            return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        from email.utils import parsedate_to_datetime

        return parsedate_to_datetime(request.headers["Date"])


def make(
    sls: FakeSls, time: FakeTime | None = None, handler: Handler | None = None, **kwargs: Any
) -> CheckpointService:
    time = time or FakeTime()
    return CheckpointService(
        "cn-hangzhou.log.aliyuncs.com",
        CREDS,
        region="cn-hangzhou",
        transport=InMemoryTransport(handler or sls, record=False),
        clock=time.clock,
        sleep=time.sleep,
        monotonic=time.monotonic,
        rng=random.Random(3),
        **kwargs,
    )


NOW_S = int(T0.timestamp())


# --- edge cases: one shard each, exact fields ---------------------------------------------------


async def test_a_shard_behind_measures_newest_minus_last_consumed() -> None:
    sls = FakeSls()
    sls.add("app", {0: FakeShard(100, 500)})
    sls.group("app", "cg", {0: 400}, update_s=NOW_S - 30)
    async with make(sls) as svc:
        lag = await svc.get_lag(P, "app", "cg")
    (s,) = lag.shards
    assert s.shard == 0
    assert s.checkpoint == cursor(400)
    assert s.consumer == "c-0"
    assert s.update_time == at(NOW_S - 30)
    # The checkpoint is the next package to read: the last consumed one is 399, the newest 499.
    assert s.consumed_time == at(BASE + 399)
    assert s.latest_time == at(BASE + 499)
    assert s.lag_seconds == 100.0
    assert s.commit_age_seconds == 30.0
    assert (s.expired, s.caught_up) == (False, False)
    assert lag.lag_seconds == 100.0
    assert lag.worst_shard == 0
    assert lag.as_of == T0
    assert lag.target == CheckpointTarget(P, "app", "cg")
    # GetCheckPoint, GetCursor end, GetCursorTime of end - 1 and of checkpoint - 1: nothing else.
    assert [c[0] for c in sls.calls] == ["GetCheckPoint", "GetCursor", "GetCursorTime", "GetCursorTime"]
    assert sls.count("GetCursorTime", query=cursor(399)) == 1
    assert sls.count("GetCursorTime", query=cursor(499)) == 1


async def test_caught_up_is_zero_lag_however_old_the_last_write_and_asks_no_time_for_it() -> None:
    sls = FakeSls()
    # The newest package is hours old: still caught up, not "now minus last write".
    sls.add("app", {0: FakeShard(100, 500, times={499: NOW_S - 7200})})
    sls.group("app", "cg", {0: 500}, update_s=NOW_S - 7000)
    async with make(sls) as svc:
        (s,) = (await svc.get_lag(P, "app", "cg")).shards
    assert s.lag_seconds == 0.0
    assert s.caught_up is True
    assert s.expired is False
    assert s.latest_time == at(NOW_S - 7200)
    assert s.consumed_time == at(NOW_S - 7200)
    assert s.commit_age_seconds == 7000.0
    assert sls.count("GetCursorTime") == 1  # the newest package's only
    assert sls.count("GetCursorTime", query=cursor(499)) == 1


async def test_an_empty_shard_with_a_committed_end_cursor_is_caught_up() -> None:
    sls = FakeSls()
    sls.add("app", {0: FakeShard(0, 0), 1: FakeShard(700, 700)})  # never written; all expired
    sls.group("app", "cg", {0: 0, 1: 700})
    async with make(sls) as svc:
        lag = await svc.get_lag(P, "app", "cg")
    for s in lag.shards:
        assert s.lag_seconds == 0.0
        assert s.caught_up is True
        assert s.expired is False
    assert lag.lag_seconds == 0.0
    # Cursor 0 has nothing before it: no GetCursorTime at all for shard 0.
    assert sls.count("GetCursorTime", shard=0) == 0


async def test_a_never_committed_shard_has_no_lag_and_costs_no_time_fetch() -> None:
    sls = FakeSls()
    sls.add("app", {0: FakeShard(100, 500), 1: FakeShard(100, 300)})
    sls.group("app", "cg", {0: None, 1: 250})
    async with make(sls) as svc:
        lag = await svc.get_lag(P, "app", "cg")
    never, behind = lag.shards
    assert never.checkpoint == ""
    assert never.lag_seconds is None
    assert never.update_time is None
    assert never.commit_age_seconds is None
    assert never.consumed_time is None
    assert never.latest_time == at(BASE + 499)
    assert (never.expired, never.caught_up) == (False, False)
    assert behind.lag_seconds == 50.0
    assert lag.lag_seconds == 50.0
    assert lag.worst_shard == 1
    assert sls.count("GetCursorTime", shard=0) == 1  # the end time only


async def test_a_group_that_never_committed_anything_has_no_group_lag() -> None:
    sls = FakeSls()
    sls.add("app", {0: FakeShard(100, 500), 1: FakeShard(0, 0)})
    sls.group("app", "cg", {0: None, 1: None})
    async with make(sls) as svc:
        lag = await svc.get_lag(P, "app", "cg")
    assert [s.lag_seconds for s in lag.shards] == [None, None]
    assert lag.lag_seconds is None
    assert lag.worst_shard is None


async def test_an_expired_checkpoint_is_flagged_and_measured_from_the_oldest_data() -> None:
    sls = FakeSls()
    sls.add("app", {0: FakeShard(300, 500)})
    sls.group("app", "cg", {0: 120})  # data 120..299 was deleted by the TTL
    async with make(sls) as svc:
        (s,) = (await svc.get_lag(P, "app", "cg")).shards
    assert s.expired is True
    assert s.caught_up is False
    assert s.consumed_time == at(BASE + 300)  # the oldest retained package, never "snapped" silently
    assert s.latest_time == at(BASE + 499)
    assert s.lag_seconds == 199.0
    assert s.checkpoint == cursor(120)  # reported as committed
    # It asked for the cursor before the checkpoint (InvalidCursor), then the begin cursor's time.
    assert sls.count("GetCursorTime", query=cursor(119)) == 1
    assert sls.count("GetCursor", query="begin") == 1
    assert sls.count("GetCursorTime", query=cursor(300)) == 1


async def test_a_checkpoint_exactly_one_package_past_the_ttl_is_expired() -> None:
    sls = FakeSls()
    sls.add("app", {0: FakeShard(300, 500)})
    sls.group("app", "cg", {0: 299})
    async with make(sls) as svc:
        (s,) = (await svc.get_lag(P, "app", "cg")).shards
    assert s.expired is True
    assert s.lag_seconds == 199.0


async def test_a_group_reprocessing_from_the_beginning_is_not_expired() -> None:
    sls = FakeSls()
    sls.add("app", {0: FakeShard(300, 500)})
    sls.group("app", "cg", {0: 300})  # reset to begin: the cursor before it is gone, nothing was lost
    async with make(sls) as svc:
        (s,) = (await svc.get_lag(P, "app", "cg")).shards
    assert s.expired is False
    assert s.caught_up is False
    assert s.consumed_time == at(BASE + 300)
    assert s.lag_seconds == 199.0


async def test_a_read_only_shard_after_a_split_keeps_its_own_lag() -> None:
    sls = FakeSls()
    # Shard 0 was split into 1 and 2: it takes no writes, its newest package is an hour old.
    sls.add(
        "app",
        {
            0: FakeShard(100, 400, times={399: NOW_S - 3600, 349: NOW_S - 3650}),
            1: FakeShard(5000, 5100),
            2: FakeShard(6000, 6010),
        },
    )
    sls.group("app", "done", {0: 400, 1: 5100, 2: 6010})
    sls.group("app", "behind", {0: 350, 1: 5100, 2: 6010})
    async with make(sls) as svc:
        done = await svc.get_lag(P, "app", "done")
        behind = await svc.get_lag(P, "app", "behind")
    assert [s.caught_up for s in done.shards] == [True, True, True]
    assert done.lag_seconds == 0.0  # finished the parent: not an hour behind
    ro = behind.shards[0]
    assert ro.lag_seconds == 50.0  # from the parent's own newest data, not "now"
    assert ro.latest_time == at(NOW_S - 3600)
    assert behind.worst_shard == 0


async def test_clocks_that_disagree_clamp_to_zero_never_negative() -> None:
    sls = FakeSls()
    # The package before the checkpoint claims a later time than the newest one (receive times
    # from two front ends), and the commit is stamped in the future of the server clock.
    sls.add("app", {0: FakeShard(100, 500, times={399: BASE + 600, 499: BASE + 499})})
    sls.group("app", "cg", {0: 400}, update_s=NOW_S + 90)
    async with make(sls) as svc:
        (s,) = (await svc.get_lag(P, "app", "cg")).shards
    assert s.lag_seconds == 0.0
    assert s.commit_age_seconds == 0.0
    assert s.caught_up is False  # clamped, not made up


async def test_commit_age_uses_the_server_clock_corrected_by_the_learned_skew() -> None:
    sls = FakeSls(server_now=T0 + timedelta(minutes=20), skew_check=True)
    now_s = int(sls.server_now.timestamp())
    sls.add("app", {0: FakeShard(100, 500)})
    sls.group("app", "cg", {0: 400}, update_s=now_s - 45)
    async with make(sls) as svc:  # the local clock is 20 minutes behind the server's
        lag = await svc.get_lag(P, "app", "cg")
    (s,) = lag.shards
    assert lag.as_of == sls.server_now
    assert s.commit_age_seconds == 45.0  # uncorrected, it would be in the future: clamped to 0
    assert s.lag_seconds == 100.0
    assert sls.calls[0][0] == sls.calls[1][0] == "GetCheckPoint"  # rejected once, then re-signed


async def test_a_failed_time_fetch_fails_that_target_only() -> None:
    sls = FakeSls()
    sls.add("app", {0: FakeShard(100, 500), 1: FakeShard(100, 500)})
    sls.group("app", "ok", {0: 400, 1: 450})
    sls.group("app", "bad", {0: 300, 1: 450})
    sls.override[("GetCursorTime", cursor(299))] = sls_error(403, "ReadQuotaExceed", "quota")
    targets = [CheckpointTarget(P, "app", g) for g in ("ok", "bad")]
    async with make(sls, retry=NO_RETRY) as svc:
        results = {r.target.consumer_group: r async for r in svc.get_lag_many(targets)}
    assert results["ok"].ok
    assert results["ok"].unwrap().lag_seconds == 100.0
    assert not results["bad"].ok
    assert isinstance(results["bad"].error, ThrottlingError)
    assert results["bad"].lag is None


async def test_a_missing_group_is_its_own_not_found_result() -> None:
    sls = FakeSls()
    sls.add("app", {0: FakeShard(100, 500)})
    sls.group("app", "cg", {0: 400})
    targets = [CheckpointTarget(P, "app", "cg"), CheckpointTarget(P, "app", "gone")]
    async with make(sls) as svc:
        results = {r.target.consumer_group: r async for r in svc.get_lag_many(targets)}
        with pytest.raises(NotFoundError):
            await svc.get_lag(P, "app", "gone")
    assert results["cg"].unwrap().lag_seconds == 100.0
    assert isinstance(results["gone"].error, NotFoundError)


# --- call economy --------------------------------------------------------------------------------


def fleet(groups: int, logstores: int, shards: int, *, caught_up_every: int = 0) -> FakeSls:
    """G groups spread over L logstores of S shards, every checkpoint distinct and behind."""
    sls = FakeSls()
    for li in range(logstores):
        sls.add(f"ls-{li}", {s: FakeShard(1000, 100_000 + s) for s in range(shards)})
    for g in range(groups):
        cps: dict[int, int | None] = {s: 50_000 + g * 10 + s for s in range(shards)}
        if caught_up_every and g % caught_up_every == 0:
            cps = {s: 100_000 + s for s in range(shards)}
        sls.group(f"ls-{g % logstores}", f"g-{g}", cps)
    return sls


def targets_of(sls: FakeSls) -> list[CheckpointTarget]:
    return [CheckpointTarget(*key) for key in sls.groups]


@pytest.mark.parametrize(("g", "l_", "s"), [(1, 1, 1), (12, 1, 4), (40, 3, 4), (30, 5, 2)])
async def test_request_counts_of_a_first_and_a_repeated_sweep_stay_within_the_goal(
    g: int, l_: int, s: int
) -> None:
    sls = fleet(g, l_, s)
    async with make(sls) as svc:
        first = [r async for r in svc.get_lag_many(targets_of(sls), concurrency=64)]
        after_first = svc.requests_sent
        second = [r async for r in svc.get_lag_many(targets_of(sls), concurrency=64)]
        after_second = svc.requests_sent - after_first
    assert all(r.ok for r in first + second)
    assert after_first <= g + 2 * l_ * s + g * s
    assert after_second <= g + 2 * l_ * s
    # Exactly: nothing moved, so the second sweep asks GetCheckPoint and GetCursor end only.
    assert after_first == g + 2 * l_ * s + g * s
    assert after_second == g + l_ * s
    assert {r.target: r.unwrap().lag_seconds for r in first} == {
        r.target: r.unwrap().lag_seconds for r in second
    }


async def test_a_repeated_sweep_asks_again_only_for_what_moved() -> None:
    sls = fleet(6, 1, 2)
    async with make(sls) as svc:
        [r async for r in svc.get_lag_many(targets_of(sls))]
        sls.calls.clear()
        # One group committed further; shard 1 received one more package.
        sls.groups[(P, "ls-0", "g-3")][0] = (60_000, sls.groups[(P, "ls-0", "g-3")][0][1])
        sls.logstores[(P, "ls-0")][1].end += 1
        results = {r.target.consumer_group: r.unwrap() async for r in svc.get_lag_many(targets_of(sls))}
    assert Counter(c[0] for c in sls.calls) == {"GetCheckPoint": 6, "GetCursor": 2, "GetCursorTime": 2}
    assert sls.count("GetCursorTime", query=cursor(59_999)) == 1
    assert sls.count("GetCursorTime", query=cursor(100_001)) == 1
    assert results["g-3"].shards[0].lag_seconds == 100_000 - 1 - 59_999


async def test_caught_up_groups_cost_only_their_checkpoint_read() -> None:
    sls = fleet(20, 2, 4, caught_up_every=1)
    async with make(sls) as svc:
        results = [r.unwrap() async for r in svc.get_lag_many(targets_of(sls))]
    assert all(lag.lag_seconds == 0.0 for lag in results)
    assert svc.requests_sent == 20 + 2 * 2 * 4


async def test_concurrent_groups_on_one_logstore_share_one_end_fetch() -> None:
    sls = FakeSls()
    sls.add("app", {s: FakeShard(0, 10_000) for s in range(4)})
    for g in range(200):
        sls.group("app", f"g-{g}", dict.fromkeys(range(4), 5000 + g))
    gate = asyncio.Event()
    reads = 0

    async def together(request: HttpRequest) -> HttpResponse:
        # Hold the end fetches until 64 groups (the concurrency) have read their checkpoints,
        # so every one of them asks for the same ends at once.
        nonlocal reads
        if request.operation == "GetCheckPoint":
            reads += 1
            if reads == 64:
                gate.set()
        elif request.operation == "GetCursor":
            await gate.wait()
        return sls(request)

    async with make(sls, handler=together) as svc:
        results = [r async for r in svc.get_lag_many(targets_of(sls), concurrency=64)]
    assert len(results) == 200
    assert all(r.unwrap().lag_seconds == 10_000 - 5000 - int(r.target.consumer_group[2:]) for r in results)
    for s in range(4):
        assert sls.count("GetCursor", shard=s, query="end") == 1
        assert sls.count("GetCursorTime", shard=s, query=cursor(9_999)) == 1
    assert sls.count("GetCursor") == 4


async def test_a_failed_end_fetch_is_not_kept_for_the_rest_of_the_sweep() -> None:
    sls = fleet(3, 1, 1)
    sls.override[("GetCursor", "end")] = sls_error(403, "ReadQuotaExceed", "quota")
    async with make(sls, retry=NO_RETRY) as svc:
        results = [r async for r in svc.get_lag_many(targets_of(sls), concurrency=1)]
    errors = [r for r in results if not r.ok]
    assert len(errors) == 1
    assert isinstance(errors[0].error, ThrottlingError)
    assert sum(r.ok for r in results) == 2
    assert sls.count("GetCursor", query="end") == 2  # asked again by the next group


@pytest.mark.parametrize(("size", "asked_again"), [(11, 0), (4, 11)])
async def test_the_cursor_time_cache_is_bounded_by_the_service_setting(size: int, asked_again: int) -> None:
    sls = fleet(10, 1, 1)
    async with make(sls, cursor_time_cache=size) as svc:
        [r async for r in svc.get_lag_many(targets_of(sls), concurrency=1)]
        sls.calls.clear()
        [r async for r in svc.get_lag_many(targets_of(sls), concurrency=1)]
    # 11 cursor times (10 checkpoints and the end) fit in 11; in 4, a sweep in the same order
    # pushes each out before its turn comes again (the LRU order itself: tests/unit).
    assert sls.count("GetCursorTime") == asked_again


async def test_a_cursor_time_cache_of_zero_remembers_nothing() -> None:
    sls = fleet(3, 1, 1)
    async with make(sls, cursor_time_cache=0) as svc:
        [r async for r in svc.get_lag_many(targets_of(sls))]
        sls.calls.clear()
        [r async for r in svc.get_lag_many(targets_of(sls))]
    assert sls.count("GetCursorTime") == 4  # every checkpoint and the end, again


async def test_a_repeated_sweep_remembers_cursors_before_the_oldest_data() -> None:
    sls = FakeSls()
    sls.add("app", {0: FakeShard(300, 500), 1: FakeShard(300, 500)})
    sls.group("app", "expired", {0: 120, 1: 299})
    sls.group("app", "reprocess", {0: 300, 1: 300})
    targets = targets_of(sls)
    async with make(sls) as svc:
        first = {r.target.consumer_group: r.unwrap() async for r in svc.get_lag_many(targets)}
        sls.calls.clear()
        second = {r.target.consumer_group: r.unwrap() async for r in svc.get_lag_many(targets)}
    assert first == second
    assert [s.expired for s in second["expired"].shards] == [True, True]
    assert [s.expired for s in second["reprocess"].shards] == [False, False]
    assert {s.lag_seconds for g in second.values() for s in g.shards} == {199.0}
    # G + 2*L*S: GetCheckPoint per group, GetCursor end and begin per shard; no refused cursor again.
    assert Counter(c[0] for c in sls.calls) == {"GetCheckPoint": 2, "GetCursor": 4}


async def test_a_shard_that_fails_stops_its_group_s_other_shards() -> None:
    sls = FakeSls()
    sls.add("app", {0: FakeShard(100, 500), 1: FakeShard(100, 500)})
    sls.group("app", "cg", {0: 400, 1: 300})
    sls.override[("GetCursorTime", cursor(399))] = sls_error(403, "ReadQuotaExceed", "quota")
    never = asyncio.Event()
    hanging: list[asyncio.Task[object]] = []

    async def hangs_on_shard_1(request: HttpRequest) -> HttpResponse:
        if split(request)[1].get("cursor") == cursor(299):
            task = asyncio.current_task()
            assert task is not None
            hanging.append(task)
            await never.wait()
        return sls(request)

    async with make(sls, handler=hangs_on_shard_1, retry=NO_RETRY) as svc:
        (result,) = [r async for r in svc.get_lag_many(targets_of(sls))]
        (task,) = hanging
        # Cancelled when its sibling failed, before the group's result was handed out.
        assert task.cancelling() == 1 or task.cancelled()
        await asyncio.gather(task, return_exceptions=True)
    assert isinstance(result.error, ThrottlingError)


async def test_a_checkpoint_that_is_no_cursor_has_an_unknown_lag_not_a_made_up_one() -> None:
    sls = FakeSls()
    sls.add("app", {0: FakeShard(300, 500), 1: FakeShard(300, 500)})
    sls.group("app", "cg", {0: None, 1: 450})
    opaque = base64.b64encode(b"not-a-cursor").decode()
    update_us = (NOW_S - 5) * 1_000_000

    def with_opaque(request: HttpRequest) -> HttpResponse:
        response = sls(request)
        if request.operation != "GetCheckPoint":
            return response
        return ok(
            [
                {"shard": 0, "checkpoint": opaque, "updateTime": update_us, "consumer": "c-0"},
                {"shard": 1, "checkpoint": cursor(450), "updateTime": update_us, "consumer": "c-1"},
            ]
        )

    async with make(sls, handler=with_opaque) as svc:
        lag = await svc.get_lag(P, "app", "cg")
    opaque_shard, fine = lag.shards
    assert opaque_shard.checkpoint == opaque
    assert opaque_shard.lag_seconds is None
    assert opaque_shard.consumed_time is None
    assert (opaque_shard.expired, opaque_shard.caught_up) == (False, False)
    assert opaque_shard.commit_age_seconds == 5.0
    assert fine.lag_seconds == 50.0
    assert (lag.lag_seconds, lag.worst_shard) == (50.0, 1)
    assert sls.count("GetCursor", query="begin") == 0  # no "oldest data" to make a lag up from


async def test_a_shard_whose_data_all_expired_is_caught_up_and_says_what_was_lost() -> None:
    sls = FakeSls()
    sls.add("app", {0: FakeShard(700, 700)})  # begin == end: everything expired
    sls.group("app", "cg", {0: 500})
    async with make(sls) as svc:
        (s,) = (await svc.get_lag(P, "app", "cg")).shards
    assert s.lag_seconds == 0.0  # nothing is left to read
    assert s.caught_up is True
    assert s.expired is True  # but packages 500..699 were never read
    assert s.latest_time == s.consumed_time == T0  # SLS answers an empty shard's time with "now"
