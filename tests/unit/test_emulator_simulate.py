"""Seeded history, writers and simulated consumers, on a fake clock (no sockets, no loop).

Lag is computed exactly as the issue defines it (and as a client does over the wire):
``cursor_time(end - 1) - cursor_time(checkpoint - 1)``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiosls.emulator import ApiError, Emulator, EmulatorState, SeedError, decode_cursor, encode_cursor
from aiosls.emulator.seed import apply_seed, load_seed, validate_seed
from aiosls.emulator.simulate import Simulator

T0 = datetime(2024, 9, 5, 8, 30, 15, tzinfo=UTC)
T0_S = int(T0.timestamp())
P, L = "p-1", "ls-1"


def _seed(store: dict[str, Any]) -> dict[str, Any]:
    return {"projects": {P: {"logstores": {L: store}}}}


def _emu(store: dict[str, Any]) -> Emulator:
    return Emulator(seed=_seed(store), clock=lambda: T0, tick_interval=None)


def _time(state: EmulatorState, shard: int, cursor: int) -> int:
    return state.get_cursor_time(P, L, shard, encode_cursor(cursor))


def _lag(state: EmulatorState, group: str, shard: int = 0) -> int:
    """latest_time - consumed_time, as the client computes it."""
    end = decode_cursor(state.get_cursor(P, L, shard, "end"))
    checkpoint = decode_cursor(state.get_checkpoints(P, L, group, shard)[0]["checkpoint"])
    return _time(state, shard, end - 1) - _time(state, shard, checkpoint - 1)


def _cp(state: EmulatorState, group: str, shard: int = 0) -> dict[str, Any]:
    return dict(state.get_checkpoints(P, L, group, shard)[0])


def test_history_and_lag_seconds_give_exactly_the_seeded_lag() -> None:
    groups = {
        f"g-{n}": {"checkpoints": {"0": {"lag_seconds": n}, "1": {"lag_seconds": n}}} for n in (0, 1, 30, 600)
    }
    emu = _emu({"shards": 2, "history_seconds": 3600, "history_rate": 2, "consumer_groups": groups})
    state = emu.state
    for n in (0, 1, 30, 600):
        assert _lag(state, f"g-{n}") == n
        assert _lag(state, f"g-{n}", 1) == n
    # Caught up is the end cursor itself, and the newest package is at the seed time.
    assert _cp(state, "g-0")["checkpoint"] == state.get_cursor(P, L, 0, "end")
    end = decode_cursor(state.get_cursor(P, L, 0, "end"))
    assert _time(state, 0, end - 1) == T0_S
    assert _time(state, 0, decode_cursor(state.get_cursor(P, L, 0, "begin"))) == T0_S - 3600
    # update_time defaults to the seed time; the logstore is as old as its data.
    assert _cp(state, "g-30")["updateTime"] == T0_S * 1_000_000
    assert state.projects[P].logstores[L].shards[0].create_time_s == T0_S - 3600


def test_idle_logstore_holds_old_data_and_caught_up_stays_zero() -> None:
    emu = _emu(
        {
            "shards": 1,
            "history_seconds": 600,
            "idle_seconds": 3000,
            "consumer_groups": {"g-idle": {"checkpoints": {"0": {"lag_seconds": 0}}}},
        }
    )
    state = emu.state
    end = decode_cursor(state.get_cursor(P, L, 0, "end"))
    assert _time(state, 0, end - 1) == T0_S - 3000  # newest package: 50 min before start
    emu.advance(120)
    assert _lag(state, "g-idle") == 0  # caught up, not "now minus last write"
    assert state.get_cursor(P, L, 0, "end") == encode_cursor(end)  # write_rate 0: nothing new


def test_live_writes_follow_the_clock_and_skip_readonly_shards() -> None:
    emu = _emu({"shards": 3, "write_rate": 4, "readonly_shards": [0]})
    state = emu.state
    assert [s["status"] for s in state.list_shards(P, L)] == ["readonly", "readwrite", "readwrite"]
    before = [state.get_cursor(P, L, s, "end") for s in range(3)]
    emu.advance(10)
    assert state.get_cursor(P, L, 0, "end") == before[0]
    for s in (1, 2):
        shard = state.shard(P, L, s)
        assert shard.packages == 40  # 4 per second for 10 s
        assert _time(state, s, shard.end_cursor - 1) == T0_S + 10


def test_ttl_seconds_expires_old_data_and_an_old_checkpoint_is_invalid() -> None:
    emu = _emu(
        {
            "shards": 1,
            "history_seconds": 3600,
            "ttl_seconds": 1800,
            "consumer_groups": {"g-old": {"checkpoints": {"0": {"lag_seconds": 3000}}}},
        }
    )
    state = emu.state
    begin = decode_cursor(state.get_cursor(P, L, 0, "begin"))
    assert _time(state, 0, begin) == T0_S - 1800
    checkpoint = decode_cursor(_cp(state, "g-old")["checkpoint"])
    assert checkpoint < begin
    with pytest.raises(ApiError) as info:
        _time(state, 0, checkpoint - 1)
    assert (info.value.status, info.value.code) == (400, "InvalidCursor")
    # Time passes: retention moves the begin cursor on.
    emu.advance(100)
    assert _time(state, 0, decode_cursor(state.get_cursor(P, L, 0, "begin"))) == T0_S - 1700


def test_lag_beyond_the_history_is_an_expired_checkpoint() -> None:
    emu = _emu(
        {
            "shards": 1,
            "history_seconds": 60,
            "consumer_groups": {"g": {"checkpoints": {"0": {"lag_seconds": 61}}}},
        }
    )
    checkpoint = decode_cursor(_cp(emu.state, "g")["checkpoint"])
    assert checkpoint < decode_cursor(emu.state.get_cursor(P, L, 0, "begin"))
    with pytest.raises(ApiError, match="InvalidCursor"):
        _time(emu.state, 0, checkpoint - 1)


def test_cursor_time_edge_cases() -> None:
    emu = _emu({"shards": 2, "history_seconds": 10, "readonly_shards": [1]})
    state = emu.state
    state.shard(P, L, 1).expire(10**30)  # shard 1 retains nothing
    begin, end = (decode_cursor(state.get_cursor(P, L, 0, f)) for f in ("begin", "end"))
    assert _time(state, 0, begin - 1) == T0_S - 10  # "before the first": the oldest package's time
    assert _time(state, 0, end) == T0_S
    for bad in (begin - 2, end + 1):
        with pytest.raises(ApiError) as info:
            _time(state, 0, bad)
        assert (info.value.status, info.value.code) == (400, "InvalidCursor")
    empty_end = decode_cursor(state.get_cursor(P, L, 1, "end"))
    assert _time(state, 1, empty_end - 1) == T0_S  # an empty shard answers the current time
    assert _time(state, 1, empty_end) == T0_S
    with pytest.raises(ApiError, match="InvalidCursor"):
        _time(state, 1, empty_end - 2)


def _fleet() -> Emulator:
    groups = {
        mode: {"simulate": mode, "checkpoints": {"0": {"lag_seconds": 100, "consumer": f"c-{mode}"}}}
        for mode in ("healthy", "slow", "stalled", "stopped", "rewinding")
    }
    groups["fresh"] = {"simulate": "healthy"}
    return _emu({"shards": 1, "write_rate": 2, "history_seconds": 1000, "consumer_groups": groups})


def test_simulated_consumers_behave_as_named() -> None:
    emu = _fleet()
    state = emu.state
    seeded = {g: _cp(state, g) for g in ("stalled", "stopped")}
    emu.advance(8)
    assert _lag(state, "healthy") == 0
    assert _lag(state, "slow") == 104  # 8 s of writes, 4 s of data consumed
    assert _lag(state, "rewinding") == 0  # follows like healthy before the jump
    assert _lag(state, "fresh") == 0
    stalled = _cp(state, "stalled")
    assert stalled["checkpoint"] == seeded["stalled"]["checkpoint"]
    assert stalled["updateTime"] == (T0_S + 8) * 1_000_000  # commits keep arriving
    assert _lag(state, "stalled") == 108
    assert _cp(state, "stopped") == seeded["stopped"]
    emu.advance(2)  # t = 10 s: the rewinding group jumps back to the oldest data
    assert _lag(state, "rewinding") == 1010
    assert _cp(state, "rewinding")["checkpoint"] == state.get_cursor(P, L, 0, "begin")
    emu.advance(20)  # then follows at the write rate: its lag stays put
    # It has read 20 s of data from the oldest package on: its checkpoint is the package 20 s
    # after it, and the last one it consumed is half a second (one package) earlier.
    assert _lag(state, "rewinding") == 1011
    assert _lag(state, "slow") == 115
    assert _lag(state, "healthy") == 0
    # Simulated consumers heartbeat like real ones and hold the shards; a stopped one does not.
    assert state.consumer_group(P, L, "healthy").owners == {0: "c-healthy"}
    assert state.consumer_group(P, L, "stalled").owners == {0: "c-stalled"}
    assert state.consumer_group(P, L, "stopped").heartbeats == {}
    assert _cp(state, "healthy")["consumer"] == "c-healthy"
    assert _cp(state, "fresh")["consumer"] == "sim-consumer-1"


def test_between_commits_a_healthy_group_lags_by_what_arrived_since() -> None:
    emu = _fleet()
    emu.advance(3)  # committed at 2 s, written until 3 s
    assert _lag(emu.state, "healthy") == 1


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 7_000), min_size=1, max_size=25))
def test_the_outcome_does_not_depend_on_how_often_tick_runs(steps_ms: list[int]) -> None:
    """Ticking in arbitrary steps and ticking once give the same state."""
    total = sum(steps_ms)
    stepped, once = _fleet(), _fleet()
    for ms in steps_ms:
        stepped.advance(ms / 1000)
    once.advance(total / 1000)
    for g in ("healthy", "slow", "stalled", "stopped", "rewinding", "fresh"):
        assert _cp(stepped.state, g) == _cp(once.state, g)
    assert stepped.state.get_cursor(P, L, 0, "end") == once.state.get_cursor(P, L, 0, "end")


def test_simulator_tick_follows_a_fake_clock() -> None:
    now = [T0]
    state = EmulatorState(lambda: now[0])
    apply_seed(
        state, _seed({"shards": 1, "write_rate": 1, "consumer_groups": {"g": {"simulate": "healthy"}}})
    )
    sim = Simulator(state, T0)
    sim.tick()
    assert state.shard(P, L, 0).packages == 0
    now[0] = T0 + timedelta(seconds=5)
    sim.tick()
    assert state.shard(P, L, 0).packages == 5
    now[0] = T0 + timedelta(seconds=1)  # a clock stepping back changes nothing
    sim.tick()
    assert state.shard(P, L, 0).packages == 5


def test_advance_refuses_to_go_back() -> None:
    with pytest.raises(ValueError, match="forward"):
        _fleet().advance(-1)


_CP = {"checkpoints": {"0": {"lag_seconds": 5}}}


@pytest.mark.parametrize(
    ("store", "fragment"),
    [
        ({"shards": 1, "write_rate": -1}, "write_rate"),
        ({"shards": 1, "write_rate": True}, "write_rate"),
        ({"shards": 1, "write_rate": float("nan")}, "write_rate"),
        ({"shards": 1, "write_rate": "2"}, "write_rate"),
        ({"shards": 1, "history_seconds": -5}, "history_seconds"),
        ({"shards": 1, "history_rate": 0}, "history_rate"),
        ({"shards": 1, "idle_seconds": float("inf")}, "idle_seconds"),
        ({"shards": 1, "ttl_seconds": 0}, "ttl_seconds"),
        ({"shards": 1, "ttl_seconds": 1.5}, "ttl_seconds"),
        ({"shards": 2, "readonly_shards": [2]}, "readonly_shards[0]"),
        ({"shards": 2, "readonly_shards": 0}, "readonly_shards"),
        ({"shards": 1, "consumer_groups": {"g": {"simulate": "sleepy"}}}, "simulate"),
        ({"shards": 1, "consumer_groups": {"g": {"checkpoints": {"0": {"lag_seconds": -1}}}}}, "lag_seconds"),
        (
            {
                "shards": 1,
                "consumer_groups": {"g": {"checkpoints": {"0": {"lag_seconds": 1, "checkpoint": "MTA="}}}},
            },
            "exactly one",
        ),
        ({"shards": 1, "consumer_groups": {"g": {"checkpoints": {"0": {"consumer": "c"}}}}}, "exactly one"),
        ({"shards": 1, "consumer_groups": {"g": {**_CP, "extra": 1}}}, "unknown key"),
    ],
)
def test_bad_lag_seeds_name_the_problem(store: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SeedError) as info:
        validate_seed(_seed(store))
    assert fragment in str(info.value)


def test_a_clock_jumping_years_ahead_costs_bounded_work() -> None:
    emu = _fleet()
    emu.advance(10 * 365 * 86400)
    assert _lag(emu.state, "healthy") == 0
    shard = emu.state.shard(P, L, 0)
    assert _time(emu.state, 0, shard.end_cursor - 1) == T0_S + 10 * 365 * 86400


def test_the_example_lag_seed_is_valid_and_uses_every_behaviour() -> None:
    seed = load_seed(Path(__file__).parents[2] / "examples" / "lag-seed.json")
    emu = Emulator(seed=seed, clock=lambda: T0, tick_interval=None)
    emu.advance(12)
    modes = {
        cg.simulate
        for ls in emu.state.projects["lag-demo"].logstores.values()
        for cg in ls.consumer_groups.values()
    }
    assert modes == {None, "healthy", "slow", "stalled", "stopped", "rewinding"}
