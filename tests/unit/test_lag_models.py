"""The lag models' derived values: a group's lag, worst shard, unassigned shards, commit ages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aiosls import CheckpointTarget, GroupLag, LagResult, NotFoundError, ShardLag

T = CheckpointTarget("proj", "app-log", "cg")
AS_OF = datetime(2024, 9, 5, tzinfo=UTC)


def shard(n: int, lag: float | None, age: float | None, consumer: str = "c-1") -> ShardLag:
    return ShardLag(
        shard=n,
        checkpoint="" if lag is None else "MTUy",
        consumer=consumer,
        update_time=None if age is None else AS_OF,
        consumed_time=None,
        latest_time=None,
        lag_seconds=lag,
        commit_age_seconds=age,
    )


def test_group_values_are_the_worst_over_shards() -> None:
    lag = GroupLag(
        T, (shard(0, 5.0, 10.0), shard(1, 30.0, 2.0, ""), shard(2, 30.0, 99.0), shard(3, None, None)), AS_OF
    )
    assert lag.lag_seconds == 30.0
    assert lag.worst_shard == 1  # the lowest id on a tie
    assert lag.unassigned_shards == 1
    assert lag.max_commit_age_seconds == 99.0


def test_a_group_without_lag_or_commits() -> None:
    lag = GroupLag(T, (shard(0, None, None), shard(1, None, None, "")), AS_OF)
    assert lag.lag_seconds is None
    assert lag.worst_shard is None
    assert lag.max_commit_age_seconds is None


def test_lag_result_unwraps_its_lag_or_raises_its_error() -> None:
    lag = GroupLag(T, (shard(0, 1.0, 1.0),), AS_OF)
    good = LagResult(T, lag)
    assert good.ok
    assert good.unwrap() is lag
    bad = LagResult(T, error=NotFoundError("gone", error_code="ConsumerGroupNotExist"))
    assert not bad.ok
    with pytest.raises(NotFoundError):
        bad.unwrap()
