"""The pure health evaluator, rule by rule: sequences of observations in, verdicts out."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest
from helpers import T0
from hypothesis import given
from hypothesis import strategies as st

from aiosls.errors import NotFoundError, ThrottlingError, TransientError
from aiosls.health import (
    GroupHealth,
    Health,
    HealthEvaluator,
    ShardHealth,
    decode_cursor,
    format_duration,
)
from aiosls.models import CheckpointTarget, GroupLag, LagResult, ShardLag

TARGET = CheckpointTarget("proj", "app-log", "cg-main")
OK, WARN, STALL, STOP, REWIND, ERR = (
    Health.OK,
    Health.WARN,
    Health.STALL,
    Health.STOP,
    Health.REWIND,
    Health.ERR,
)

# A step builds one shard's observation at a time offset: (seconds after T0, shard id) -> ShardLag.
Step = Callable[[float, int], ShardLag]


def cursor(n: int) -> str:
    """An SLS cursor: base64 of the decimal digits."""
    return base64.b64encode(str(n).encode()).decode()


def behind(lag: float, cur: int, age: float = 2.0, *, expired: bool = False) -> Step:
    """A committed shard ``lag`` seconds behind its newest data, last committed ``age`` seconds ago."""

    def build(t: float, shard: int) -> ShardLag:
        as_of = T0 + timedelta(seconds=t)
        return ShardLag(
            shard=shard,
            checkpoint=cursor(cur),
            consumer="c-1",
            update_time=as_of - timedelta(seconds=age),
            consumed_time=as_of - timedelta(seconds=lag),
            latest_time=as_of,
            lag_seconds=lag,
            commit_age_seconds=age,
            expired=expired,
        )

    return build


def up(cur: int, age: float = 3600.0) -> Step:
    """A caught-up shard (checkpoint == end cursor), last committed ``age`` seconds ago."""

    def build(t: float, shard: int) -> ShardLag:
        as_of = T0 + timedelta(seconds=t)
        return ShardLag(
            shard=shard,
            checkpoint=cursor(cur),
            consumer="c-1",
            update_time=as_of - timedelta(seconds=age),
            consumed_time=as_of - timedelta(seconds=age),
            latest_time=as_of - timedelta(seconds=age),
            lag_seconds=0.0,
            commit_age_seconds=age,
            caught_up=True,
        )

    return build


def opaque(lag: float, age: float = 2.0) -> Step:
    """A committed shard whose checkpoint is not a decimal cursor (compared as text only)."""

    def build(t: float, shard: int) -> ShardLag:
        as_of = T0 + timedelta(seconds=t)
        update = as_of - timedelta(seconds=age)
        return ShardLag(shard, "not a cursor!", "c", update, as_of - timedelta(seconds=lag), as_of, lag, age)

    return build


def never(newest_at: float | None = None) -> Step:
    """A never-committed shard; ``newest_at`` is when its newest data arrived (None: empty)."""

    def build(t: float, shard: int) -> ShardLag:
        latest = None if newest_at is None else T0 + timedelta(seconds=newest_at)
        return ShardLag(shard, "", "", None, None, latest, None, None)

    return build


def observation(t: float, *steps: Step, target: CheckpointTarget = TARGET) -> GroupLag:
    return GroupLag(target, tuple(step(t, i) for i, step in enumerate(steps)), T0 + timedelta(seconds=t))


def run(evaluator: HealthEvaluator, steps: Sequence[tuple[float, Step]]) -> list[GroupHealth]:
    """Observe a one-shard group at each (time, step); the verdicts in order."""
    return [evaluator.observe(observation(t, step)) for t, step in steps]


def final(steps: Sequence[tuple[float, Step]], **kwargs: float) -> ShardHealth:
    window = int(kwargs.pop("window", 10))
    verdicts = run(HealthEvaluator(window=window, **kwargs), steps)
    return verdicts[-1].shards[0]


# --- the rules, one table each ----------------------------------------------------------------

OK_CASES = {
    "idle caught-up shard with a day-old commit": [(0, up(100, age=86_400))],
    "caught up after lagging": [(0, behind(500, 10)), (30, behind(600, 20)), (60, up(30))],
    "small lag, commit 2 s old": [(0, behind(5, 10))],
    "never committed, empty shard": [(0, never())],
    "never committed, data but none new": [(0, never(-100)), (30, never(-100)), (60, never(-100))],
    "never committed, one sweep with data": [(0, never(0))],
    "over allowed lag, one sweep": [(0, behind(300, 10))],
    "over allowed lag, two sweeps": [(0, behind(300, 10)), (30, behind(330, 20))],
    "over allowed lag, catching up": [(0, behind(300, 10)), (30, behind(290, 20)), (60, behind(250, 30))],
    "within allowed once in the window": [(0, behind(30, 10)), (30, behind(90, 20)), (60, behind(120, 30))],
    # linkedin/Burrow#303: a shard idle for an hour receives data; the consumer had nothing to do
    # until the caught-up sweep 30 s ago, so its hour-old commit is not a STOP.
    "idle shard just got data": [(0, up(100, age=3600)), (30, behind(3630, 100, age=3630))],
    "rewind within allowed lag": [(0, behind(5, 100)), (30, behind(40, 50))],
    "rewind then caught up": [(0, behind(5, 100)), (30, behind(900, 50)), (60, up(200))],
    "rewind then back within allowed": [(0, behind(5, 100)), (30, behind(900, 50)), (60, behind(20, 150))],
    "stuck checkpoint within allowed once": [
        (0, behind(30, 10)),
        (30, behind(90, 10)),
        (60, behind(120, 10)),
    ],
}


@pytest.mark.parametrize("steps", OK_CASES.values(), ids=OK_CASES.keys())
def test_ok(steps):
    verdict = final(steps)
    assert verdict.status is OK, verdict.reason
    assert verdict.reason


def test_undecodable_cursor_is_not_compared():
    steps = [(0, behind(5, 100)), (30, opaque(900)), (60, behind(900, 1))]
    assert [v.status for v in run(HealthEvaluator(), steps)] == [OK, OK, OK]


STOP_CASES = {
    "one observation: commit older than allowed lag, data waiting": ([(0, behind(300, 10, age=301))], {}),
    "lag rounds to 0 s but data waits": ([(0, behind(0.0, 10, age=3600))], {}),
    # linkedin/Burrow#290: an old good sample must not hide a consumer that died since.
    "good sample earlier in the window": (
        [(0, behind(5, 10)), (60, behind(65, 11, age=62)), (120, behind(125, 11, age=122))],
        {},
    ),
    "caught up once, then nothing for longer than stop_after": (
        [(0, up(10)), (30, behind(30, 10, age=3630)), (400, behind(400, 10, age=4000))],
        {"stop_after": 300.0},
    ),
    "expired checkpoint": ([(0, behind(86_400, 10, age=90_000, expired=True))], {}),
}


@pytest.mark.parametrize(("steps", "kwargs"), STOP_CASES.values(), ids=STOP_CASES.keys())
def test_stop(steps, kwargs):
    verdict = final(steps, **kwargs)
    assert verdict.status is STOP, verdict.reason
    assert verdict.reason.startswith("no commit for ")


def test_stop_reason_and_explicit_stop_after():
    assert final([(0, behind(192, 10, age=400))]).reason == "no commit for 6m40s > 1m, lag 3m12s"
    assert final([(0, behind(192, 10, age=400))], stop_after=600.0).status is OK
    expired = final([(0, behind(86_400, 10, age=90_000, expired=True))])
    assert expired.reason.endswith("(checkpoint expired: unread data was deleted)")


def test_stop_default_is_the_window_span_never_less_than_allowed_lag():
    steps = [(t, behind(300 + t, 10 + t, age=2)) for t in (0, 100, 200, 300)]
    # Commits 150 s old: over allowed_lag (60 s), but within the window's 400 s span.
    steps.append((400, behind(700, 410, age=150)))
    assert final(steps).status is WARN
    # With only one earlier sweep the span is 100 s, so 150 s is too long.
    assert final([(300, behind(300, 10)), (400, behind(700, 410, age=150))]).status is STOP
    # A missing commit age (no update_time) cannot be judged STOP.
    assert final([(0, lambda t, s: ShardLag(s, cursor(1), "", None, None, T0, 600.0, None))]).status is OK


STALL_CASES = {
    "checkpoint fixed, commits fresh": [(0, behind(100, 10)), (30, behind(130, 10))],
    "opaque checkpoint fixed, commits fresh": [(0, opaque(100)), (30, opaque(130))],
    "moved, then stuck twice": [(0, behind(100, 5)), (30, behind(120, 10)), (60, behind(150, 10))],
}


@pytest.mark.parametrize("steps", STALL_CASES.values(), ids=STALL_CASES.keys())
def test_stall(steps):
    verdict = final(steps)
    assert verdict.status is STALL, verdict.reason
    assert verdict.reason.startswith("commits arrive but the checkpoint has not moved")


NOT_STALL_CASES = {
    "one observation": [(0, behind(100, 10))],
    "update_time did not move": [(0, behind(100, 10, age=2)), (30, behind(130, 10, age=32))],
}


@pytest.mark.parametrize("steps", NOT_STALL_CASES.values(), ids=NOT_STALL_CASES.keys())
def test_not_stall(steps):
    assert final(steps).status is OK


WARN_CASES = {
    "rising": ([(0, behind(100, 10)), (30, behind(120, 20)), (60, behind(140, 30))], {}, "rising"),
    "flat": ([(0, behind(100, 10)), (30, behind(90, 20)), (60, behind(100, 30))], {}, "not decreasing"),
    "window of one judges at once": ([(0, behind(100, 10))], {"window": 1}, "lag 1m40s > allowed 1m"),
    "window of two": ([(0, behind(100, 10)), (30, behind(110, 20))], {"window": 2}, "rising"),
    "never committed while data arrives": (
        [(0, never(0)), (30, never(30)), (60, never(60))],
        {},
        "never committed",
    ),
}


@pytest.mark.parametrize(("steps", "kwargs", "word"), WARN_CASES.values(), ids=WARN_CASES.keys())
def test_warn(steps, kwargs, word):
    verdict = final(steps, **kwargs)
    assert verdict.status is WARN, verdict.reason
    assert word in verdict.reason


def test_warn_reason_reads_like_a_page():
    steps = [(0, behind(100, 10)), (30, behind(150, 20)), (60, behind(192, 30))]
    assert final(steps).reason == "lag 3m12s > allowed 1m, rising over 3 sweeps"
    assert final([(0, behind(192, 10))]).reason == "lag 3m12s > allowed 1m, 1 of 3 sweeps to judge"


REWIND_CASES = {
    "reset to the oldest data": [(0, behind(5, 100)), (30, behind(3600, 50))],
    "still catching up after the reset": [
        (0, behind(5, 100)),
        (30, behind(3600, 50)),
        (60, behind(3000, 70)),
    ],
    "a reset hides an older good sample": [(0, behind(5, 100)), (30, behind(5, 120)), (60, behind(900, 1))],
}


@pytest.mark.parametrize("steps", REWIND_CASES.values(), ids=REWIND_CASES.keys())
def test_rewind(steps):
    verdict = final(steps)
    assert verdict.status is REWIND, verdict.reason
    assert verdict.reason.startswith("checkpoint moved back")


def test_rewind_leaves_with_the_window():
    steps = [(0, behind(5, 100)), (30, behind(900, 50)), (60, behind(900, 60)), (90, behind(900, 70))]
    statuses = [v.shards[0].status for v in run(HealthEvaluator(window=3), steps)]
    assert statuses == [OK, REWIND, REWIND, WARN]


def test_rewind_outranks_stop():
    verdict = final([(0, behind(5, 100)), (30, behind(900, 50, age=3600))])
    assert verdict.status is REWIND
    assert verdict.reason == "checkpoint moved back, lag 15m > allowed 1m"


# --- ERR --------------------------------------------------------------------------------------


def test_vanished_group_is_err_once_and_forgotten():
    evaluator = HealthEvaluator()
    run(evaluator, [(0, behind(100, 10)), (30, behind(120, 20))])
    gone = NotFoundError("gone", error_code="ConsumerGroupNotExist", status=404)
    verdict = evaluator.observe(LagResult(TARGET, error=gone))
    assert (verdict.status, verdict.shards, verdict.max_lag_seconds) == (ERR, (), None)
    assert verdict.reason == "group not found (ConsumerGroupNotExist)"
    assert evaluator.tracked_groups == 0
    # Re-created: a fresh window (two sweeps are not enough to WARN).
    assert run(evaluator, [(60, behind(140, 30)), (90, behind(160, 40))])[-1].status is OK


def test_failed_read_is_err_and_keeps_the_window():
    evaluator = HealthEvaluator()
    run(evaluator, [(0, behind(100, 10)), (30, behind(120, 20))])
    throttled = ThrottlingError("slow down", error_code="ReadQuotaExceed\x1b[31m", status=403)
    verdict = evaluator.observe(LagResult(TARGET, error=throttled))
    assert verdict.status is ERR
    assert verdict.reason == "lag could not be read (ReadQuotaExceed\\x1b[31m)"
    assert evaluator.observe(LagResult(TARGET, lag=observation(60, behind(140, 30)))).status is WARN


def test_err_without_code_names_the_class():
    verdict = HealthEvaluator().observe(LagResult(TARGET, error=TransientError("reset")))
    assert verdict.reason == "lag could not be read (TransientError)"


def test_observe_rejects_other_types():
    with pytest.raises(TypeError, match="expected GroupLag or LagResult, not str"):
        HealthEvaluator().observe("cg-main")  # type: ignore[arg-type]


# --- forgetting and window edges ---------------------------------------------------------------


def test_observe_all_forgets_groups_not_in_the_sweep():
    other = CheckpointTarget("proj", "app-log", "cg-deleted")
    evaluator = HealthEvaluator(allowed_lag=60.0)
    evaluator.observe_all([observation(0, behind(5, 10)), observation(0, behind(5, 10), target=other)])
    assert evaluator.tracked_groups == 2
    verdicts = evaluator.observe_all([LagResult(TARGET, lag=observation(30, behind(5, 20)))])
    assert [v.target for v in verdicts] == [TARGET]
    assert evaluator.tracked_groups == 1
    # It comes back with a fresh window, not with the sample of the sweep that missed it.
    back = evaluator.observe(observation(1800, behind(1805, 10, age=30), target=other))
    assert back.reason == "shard 0: lag 30m5s > allowed 1m, 1 of 3 sweeps to judge"
    assert back.status is OK


def test_forget():
    evaluator = HealthEvaluator()
    run(evaluator, [(0, behind(100, 10)), (30, behind(120, 20))])
    evaluator.forget(TARGET)
    evaluator.forget(CheckpointTarget("proj", "app-log", "never-seen"))
    assert evaluator.tracked_groups == 0
    assert run(evaluator, [(60, behind(140, 30))])[-1].shards[0].reason.endswith("1 of 3 sweeps to judge")


def test_merged_shard_is_forgotten_and_a_new_one_starts_fresh():
    evaluator = HealthEvaluator()
    evaluator.observe(observation(0, behind(100, 10), behind(100, 10)))
    assert evaluator.observe(observation(30, behind(130, 10), behind(130, 10))).status is STALL
    # Shard 1 gone (merged), then back with the same id: its stuck history is gone.
    evaluator.observe(observation(60, behind(5, 20)))
    verdict = evaluator.observe(observation(90, behind(5, 30), behind(130, 10)))
    assert [s.status for s in verdict.shards] == [OK, OK]


def test_window_slides():
    steps = [(0, behind(50, 10)), (30, behind(100, 20)), (60, behind(110, 30)), (90, behind(120, 40))]
    statuses = [v.status for v in run(HealthEvaluator(window=3), steps)]
    # The within-allowed sample at 0 s keeps it OK until it leaves the 3-observation window.
    assert statuses == [OK, OK, OK, WARN]


def test_the_same_sweep_twice_counts_once():
    evaluator = HealthEvaluator()
    obs = observation(0, behind(100, 10))
    verdicts = [evaluator.observe(obs) for _ in range(3)]
    assert [v.status for v in verdicts] == [OK, OK, OK]
    assert verdicts[-1].shards[0].reason.endswith("1 of 3 sweeps to judge")


def test_a_sweep_seen_again_is_compared_with_the_one_before():
    # The repeat replaces t=30; compared with t=30 itself it would look held (a false STALL).
    steps = [(0, behind(100, 10)), (30, behind(130, 20)), (30, behind(130, 20))]
    assert [v.status for v in run(HealthEvaluator(), steps)] == [OK, OK, OK]
    # And a rewind seen twice is still a rewind.
    steps = [(0, behind(100, 10)), (30, behind(900, 5)), (30, behind(900, 5))]
    assert [v.status for v in run(HealthEvaluator(), steps)] == [OK, REWIND, REWIND]


def test_a_clock_that_goes_back_restarts_the_window():
    evaluator = HealthEvaluator()
    run(evaluator, [(100, behind(100, 10)), (130, behind(120, 20))])
    verdict = run(evaluator, [(50, behind(140, 30)), (80, behind(160, 40))])[-1]
    assert verdict.shards[0].reason.endswith("2 of 3 sweeps to judge")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 0},
        {"window": True},
        {"window": 2.5},
        {"allowed_lag": -1.0},
        {"allowed_lag": float("nan")},
        {"allowed_lag": "60"},
        {"stop_after": 0.0},
        {"stop_after": float("inf")},
    ],
)
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        HealthEvaluator(**kwargs)


def test_repr_and_parameters():
    evaluator = HealthEvaluator(allowed_lag=30, window=5, stop_after=120)
    assert repr(evaluator) == "HealthEvaluator(allowed_lag=30.0, window=5, stop_after=120.0, groups=0)"


# --- the group verdict -----------------------------------------------------------------------


def test_group_is_its_worst_shard():
    evaluator = HealthEvaluator()
    verdict = evaluator.observe(
        observation(0, up(10), behind(300, 10, age=400), behind(500, 10, age=600), never())
    )
    assert verdict.status is STOP
    assert verdict.max_lag_seconds == 500.0
    assert [(s.shard, s.status, s.lag_seconds) for s in verdict.shards] == [
        (0, OK, 0.0),
        (1, STOP, 300.0),
        (2, STOP, 500.0),
        (3, OK, None),
    ]
    assert verdict.reason == "shard 2: no commit for 10m > 1m, lag 8m20s (+1 more shards not OK)"


@pytest.mark.parametrize(
    ("steps", "reason", "max_lag"),
    [
        ((up(1), up(2)), "all shards caught up", 0.0),
        ((never(), never(0)), "shard 0: never committed, nothing to read", None),
        (
            (up(1), behind(42, 2), behind(7, 3)),
            "shard 1: lag 42s within allowed 1m in the last 1 sweep",
            42.0,
        ),
    ],
)
def test_ok_group_reasons(steps, reason, max_lag):
    verdict = HealthEvaluator().observe(observation(0, *steps))
    assert (verdict.status, verdict.reason, verdict.max_lag_seconds) == (OK, reason, max_lag)


def test_group_without_shards():
    verdict = HealthEvaluator().observe(GroupLag(TARGET, (), T0))
    assert (verdict.status, verdict.shards, verdict.reason) == (OK, (), "no shards")


def test_health_codes_are_the_metric_codes():
    assert [(h.name, int(h)) for h in Health] == [
        ("OK", 0),
        ("WARN", 1),
        ("STALL", 2),
        ("STOP", 3),
        ("REWIND", 4),
        ("ERR", 5),
    ]


# --- helpers: cursors and durations ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("MTUyNDE1NTM3OTM3MzkwODQ5Ng==", 1524155379373908496),
        (cursor(0), 0),
        (cursor(2**64 - 1), 2**64 - 1),
        (base64.b64encode(b"-5").decode(), None),
        (base64.b64encode(b" 5").decode(), None),
        ("", None),
        ("not base64!", None),
        (base64.b64encode(b"12a").decode(), None),
        (base64.b64encode(b"\xff\xfe").decode(), None),
        (base64.b64encode("١٢".encode()).decode(), None),  # Arabic-Indic digits are not SLS's
        (cursor(10**20), None),  # 21 digits: more than any 64-bit integer has
        (cursor(10**25), None),
        (base64.b64encode(b"-").decode(), None),
    ],
)
def test_decode_cursor(text, value):
    assert decode_cursor(text) == value


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_decode_cursor_round_trips(n):
    assert decode_cursor(cursor(n)) == n


@given(st.text(max_size=80))
def test_decode_cursor_never_raises(text):
    value = decode_cursor(text)
    assert value is None or int(base64.b64decode(text)) == value


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-5, "0s"),
        (45.4, "45s"),
        (60, "1m"),
        (192, "3m12s"),
        (3600, "1h"),
        (3725, "1h2m"),
        (183_845, "2d3h"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


# --- properties --------------------------------------------------------------------------------

_steps = st.one_of(
    st.builds(behind, st.floats(0, 10_000), st.integers(1, 50), st.floats(0, 10_000), expired=st.booleans()),
    st.builds(up, st.integers(1, 50), st.floats(0, 100_000)),
    st.builds(never, st.none() | st.floats(-1000, 1000)),
    st.builds(opaque, st.floats(0, 10_000), st.floats(0, 10_000)),
)


@given(st.lists(_steps, max_size=12), st.integers(1, 50), st.integers(1, 6))
def test_a_caught_up_shard_is_always_ok(history, cur, window):
    evaluator = HealthEvaluator(window=window)
    run(evaluator, [(30 * i, step) for i, step in enumerate(history)])
    verdict = evaluator.observe(observation(30 * len(history), up(cur)))
    assert verdict.status is OK
    assert verdict.shards[0].reason == "caught up"


@given(st.lists(st.lists(_steps, min_size=1, max_size=4), min_size=1, max_size=6), st.integers(1, 4))
def test_group_status_is_the_worst_shard(sweeps, window):
    evaluator = HealthEvaluator(window=window)
    for i, shards in enumerate(sweeps):
        verdict = evaluator.observe(observation(30 * i, *shards))
        assert verdict.status == max(s.status for s in verdict.shards)
        lags = [s.lag_seconds for s in verdict.shards if s.lag_seconds is not None]
        assert verdict.max_lag_seconds == (max(lags) if lags else None)
        assert all(s.reason for s in verdict.shards)
        assert verdict.reason


@given(st.lists(st.lists(_steps, min_size=1, max_size=3), min_size=1, max_size=15), st.integers(1, 5))
def test_only_the_last_window_observations_matter(sweeps, window):
    # What the evaluator keeps is bounded by the window: a fresh evaluator fed only the last
    # `window` sweeps reaches the same verdict as one that saw them all.
    everything = HealthEvaluator(window=window)
    verdicts = [everything.observe(observation(30 * i, *shards)) for i, shards in enumerate(sweeps)]
    recent = HealthEvaluator(window=window)
    start = max(0, len(sweeps) - window)
    tail = [recent.observe(observation(30 * i, *sweeps[i])) for i in range(start, len(sweeps))]
    assert tail[-1] == verdicts[-1]
