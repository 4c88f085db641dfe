"""The exporter's sweeps over fake sweep functions: values, statuses, stale series, isolation, pacing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiosls import CheckpointTarget, NotFoundError, ThrottlingError
from aiosls.exporter.sweeper import Exporter, Source
from aiosls.models import GroupLag, LagResult, ShardLag
from tests.helpers import T0, FakeTime

ERR = 5
STOP = 3


def shard(i: int, lag: float | None, *, age: float = 2.0, consumer: str = "c-1") -> ShardLag:
    return ShardLag(
        shard=i,
        checkpoint="" if lag is None else f"MTUy{i}==",
        consumer=consumer,
        update_time=None if lag is None else T0 - timedelta(seconds=age),
        consumed_time=None if lag is None else T0 - timedelta(seconds=lag),
        latest_time=T0,
        lag_seconds=lag,
        commit_age_seconds=None if lag is None else age,
        caught_up=lag == 0,
    )


def group(project: str, logstore: str, name: str, *shards: ShardLag) -> LagResult:
    target = CheckpointTarget(project, logstore, name)
    return LagResult(target, GroupLag(target, tuple(shards), T0))


def failed(project: str, logstore: str, name: str, error: Exception) -> LagResult:
    return LagResult(CheckpointTarget(project, logstore, name), error=error)  # type: ignore[arg-type]


class Script:
    """A sweep function answering each call with the next list of results."""

    def __init__(self, *sweeps: Sequence[LagResult]) -> None:
        self.sweeps = list(sweeps)
        self.calls = 0

    async def __call__(self) -> Sequence[LagResult]:
        self.calls += 1
        await asyncio.sleep(0)
        return self.sweeps.pop(0) if len(self.sweeps) > 1 else self.sweeps[0]


def scrape(exporter: Exporter, fmt: str = "text") -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name -> {sorted label items: value} of every sample served."""
    assert exporter.rendered is not None
    text = exporter.rendered.bodies[fmt].decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def key(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


async def test_values_statuses_and_extra_labels() -> None:
    script = Script(
        [
            group("prod", "app-log", "cg-ok", shard(0, 1.5), shard(1, 0.0)),
            group("prod", "app-log", "cg-stop", shard(0, 500.0, age=1000.0), shard(1, 3.0, consumer="")),
        ]
    )
    exporter = Exporter(
        [Source(("prod",), script, labels={"env": "prod"})],
        allowed_lag=60,
        stop_after=300,
        clock=lambda: 1.7e9,
    )
    stats = await exporter.sweep_once()
    m = scrape(exporter)

    ok = {"env": "prod", "project": "prod", "logstore": "app-log", "consumer_group": "cg-ok"}
    stop = {**ok, "consumer_group": "cg-stop"}
    assert m["sls_consumer_group_max_lag_seconds"] == {key(**ok): 1.5, key(**stop): 500.0}
    assert m["sls_consumer_group_status"] == {key(**ok): 0, key(**stop): STOP}
    assert m["sls_consumer_group_unassigned_shards"] == {key(**ok): 0, key(**stop): 1}
    assert m["sls_consumer_group_lag_seconds"] == {
        key(**ok, shard="0"): 1.5,
        key(**ok, shard="1"): 0.0,
        key(**stop, shard="0"): 500.0,
        key(**stop, shard="1"): 3.0,
    }
    assert m["sls_consumer_group_shard_status"][key(**stop, shard="0")] == STOP
    assert m["sls_consumer_group_shard_status"][key(**stop, shard="1")] == 0
    assert m["sls_consumer_group_commit_age_seconds"][key(**stop, shard="0")] == 1000.0
    assert m["aiosls_exporter_up"] == {key(env="prod", project="prod"): 1}
    assert m["aiosls_exporter_last_sweep_timestamp_seconds"] == {(): 1.7e9}
    assert m["aiosls_exporter_sweep_duration_seconds_count"] == {(): 1}
    assert (stats.groups, stats.not_ok, stats.errors) == (2, 1, 0)


async def test_group_granularity_serves_no_shard_series() -> None:
    exporter = Exporter(
        [Source(("p",), Script([group("p", "ls", "cg", shard(0, 1.0), shard(1, 2.0))]))], granularity="group"
    )
    await exporter.sweep_once()
    m = scrape(exporter)
    assert m["sls_consumer_group_max_lag_seconds"] == {
        key(project="p", logstore="ls", consumer_group="cg"): 2.0
    }
    assert not {"sls_consumer_group_lag_seconds", "sls_consumer_group_shard_status"} & set(m)


async def test_never_committed_shard_has_status_but_no_lag_sample() -> None:
    exporter = Exporter([Source(("p",), Script([group("p", "ls", "cg", shard(0, None))]))])
    await exporter.sweep_once()
    m = scrape(exporter)
    labels = {"project": "p", "logstore": "ls", "consumer_group": "cg"}
    assert "sls_consumer_group_lag_seconds" not in m
    assert key(**labels, shard="0") in m["sls_consumer_group_shard_status"]
    assert key(**labels) not in m.get("sls_consumer_group_max_lag_seconds", {})


async def test_deleted_group_and_merged_shard_disappear() -> None:
    script = Script(
        [
            group("p", "ls", "cg-a", shard(0, 1.0), shard(1, 1.0)),
            group("p", "ls", "cg-deleted", shard(0, 1.0)),
        ],
        [group("p", "ls", "cg-a", shard(2, 1.0))],  # shards 0 and 1 merged into 2; cg-deleted gone
    )
    exporter = Exporter([Source(("p",), script)])
    await exporter.sweep_once()
    assert len(scrape(exporter)["sls_consumer_group_status"]) == 2
    await exporter.sweep_once()
    m = scrape(exporter)
    a = {"project": "p", "logstore": "ls", "consumer_group": "cg-a"}
    assert set(m["sls_consumer_group_status"]) == {key(**a)}
    assert set(m["sls_consumer_group_lag_seconds"]) == {key(**a, shard="2")}
    assert set(m["sls_consumer_group_shard_status"]) == {key(**a, shard="2")}
    assert "cg-deleted" not in exporter.rendered.bodies["openmetrics"].decode()  # type: ignore[union-attr]


async def test_failed_project_is_down_and_err_while_others_stay_fresh() -> None:
    throttled = ThrottlingError("slow down", error_code="ReadQuotaExceed", status=403)
    missing = NotFoundError("no such project", error_code="ProjectNotExist", status=404)
    busy = Script(
        [group("busy", "ls", "cg", shard(0, 1.0))],
        [failed("busy", "", "", throttled)],  # the listing itself is throttled now
    )
    good = Script(
        [group("good", "ls", "cg", shard(0, 1.0)), failed("gone", "", "", missing)],
        [group("good", "ls", "cg", shard(0, 7.0)), failed("gone", "", "", missing)],
    )
    exporter = Exporter([Source(("busy",), busy), Source(("good", "gone"), good, labels={"region": "x"})])
    await exporter.sweep_once()
    await exporter.sweep_once()
    m = scrape(exporter)
    assert m["aiosls_exporter_up"] == {
        key(project="busy"): 0,
        key(project="good", region="x"): 1,
        key(project="gone", region="x"): 0,
    }
    status = m["sls_consumer_group_status"]
    # The busy project's known group is ERR (not silently gone); the scope failure has a series.
    assert status[key(project="busy", logstore="ls", consumer_group="cg")] == ERR
    assert status[key(project="busy", logstore="", consumer_group="")] == ERR
    assert status[key(project="gone", logstore="", consumer_group="", region="x")] == ERR
    assert status[key(project="good", logstore="ls", consumer_group="cg", region="x")] == 0
    assert (
        m["sls_consumer_group_max_lag_seconds"][
            key(project="good", logstore="ls", consumer_group="cg", region="x")
        ]
        == 7.0
    )
    assert (
        key(project="busy", logstore="ls", consumer_group="cg") not in m["sls_consumer_group_max_lag_seconds"]
    )
    assert m["aiosls_exporter_errors_total"] == {
        key(project="busy", error_code="ReadQuotaExceed"): 1,
        key(project="gone", error_code="ProjectNotExist", region="x"): 2,
    }


async def test_one_failing_group_keeps_its_project_up() -> None:
    err = ThrottlingError("slow down", error_code="ReadQuotaExceed", status=403)
    script = Script([group("p", "ls", "cg-a", shard(0, 1.0)), failed("p", "ls", "cg-b", err)])
    exporter = Exporter([Source(("p",), script)])
    await exporter.sweep_once()
    m = scrape(exporter)
    assert m["aiosls_exporter_up"] == {key(project="p"): 1}
    assert m["sls_consumer_group_status"][key(project="p", logstore="ls", consumer_group="cg-b")] == ERR


async def test_a_source_that_raises_marks_only_its_projects() -> None:
    async def broken() -> Sequence[LagResult]:
        raise RuntimeError("bug in a sweep")

    exporter = Exporter(
        [Source(("a",), broken), Source(("b",), Script([group("b", "ls", "cg", shard(0, 1.0))]))]
    )
    await exporter.sweep_once()
    m = scrape(exporter)
    assert m["aiosls_exporter_up"] == {key(project="a"): 0, key(project="b"): 1}
    assert m["aiosls_exporter_errors_total"] == {key(project="a", error_code="RuntimeError"): 1}


async def test_requests_total_sums_every_source() -> None:
    counts = {("GetCheckPoint", "ok"): 3, ("GetCheckPoint", "throttled"): 1}
    sources = [
        Source(("a",), Script([]), request_counts=lambda: counts),
        Source(("b",), Script([]), request_counts=lambda: {("GetCheckPoint", "ok"): 2}),
    ]
    exporter = Exporter(sources)
    await exporter.sweep_once()
    assert scrape(exporter)["aiosls_exporter_requests_total"] == {
        key(operation="GetCheckPoint", outcome="ok"): 5,
        key(operation="GetCheckPoint", outcome="throttled"): 1,
    }


class _Stop(BaseException):
    pass


async def test_a_sweep_slower_than_the_interval_skips_a_beat() -> None:
    time = FakeTime()
    starts: list[float] = []
    durations = [25.0, 3.0, 3.0, 3.0]

    async def sweep() -> Sequence[LagResult]:
        starts.append(time.mono)
        time.mono += durations.pop(0)
        await asyncio.sleep(0)
        return []

    async def sleep(seconds: float) -> None:
        await time.sleep(seconds)
        if len(starts) == 4:
            raise _Stop

    exporter = Exporter([Source(("p",), sweep)], interval=10.0, monotonic=time.monotonic, sleep=sleep)
    with pytest.raises(_Stop):
        await exporter.run()
    t0 = starts[0]
    # 0: took 25 s, so the beats at 10 and 20 are skipped; then on the 10 s grid again.
    assert [s - t0 for s in starts] == [0.0, 30.0, 40.0, 50.0]
    assert exporter.skipped == 2
    assert exporter.sweeps == 4


async def test_prime_serves_the_exporters_own_families_before_any_sweep() -> None:
    exporter = Exporter([Source(("p",), Script([]))])
    assert exporter.rendered is None
    await exporter.prime()
    m = scrape(exporter)
    assert m["aiosls_exporter_sweep_duration_seconds_count"] == {(): 0}
    assert not [name for name in m if name.startswith("sls_")]
    assert exporter.sweeps == 0


async def test_freeze_gc_keeps_the_collector_off_during_sweeps_and_collects_when_frozen_grows() -> None:
    import gc

    enabled_during: list[bool] = []

    async def sweep() -> Sequence[LagResult]:
        enabled_during.append(gc.isenabled())
        return [group("p", "ls", f"cg-{i}", shard(0, 1.0)) for i in range(50)]

    exporter = Exporter([Source(("p",), sweep)], freeze_gc=True)
    keep: list[object] = []
    try:
        await exporter.sweep_once()
        await exporter.sweep_once()
        assert exporter.full_collections == 0  # the same live set: nothing to collect
        assert enabled_during == [False, False]
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
        keep.extend([i] for i in range(2 * gc.get_freeze_count()))  # the live set more than doubles
        await exporter.sweep_once()
        assert exporter.full_collections == 1
    finally:
        gc.unfreeze()


async def test_a_group_that_cannot_be_judged_is_err_and_the_rest_is_served() -> None:
    malformed = LagResult(CheckpointTarget("p", "ls", "cg-bad"))  # neither lag nor error
    script = Script([group("p", "ls", "cg-good", shard(0, 1.0)), malformed])
    exporter = Exporter([Source(("p",), script)])
    await exporter.sweep_once()
    status = scrape(exporter)["sls_consumer_group_status"]
    assert status[key(project="p", logstore="ls", consumer_group="cg-good")] == 0
    assert status[key(project="p", logstore="ls", consumer_group="cg-bad")] == ERR


async def test_a_failed_project_is_one_escaped_warning_and_the_sweep_one_info_line(caplog) -> None:
    hostile = NotFoundError("gone\x1b[31m\nFAKE LOG LINE", error_code="ProjectNotExist", status=404)
    script = Script([failed("gone", "", "", hostile), group("good", "ls", "cg", shard(0, 1.0))])
    exporter = Exporter([Source(("gone", "good"), script)])
    with caplog.at_level("INFO", logger="aiosls.exporter"):
        await exporter.sweep_once()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "aiosls.exporter"]
    assert len(lines) == 2
    (level, warning), (info_level, info) = lines
    assert level == "WARNING"
    assert warning.startswith("gone could not be read: ProjectNotExist")
    assert "\x1b" not in warning
    assert "\n" not in warning
    assert info_level == "INFO"
    assert info.startswith("sweep 1: 1 groups (0 not OK, 0 ERR), 1/2 projects up")
