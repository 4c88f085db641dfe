"""Lag sweeps against the emulator: seeded lag read back through ``get_lag`` / ``get_lag_many`` /
``scan_lag``, each simulated behaviour judged by ``HealthEvaluator`` across sweeps, and a fan-out
in which one project is missing and the service is throttled.

The emulator's clock is frozen at the real time and moves only by ``advance``; the client reads
the same clock (``clock=emu.now``), so lags and commit ages are exact and nothing sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from aiosls import (
    NO_RETRY,
    Backoff,
    CheckpointService,
    CheckpointTarget,
    Credentials,
    GroupLag,
    Health,
    HealthEvaluator,
    NotFoundError,
    RetryPolicy,
    ThrottlingError,
)
from aiosls.emulator import Emulator

A, B = "lag-a", "lag-b"
CREDS = Credentials("lag-key", "lag-secret")
FAST = RetryPolicy(
    max_attempts=30,
    throttling=Backoff(initial=0.001, cap=0.005),
    transient=Backoff(initial=0.001, cap=0.005),
)
LAST_COMMIT_US = 1_700_000_000_123_456  # 2023-11-14T22:13:20.123456Z
SIMULATED = ("healthy", "slow", "stalled", "stopped", "rewinding")
SEED = {
    "access_keys": {"lag-key": "lag-secret"},
    "projects": {
        A: {
            "logstores": {
                # Idle, holding old data: written at 2/s for 90 min, ending 10 min ago; 1 h kept.
                "old-log": {
                    "shards": 2,
                    "history_seconds": 5400,
                    "history_rate": 2,
                    "idle_seconds": 600,
                    "ttl_seconds": 3600,
                    "consumer_groups": {
                        "cg-lag": {
                            "checkpoints": {
                                "0": {"lag_seconds": 90, "consumer": "c-1", "update_time": LAST_COMMIT_US},
                                "1": {"lag_seconds": 0},
                            }
                        },
                        "cg-expired": {"checkpoints": {"0": {"lag_seconds": 4000}, "1": {"lag_seconds": 60}}},
                        "cg-never": {},
                        "cg-reprocess": {},
                    },
                },
                # Live: 4 packages/s on shards 1 and 2; shard 0 is read-only after a split.
                "live-log": {
                    "shards": 3,
                    "write_rate": 4,
                    "history_seconds": 300,
                    "readonly_shards": [0],
                    "consumer_groups": {
                        "cg-split": {
                            "checkpoints": {
                                "0": {"lag_seconds": 30},
                                "1": {"lag_seconds": 0},
                                "2": {"lag_seconds": 0},
                            }
                        },
                        **{
                            mode: {"simulate": mode, "checkpoints": {"1": {"lag_seconds": 60}}}
                            for mode in SIMULATED
                        },
                    },
                },
            }
        },
        B: {
            "logstores": {
                "b-log": {
                    "shards": 2,
                    "write_rate": 2,
                    "history_seconds": 120,
                    "consumer_groups": {
                        f"b-{i}": {"checkpoints": {"0": {"lag_seconds": 10 * i}, "1": {"lag_seconds": 5}}}
                        for i in range(6)
                    },
                }
            }
        },
    },
}


@pytest.fixture
async def env() -> AsyncIterator[tuple[Emulator, CheckpointService, int]]:
    frozen = datetime.now(UTC).replace(microsecond=0)
    async with (
        Emulator(seed=SEED, clock=lambda: frozen, tick_interval=None, region="cn-hangzhou") as emu,
        CheckpointService(emu.endpoint, CREDS, region="cn-hangzhou", retry=FAST, clock=emu.now) as svc,
    ):
        yield emu, svc, int(frozen.timestamp())


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def lags(lag: GroupLag) -> list[float | None]:
    return [s.lag_seconds for s in lag.shards]


async def test_seeded_lag_read_back_shard_by_shard(env) -> None:
    _, svc, now = env
    lag = await svc.get_lag(A, "old-log", "cg-lag")
    behind, caught_up = lag.shards
    assert behind.lag_seconds == 90.0
    assert behind.latest_time == at(now - 600)  # idle for ten minutes
    assert behind.consumed_time == at(now - 690)
    assert behind.consumer == "c-1"
    assert behind.update_time == datetime.fromtimestamp(LAST_COMMIT_US / 1e6, UTC)
    assert behind.commit_age_seconds == pytest.approx(now - LAST_COMMIT_US / 1e6)
    assert (behind.expired, behind.caught_up) == (False, False)
    # Caught up on an idle shard: 0, not "ten minutes since the last write".
    assert caught_up.lag_seconds == 0.0
    assert caught_up.caught_up is True
    assert caught_up.commit_age_seconds == 0.0
    assert (lag.lag_seconds, lag.worst_shard, lag.as_of) == (90.0, 0, at(now))


async def test_expired_never_committed_and_reprocessing_groups(env) -> None:
    emu, svc, now = env
    expired = await svc.get_lag(A, "old-log", "cg-expired")
    # 4000 s behind the newest, but only an hour is kept: measured from the oldest data.
    assert expired.shards[0].expired is True
    assert expired.shards[0].consumed_time == at(now - 3600)
    assert lags(expired) == [3000.0, 60.0]
    assert expired.shards[1].expired is False
    never = await svc.get_lag(A, "old-log", "cg-never")
    assert lags(never) == [None, None]
    assert never.lag_seconds is None
    assert [s.latest_time for s in never.shards] == [at(now - 600)] * 2
    # A group reset to the oldest retained data is behind by all of it, and lost nothing.
    for shard in (0, 1):
        begin = await svc.get_cursor(A, "old-log", shard, "begin")
        await svc.update_checkpoint(A, "old-log", "cg-reprocess", shard, begin)
    reprocess = await svc.get_lag(A, "old-log", "cg-reprocess")
    assert lags(reprocess) == [3000.0, 3000.0]
    assert [s.expired for s in reprocess.shards] == [False, False]
    # Retention moves on: the expired checkpoint's lag is measured from the new oldest data.
    emu.advance(100)
    assert lags(await svc.get_lag(A, "old-log", "cg-expired")) == [2900.0, 60.0]


async def test_a_read_only_shard_keeps_its_lag_while_the_others_move(env) -> None:
    emu, svc, now = env
    assert lags(await svc.get_lag(A, "live-log", "cg-split")) == [30.0, 0.0, 0.0]
    emu.advance(8)
    lag = await svc.get_lag(A, "live-log", "cg-split")
    # No writes after the split: its lag stays; the readwrite shards fell 8 s behind.
    assert lags(lag) == [30.0, 8.0, 8.0]
    assert lag.shards[0].latest_time == at(now)
    assert lag.shards[1].latest_time == at(now + 8)
    assert lag.worst_shard == 0


async def test_each_simulated_behaviour_gets_its_verdict(env) -> None:
    emu, svc, _ = env
    health = HealthEvaluator(allowed_lag=30.0, window=10)
    targets = [CheckpointTarget(A, "live-log", mode) for mode in SIMULATED]
    seen: dict[str, list[Health]] = {mode: [] for mode in SIMULATED}
    shard1: dict[str, list[float | None]] = {mode: [] for mode in SIMULATED}
    for step in range(4):  # sweeps at t = 0, 4, 8, 12; the rewinding group jumps back at t = 10
        if step:
            emu.advance(4)
        async for result in svc.get_lag_many(targets):
            mode = result.target.consumer_group
            seen[mode].append(health.observe(result).status)
            shard1[mode].append(result.unwrap().shards[1].lag_seconds)
    assert seen["healthy"] == [Health.OK] * 4
    assert shard1["healthy"] == [60.0, 0.0, 0.0, 0.0]
    # Slow: half the write rate, the lag grows 0.5 s a second; WARN once the window can judge.
    assert shard1["slow"] == [60.0, 62.0, 64.0, 66.0]
    assert seen["slow"] == [Health.OK, Health.OK, Health.WARN, Health.WARN]
    # Stalled: commits keep coming, the checkpoint does not move.
    assert shard1["stalled"] == [60.0, 64.0, 68.0, 72.0]
    assert seen["stalled"] == [Health.OK, Health.STALL, Health.STALL, Health.STALL]
    # Stopped: its last commit is a minute old from the first reading.
    assert shard1["stopped"] == [60.0, 64.0, 68.0, 72.0]
    assert seen["stopped"] == [Health.STOP] * 4
    # Rewinding: follows, then jumps back to the oldest data (300 s of history) at t = 10.
    assert shard1["rewinding"][:3] == [60.0, 0.0, 0.0]
    assert shard1["rewinding"][3] == pytest.approx(310.0, abs=1.0)
    assert seen["rewinding"] == [Health.OK, Health.OK, Health.OK, Health.REWIND]


async def test_call_economy_of_first_and_repeated_sweeps_on_the_emulator(env) -> None:
    emu, svc, _ = env
    targets = [CheckpointTarget(B, "b-log", f"b-{i}") for i in range(6)]
    g, l_, s = 6, 1, 2
    first = {r.target.consumer_group: r.unwrap() async for r in svc.get_lag_many(targets, concurrency=64)}
    sent_first = svc.requests_sent
    second = {r.target.consumer_group: r.unwrap() async for r in svc.get_lag_many(targets, concurrency=64)}
    sent_second = svc.requests_sent - sent_first
    assert {k: lags(v) for k, v in first.items()} == {f"b-{i}": [float(10 * i), 5.0] for i in range(6)}
    assert {k: lags(v) for k, v in second.items()} == {k: lags(v) for k, v in first.items()}
    # b-0's shard 0 is caught up (no time fetch for it): one below the goal's bound.
    assert sent_first == g + 2 * l_ * s + g * s - 1
    assert sent_second == g + l_ * s <= g + 2 * l_ * s
    assert emu.counters.served["GetCursorTime"] == 2 + 11  # ends, then the 11 checkpoints behind


async def test_a_fan_out_with_a_missing_project_and_throttling_gives_every_other_group_its_lag(env) -> None:
    emu, svc, _ = env
    # Half of every lag call is throttled; the fast retry policy absorbs it in milliseconds.
    emu.faults.configure(throttle_rate=0.5, apis={"GetCheckPoint", "GetCursor", "GetCursorTime"})
    results = [r async for r in svc.scan_lag([A, "no-such-project", B], concurrency=16)]
    assert emu.faults.injected["throttle"] > 10
    errors = [r for r in results if not r.ok]
    assert len(errors) == 1
    assert errors[0].target.project == "no-such-project"
    assert isinstance(errors[0].error, NotFoundError)
    assert errors[0].error.error_code == "ProjectNotExist"
    by_group = {(r.target.logstore, r.target.consumer_group): r.unwrap() for r in results if r.ok}
    assert len(by_group) == 4 + 6 + 6
    assert lags(by_group[("old-log", "cg-lag")]) == [90.0, 0.0]
    assert lags(by_group[("old-log", "cg-expired")]) == [3000.0, 60.0]
    assert lags(by_group[("live-log", "cg-split")]) == [30.0, 0.0, 0.0]
    for i in range(6):
        assert lags(by_group[("b-log", f"b-{i}")]) == [float(10 * i), 5.0]


async def test_throttling_that_outlasts_the_retries_fails_only_the_targets_it_hit(env) -> None:
    emu, svc, _ = env
    emu.faults.fail_next(2, "throttle", api="GetCheckPoint")
    targets = [CheckpointTarget(B, "b-log", f"b-{i}") for i in range(6)]
    targets.append(CheckpointTarget("no-such-project", "b-log", "b-0"))
    results = [r async for r in svc.get_lag_many(targets, retry=NO_RETRY)]
    throttled = [r for r in results if isinstance(r.error, ThrottlingError)]
    missing = [r for r in results if isinstance(r.error, NotFoundError)]
    assert len(throttled) == 2
    assert [r.target.project for r in missing] == ["no-such-project"]
    fine = [r for r in results if r.ok]
    assert len(fine) == 4
    for r in fine:
        i = int(r.target.consumer_group[2:])
        assert lags(r.unwrap()) == [float(10 * i), 5.0]


async def test_scan_lag_takes_the_same_logstore_filter_as_scan(env) -> None:
    _, svc, _ = env
    results = [r async for r in svc.scan_lag(A, logstore_filter="old-*")]
    assert sorted(r.target.consumer_group for r in results) == [
        "cg-expired",
        "cg-lag",
        "cg-never",
        "cg-reprocess",
    ]
    assert all(r.target.logstore == "old-log" for r in results)
    assert {r.target.consumer_group: r.unwrap().lag_seconds for r in results} == {
        "cg-expired": 3000.0,
        "cg-lag": 90.0,
        "cg-never": None,
        "cg-reprocess": None,
    }
