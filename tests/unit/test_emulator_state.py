"""The emulator's pure model and seed validation, without sockets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiosls.emulator import ApiError, EmulatorState, SeedError, decode_cursor, encode_cursor, validate_seed
from aiosls.emulator.seed import apply_seed
from aiosls.emulator.state import ConsumerGroupState
from aiosls.models import MAX_EPOCH_VALUE

T0 = datetime(2024, 9, 5, 8, 30, 15, tzinfo=UTC)


def _state(shards: int = 1) -> EmulatorState:
    state = EmulatorState(lambda: T0)
    state.create_project("p-1")
    state.create_logstore("p-1", "ls-1", shards)
    return state


@given(st.integers(min_value=0, max_value=10**19))
def test_cursor_round_trip(value) -> None:
    cursor = encode_cursor(value)
    assert decode_cursor(cursor) == value
    assert "+" not in cursor
    assert "/" not in cursor


def test_doc_cursor_decodes() -> None:
    assert decode_cursor("MTUyNDE1NTM3OTM3MzkwODQ5Ng==") == 1524155379373908496


@given(st.text(max_size=40))
def test_decode_cursor_rejects_or_returns_int(text) -> None:
    try:
        value = decode_cursor(text)
    except ApiError as exc:
        error = exc
    else:
        assert value >= 0
        return
    assert (error.status, error.code) == (400, "InvalidCursor")


@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 50)), max_size=8), st.integers(0, 20_000))
def test_get_cursor_and_cursor_time_agree(batches, offset) -> None:
    state = _state()
    state.clock = lambda: T0 + timedelta(days=1)
    for seconds, n in batches:
        state.append("p-1", "ls-1", 0, n, at=T0 + timedelta(seconds=seconds))
    t = int(T0.timestamp()) + offset
    cursor = state.get_cursor("p-1", "ls-1", 0, str(t))
    end = state.get_cursor("p-1", "ls-1", 0, "end")
    begin = state.get_cursor("p-1", "ls-1", 0, "begin")
    assert decode_cursor(begin) <= decode_cursor(cursor) <= decode_cursor(end)
    if cursor != end:
        # A package's cursor time is at or after the time asked for.
        assert state.get_cursor_time("p-1", "ls-1", 0, cursor) >= t
    assert decode_cursor(end) - decode_cursor(begin) >= sum(n for _, n in batches) * (1 if batches else 0)


@given(
    st.integers(1, 64),
    st.lists(st.text("abcdef", min_size=1, max_size=4), min_size=1, max_size=10, unique=True),
)
def test_rebalance_is_even_complete_and_stable(n_shards, consumers) -> None:
    cg = ConsumerGroupState("g", 60, False)
    for c in consumers:
        cg.heartbeats[c] = 0.0
    cg.rebalance(range(n_shards))
    sizes = [len(cg.assigned(c)) for c in consumers]
    assert sum(sizes) == n_shards
    assert max(sizes) - min(sizes) <= 1
    before = dict(cg.owners)
    cg.heartbeats["zz-new"] = 0.0
    cg.rebalance(range(n_shards))
    moved = sum(1 for s, c in before.items() if cg.owners[s] != c)
    # Only what the newcomer takes moves.
    assert moved == len(cg.assigned("zz-new"))


def test_group_timeout_expires_consumers() -> None:
    state = _state(shards=2)
    now = [T0]
    state.clock = lambda: now[0]
    state.create_consumer_group("p-1", "ls-1", "g", timeout=10)
    assert state.heartbeat("p-1", "ls-1", "g", "a", []) == [0, 1]
    assert state.heartbeat("p-1", "ls-1", "g", "b", []) == [1]  # a gives up one, keeps the other
    now[0] = T0 + timedelta(seconds=5)
    assert state.heartbeat("p-1", "ls-1", "g", "b", [1]) == [1]
    now[0] = T0 + timedelta(seconds=11)
    assert state.heartbeat("p-1", "ls-1", "g", "b", [1]) == [0, 1]  # a expired after 10 s


def test_seed_example_from_the_issue() -> None:
    seed = {
        "access_keys": {"AKID": "SECRET"},
        "projects": {
            "demo-project": {
                "logstores": {
                    "app-log": {
                        "shards": 4,
                        "consumer_groups": {
                            "cg-main": {
                                "timeout": 60,
                                "order": False,
                                "checkpoints": {
                                    "0": {
                                        "checkpoint": "MTUyNDE1NTM3OTM3MzkwODQ5Ng==",
                                        "consumer": "c-1",
                                        "update_time": 1524224984800922,
                                    }
                                },
                            }
                        },
                    }
                }
            }
        },
    }
    state = EmulatorState(lambda: T0)
    assert apply_seed(state, seed) == {"AKID": "SECRET"}
    cps = state.get_checkpoints("demo-project", "app-log", "cg-main")
    assert cps[0] == {
        "shard": 0,
        "checkpoint": "MTUyNDE1NTM3OTM3MzkwODQ5Ng==",
        "updateTime": 1524224984800922,
        "consumer": "c-1",
    }
    assert cps[3] == {"shard": 3, "checkpoint": "", "updateTime": 0, "consumer": ""}


@pytest.mark.parametrize(
    ("seed", "fragment"),
    [
        ([], "(root)"),
        ({"projects": {"p-1": {"logstores": {"ls-1": {}}}}}, "missing 'shards'"),
        ({"projects": {"p-1": {"logstores": {"ls-1": {"shards": True}}}}}, "shards"),
        (
            {
                "projects": {
                    "p-1": {
                        "logstores": {
                            "ls-1": {
                                "shards": 2,
                                "consumer_groups": {"g": {"checkpoints": {"2": {"checkpoint": "x"}}}},
                            }
                        }
                    }
                }
            },
            "0..1",
        ),
        (
            {
                "projects": {
                    "p-1": {"logstores": {"ls-1": {"shards": 2, "consumer_groups": {"g": {"timeout": "60"}}}}}
                }
            },
            "timeout",
        ),
        ({"projects": {"p-1": {"extra": 1}}}, "unknown key"),
        ({"access_keys": {"AK": ""}}, "access_keys.AK"),
    ],
)
def test_bad_seeds_name_the_problem(seed, fragment) -> None:
    with pytest.raises(SeedError) as info:
        validate_seed(seed)
    assert fragment in str(info.value)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda c: (
        st.lists(c, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "projects",
                    "access_keys",
                    "logstores",
                    "shards",
                    "p-1",
                    "ls-1",
                    "consumer_groups",
                    "g",
                    "checkpoints",
                    "0",
                    "checkpoint",
                    "timeout",
                    "order",
                ]
            ),
            c,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(_json)
def test_seed_validation_never_crashes(seed) -> None:
    try:
        validate_seed(seed)
    except SeedError:
        return
    apply_seed(EmulatorState(lambda: T0), seed)  # valid seeds always apply


def _seed_cp(key: object, **entry: object) -> dict[str, object]:
    group = {"checkpoints": {key: {"checkpoint": "MTA=", **entry}}}
    return {"projects": {"p-1": {"logstores": {"ls-1": {"shards": 2, "consumer_groups": {"g-1": group}}}}}}


@pytest.mark.parametrize(
    ("seed", "fragment"),
    [
        (_seed_cp("\u00b2"), "decimal shard id"),  # was an uncaught ValueError from int()
        (_seed_cp("\u0661"), "decimal shard id"),  # was accepted as shard 1
        (_seed_cp(0), "shard key must be a string, got int"),  # was an AttributeError
        (_seed_cp(True), "shard key must be a string, got bool"),
        (_seed_cp("0", update_time=MAX_EPOCH_VALUE + 1), f"0..{MAX_EPOCH_VALUE}"),
        (_seed_cp("0", update_time=(1 << 62)), "update_time"),
        (_seed_cp("0", update_time=-1), "update_time"),
        ({"access_keys": {5: "secret"}}, "access_keys.5"),  # a non-str key id was accepted
    ],
)
def test_seed_rejects_what_a_client_could_not_read(seed, fragment) -> None:
    with pytest.raises(SeedError) as info:
        validate_seed(seed)
    assert fragment in str(info.value)
    with pytest.raises(SeedError):
        apply_seed(EmulatorState(lambda: T0), seed)


def test_seed_update_time_up_to_the_client_maximum_applies() -> None:
    state = EmulatorState(lambda: T0)
    apply_seed(state, _seed_cp("1", update_time=MAX_EPOCH_VALUE))
    assert state.get_checkpoints("p-1", "ls-1", "g-1", 1)[0]["updateTime"] == MAX_EPOCH_VALUE


@pytest.mark.parametrize("from_", ["\u00b2", "\u0661", "1\u00b2", "\u0661\u0662\u0663"])
def test_get_cursor_from_takes_ascii_digits_only(from_) -> None:
    state = _state()
    with pytest.raises(ApiError) as info:
        state.get_cursor("p-1", "ls-1", 0, from_)
    assert (info.value.status, info.value.code) == (400, "ParameterInvalid")
