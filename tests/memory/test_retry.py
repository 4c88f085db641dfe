"""Retry policy: the tenacity loop from ``RetryPolicy.retrying`` around a scripted coroutine.

Sleep, clock and randomness are injected, so every schedule is asserted exactly and nothing
waits for real.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import attrs
import pytest
import tenacity
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import RetryCallState

from aiosls import (
    DEFAULT_RETRY,
    NO_RETRY,
    UPDATE_CHECKPOINT_RETRY,
    AlreadyExistsError,
    AuthError,
    Backoff,
    ClientError,
    ClockSkewError,
    ConnectError,
    NotFoundError,
    ReadTimeout,
    ResponseParseError,
    RetryPolicy,
    SlsError,
    ThrottlingError,
    TransientError,
    TransportError,
    ValidationError,
)
from aiosls.retry import annotate_attempts, is_retryable

SECRET = "s3cret/0001+abcdEFGH"
DESCRIBE = "GetCheckPoint my-project/app-log"


class MaxRandom(random.Random):
    """Always draws the top of the range, so each sleep equals its ceiling."""

    def random(self) -> float:
        return 1.0


class Time:
    def __init__(self) -> None:
        self.mono = 500.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.mono += seconds


def throttled(rid: str = "RID-T") -> ThrottlingError:
    return ThrottlingError(
        f"quota exceeded for key {SECRET}", error_code="ReadQuotaExceed", status=403, request_id=rid
    )


def busy(rid: str = "RID-B") -> TransientError:
    return TransientError("server busy", error_code="ServerBusy", status=503, request_id=rid)


async def run(
    policy: RetryPolicy,
    script: Sequence[Any],
    *,
    idempotent: bool = True,
    rng: random.Random | None = None,
    time: Time | None = None,
    started: float | None = None,
    attempt_cost: float = 0.0,
) -> tuple[Any, int, Time]:
    """Run ``script`` (exceptions raised in turn, anything else returned) under the policy."""
    time = time or Time()
    retrying = policy.retrying(
        idempotent=idempotent,
        sleep=time.sleep,
        clock=time.clock,
        rng=rng or random.Random(42),
        started=started,
        describe=lambda: DESCRIBE,
    )
    calls = 0

    async def attempt_once() -> Any:
        nonlocal calls
        item = script[calls]
        calls += 1
        time.mono += attempt_cost
        if isinstance(item, BaseException):
            raise item
        return item

    async for attempt in retrying:
        with attempt:
            result = await attempt_once()
        if attempt.retry_state.outcome is not None and not attempt.retry_state.outcome.failed:
            return result, calls, time
    raise AssertionError("unreachable")  # pragma: no cover


async def run_failing(
    policy: RetryPolicy, script: Sequence[Any], **kwargs: Any
) -> tuple[BaseException, int, Time]:
    time = kwargs.pop("time", None) or Time()
    with pytest.raises(BaseException) as info:  # noqa: PT011 - the caller checks which one
        await run(policy, script, time=time, **kwargs)
    calls = next((i + 1 for i, item in enumerate(script) if item is info.value), -1)
    return info.value, calls, time


# --- schedules ------------------------------------------------------------------------------------


async def test_exact_delays_for_a_seeded_rng() -> None:
    script = [throttled(), busy(), ConnectError("refused"), "ok"]
    result, calls, time = await run(DEFAULT_RETRY, script, rng=random.Random(42))
    assert (result, calls) == ("ok", 4)
    # random.Random(42).random() draws 0.6394267984578837, 0.025010755222666936, 0.27502931836911926;
    # ceilings: throttling 1.0 (retry 1), transient 0.2*2 (retry 2), transient 0.2*4 (retry 3).
    assert time.sleeps == pytest.approx(
        [1.0 * 0.6394267984578837, 0.4 * 0.025010755222666936, 0.8 * 0.27502931836911926], abs=1e-12
    )


async def test_throttling_and_transient_curves() -> None:
    policy = RetryPolicy(max_attempts=8, deadline=None)
    _, _, slow = await run_failing(policy, [throttled() for _ in range(8)], rng=MaxRandom())
    assert slow.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    _, _, fast = await run_failing(policy, [busy() for _ in range(8)], rng=MaxRandom())
    assert fast.sleeps == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])
    # The curve follows the error just seen, the exponent the attempt number.
    _, _, mixed = await run_failing(policy, [busy(), throttled(), busy(), throttled()] * 2, rng=MaxRandom())
    assert mixed.sleeps == pytest.approx([0.2, 2.0, 0.8, 8.0, 3.2, 20.0, 5.0])


async def test_stops_after_max_attempts_and_reraises_our_error() -> None:
    script = [busy("R1"), busy("R2"), busy("R3"), busy("R4"), "never"]
    err, calls, time = await run_failing(RetryPolicy(max_attempts=3, deadline=None), script)
    assert calls == 3
    assert len(time.sleeps) == 2
    assert type(err) is TransientError
    assert not isinstance(err, tenacity.RetryError)
    assert err.request_id == "R3"  # the last attempt's error


async def test_stops_before_a_sleep_that_would_cross_the_deadline() -> None:
    policy = RetryPolicy(max_attempts=100, deadline=10.0, transient=Backoff(initial=3.0, cap=100.0))
    # Sleeps of 3 then 6 fit (t=3, t=9); the next (12) would end at 21 > 10: stop without sleeping.
    err, calls, time = await run_failing(policy, [busy() for _ in range(10)], rng=MaxRandom())
    assert time.sleeps == [3.0, 6.0]
    assert calls == 3
    assert time.mono == 509.0  # never slept past the deadline
    assert isinstance(err, TransientError)


async def test_deadline_counts_time_spent_in_attempts_and_before_the_loop() -> None:
    policy = RetryPolicy(max_attempts=100, deadline=10.0, transient=Backoff(initial=1.0, cap=1.0))
    # Each attempt takes 4 s: t=4 (+1 sleep) t=9 -> 9 + 1 >= 10: stop after the second attempt.
    _, calls, time = await run_failing(policy, [busy() for _ in range(10)], rng=MaxRandom(), attempt_cost=4.0)
    assert (calls, time.sleeps) == (2, [1.0])
    # ``started`` back-dates the budget (e.g. the service's fast first attempt).
    early = Time()
    _, calls, _ = await run_failing(
        policy, [busy() for _ in range(10)], rng=MaxRandom(), time=early, started=early.mono - 9.5
    )
    assert calls == 1
    assert early.sleeps == []


async def test_no_deadline_means_only_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=5, deadline=None, throttling=Backoff(initial=1000.0, cap=1000.0))
    _, calls, time = await run_failing(policy, [throttled() for _ in range(5)], rng=MaxRandom())
    assert (calls, time.sleeps) == (5, [1000.0] * 4)


async def test_non_retryable_errors_are_raised_at_once() -> None:
    for err in (NotFoundError("no cg", error_code="ConsumerGroupNotExist"), ValueError("bug")):
        raised, calls, time = await run_failing(DEFAULT_RETRY, [err, "ok"])
        assert raised is err
        assert (calls, time.sleeps) == (1, [])


async def test_non_idempotent_operations_retry_only_what_never_landed() -> None:
    for err in (ReadTimeout("read timed out"), TransportError("reset"), busy()):
        raised, calls, _ = await run_failing(DEFAULT_RETRY, [err, "ok"], idempotent=False)
        assert (raised, calls) == (err, 1)
    result, calls, _ = await run(
        DEFAULT_RETRY, [ConnectError("refused"), throttled(), "ok"], idempotent=False
    )
    assert (result, calls) == ("ok", 3)


async def test_cancellation_is_never_retried() -> None:
    cancelled = asyncio.CancelledError()
    raised, calls, time = await run_failing(DEFAULT_RETRY, [cancelled, "ok"])
    assert raised is cancelled
    assert (calls, time.sleeps) == (1, [])


async def test_no_retry_makes_one_attempt() -> None:
    _, calls, time = await run_failing(NO_RETRY, [throttled(), "ok"])
    assert (calls, time.sleeps) == (1, [])


async def test_update_checkpoint_policy_keeps_retries_prompt() -> None:
    assert UPDATE_CHECKPOINT_RETRY.max_attempts == 3
    assert UPDATE_CHECKPOINT_RETRY.deadline == 2.0
    _, calls, time = await run_failing(
        UPDATE_CHECKPOINT_RETRY, [throttled() for _ in range(5)], rng=MaxRandom()
    )
    assert calls == 3
    assert time.sleeps == [0.2, 0.4]
    assert sum(time.sleeps) < 2.0


def test_policy_validation_and_defaults() -> None:
    assert RetryPolicy() == DEFAULT_RETRY
    assert DEFAULT_RETRY.max_attempts > 1
    assert DEFAULT_RETRY.deadline == 60.0
    assert DEFAULT_RETRY.throttling == Backoff(initial=1.0, cap=20.0)
    assert DEFAULT_RETRY.transient == Backoff(initial=0.2, cap=5.0)
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=0, cap=1)
    with pytest.raises(ValueError, match="cap"):
        Backoff(initial=1, cap=-1)
    assert attrs.evolve(DEFAULT_RETRY, max_attempts=2).max_attempts == 2
    assert DEFAULT_RETRY.backoff_for(throttled()) is DEFAULT_RETRY.throttling
    assert DEFAULT_RETRY.backoff_for(busy()) is DEFAULT_RETRY.transient
    assert DEFAULT_RETRY.backoff_for(None) is DEFAULT_RETRY.transient


# --- jitter ---------------------------------------------------------------------------------------


def _wait(policy: RetryPolicy, exc: BaseException, attempt_number: int, seed: int) -> float:
    retrying = policy.retrying(sleep=Time().sleep, rng=random.Random(seed))
    state = RetryCallState(retrying, fn=None, args=(), kwargs={})
    state.attempt_number = attempt_number
    state.set_exception((type(exc), exc, None))
    return float(retrying.wait(state))


_seconds = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False)


@settings(max_examples=300)
@given(
    initial=_seconds,
    cap=_seconds,
    n=st.integers(1, 5000),
    seed=st.integers(0, 2**32),
    throttle=st.booleans(),
)
def test_jitter_is_within_zero_and_the_ceiling(
    initial: float, cap: float, n: int, seed: int, throttle: bool
) -> None:
    curve = Backoff(initial=initial, cap=cap)
    policy = RetryPolicy(throttling=curve) if throttle else RetryPolicy(transient=curve)
    exc = throttled() if throttle else busy()
    # The documented bound, computed exactly with integers (no float overflow).
    grown = Fraction(initial) * 2 ** (n - 1)
    ceiling = cap if grown >= Fraction(cap) else float(grown)
    assert curve.ceiling(n) == pytest.approx(ceiling)
    delay = _wait(policy, exc, n, seed)
    assert 0.0 <= delay <= curve.ceiling(n) <= cap


@given(n=st.integers(1, 10_000))
def test_ceiling_is_monotonic_and_capped(n: int) -> None:
    curve = Backoff(initial=0.5, cap=30.0)
    assert curve.ceiling(n) <= curve.ceiling(n + 1) <= 30.0


# --- predicate ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "idempotent_ok", "non_idempotent_ok"),
    [
        (ThrottlingError("q"), True, True),
        (ConnectError("refused"), True, True),
        (ReadTimeout("slow"), True, False),
        (TransportError("reset"), True, False),
        (TransientError("503"), True, False),
        (ClientError("400"), False, False),
        (AuthError("401"), False, False),
        (NotFoundError("404"), False, False),
        (AlreadyExistsError("exists"), False, False),
        (ClockSkewError("skew"), False, False),
        (ValidationError("bad"), False, False),
        (ResponseParseError("bad body"), False, False),
        (SlsError("base"), False, False),
        (ValueError("bug"), False, False),
        (TimeoutError("builtin"), False, False),
        (asyncio.CancelledError(), False, False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_is_retryable_truth_table(exc: BaseException, idempotent_ok: bool, non_idempotent_ok: bool) -> None:
    assert is_retryable(exc) is idempotent_ok
    assert is_retryable(exc, idempotent=True) is idempotent_ok
    assert is_retryable(exc, idempotent=False) is non_idempotent_ok


# --- logging --------------------------------------------------------------------------------------


async def test_one_debug_line_per_retry_with_operation_code_and_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = [throttled("RID-1"), ConnectError(f"refused ({SECRET})"), busy("RID-3"), "ok"]
    with caplog.at_level(logging.DEBUG, logger="aiosls.retry"):
        _, _, time = await run(DEFAULT_RETRY, script)
    records = [r for r in caplog.records if r.name == "aiosls.retry"]
    assert len(records) == len(time.sleeps) == 3
    assert all(r.levelno == logging.DEBUG for r in records)  # retries are quiet by default
    lines = [r.getMessage() for r in records]
    assert lines[0] == (
        f"retrying {DESCRIBE} after ReadQuotaExceed (request RID-1): attempt 1 failed, "
        f"sleeping {time.sleeps[0]:.3f}s"
    )
    assert "after ConnectError (request -): attempt 2 failed" in lines[1]
    assert "after ServerBusy (request RID-3): attempt 3 failed" in lines[2]
    assert SECRET not in caplog.text


async def test_retries_log_nothing_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aiosls.retry"):
        await run_failing(RetryPolicy(max_attempts=3, deadline=None), [busy(), busy(), busy()])
    assert [r for r in caplog.records if r.name == "aiosls.retry"] == []


async def test_server_text_in_a_retry_line_is_escaped_and_capped(caplog: pytest.LogCaptureFixture) -> None:
    hostile = TransientError("m", error_code="ServerBusy\x1b[31m\nFAKE: LOG LINE" + "x" * 100_000, status=503)
    with caplog.at_level(logging.DEBUG, logger="aiosls.retry"):
        await run(DEFAULT_RETRY, [hostile, "ok"])
    (line,) = [r.getMessage() for r in caplog.records if r.name == "aiosls.retry"]
    assert "\n" not in line
    assert "\x1b" not in line
    assert "FAKE: LOG LINE" in line  # escaped onto the same line, not a forged one
    assert len(line) < 600


def test_annotate_attempts() -> None:
    err = busy("RID-9")
    assert annotate_attempts(err, 4) is err
    assert err.attempts == 4
    assert str(err).endswith("server busy after 4 attempts")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("30", 30.0),
        (" 2 ", 2.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),  # an HTTP-date: our own backoff decides
        ("-5", None),
        ("1.5", None),
        ("99999999999", None),
        ("86400", 3600.0),  # capped; the retry deadline decides anyway
    ],
)
def test_retry_after_seconds(header: str | None, seconds: float | None) -> None:
    from aiosls.retry import retry_after_seconds

    assert retry_after_seconds(header) == seconds
