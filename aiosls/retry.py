"""Retry policy: which errors are retried, how long to wait, when to give up (tenacity).

Two backoff curves, both exponential with full jitter (``uniform(0, min(cap, initial * 2**n))``):
throttling gets a long one (many clients share one project's quota, so they must spread out),
transient failures a short one. A call stops after ``max_attempts`` or when the next sleep
would cross ``deadline``, whichever comes first. Sleep, clock and randomness are injectable, so
tests assert exact schedules without waiting.

What is retried (the error class decides; see :mod:`aiosls.errors`):

- :class:`ThrottlingError` and :class:`ConnectError`: always (nothing was applied);
- other :class:`TransientError` (5xx, resets, read timeouts): only for idempotent operations,
  because the request may have landed. GetCheckPoint and every read are idempotent; so is
  UpdateCheckPoint (same shard, same value), whose policy keeps retries prompt instead
  (:data:`UPDATE_CHECKPOINT_RETRY`) so a late replay cannot overwrite a newer checkpoint;
- never: client errors (4xx), auth errors, parse errors.

A refused or unreachable endpoint gets ``connect_attempts`` attempts only (a restarting server
deserves a retry or two; a name that does not resolve does not deserve twelve). A server's
``Retry-After`` (seconds) is a floor for the next sleep; the deadline still applies. Each retry
logs one DEBUG line on ``aiosls.retry``; giving up logs one WARNING (see :mod:`aiosls._pipeline`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import attrs
from tenacity import AsyncRetrying, RetryCallState
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from ._text import safe_text
from .errors import ConnectError, SlsError, ThrottlingError, TransientError

__all__ = [
    "DEFAULT_RETRY",
    "NO_RETRY",
    "UPDATE_CHECKPOINT_RETRY",
    "Backoff",
    "RetryPolicy",
    "is_retryable",
    "retry_after_seconds",
]

logger = logging.getLogger("aiosls.retry")


@attrs.frozen
class Backoff:
    """Exponential backoff with full jitter: attempt n sleeps ``uniform(0, min(cap, initial*2**(n-1)))``."""

    initial: float = attrs.field(validator=attrs.validators.gt(0))
    cap: float = attrs.field(validator=attrs.validators.gt(0))

    def ceiling(self, retry_number: int) -> float:
        """The upper bound of the jittered sleep before retry number ``retry_number`` (1-based)."""
        # The exponent is clamped: 2**1024 does not fit a float (OverflowError with a float
        # ``initial``), and any ceiling past 2**1023 * initial is ``cap`` anyway (or inf).
        return float(min(self.cap, self.initial * 2.0 ** min(retry_number - 1, 1023)))


def is_retryable(exc: BaseException, *, idempotent: bool = True) -> bool:
    """Whether ``exc`` is worth another attempt of an (idempotent or not) operation."""
    if isinstance(exc, ThrottlingError | ConnectError):
        return True
    return idempotent and isinstance(exc, TransientError)


@attrs.frozen
class RetryPolicy:
    """How a call retries. Frozen; derive variants with :func:`attrs.evolve`.

    :param max_attempts: attempts in all, the first included (1 disables retries).
    :param deadline: seconds from the first attempt after which no new attempt starts
        (``None``: only ``max_attempts`` limits).
    :param throttling: backoff after throttling (403 quota codes, 429).
    :param transient: backoff after 5xx, resets and timeouts.
    :param connect_attempts: attempts at most, within ``max_attempts``, when the connection
        itself fails (refused, unreachable, a name that does not resolve).
    """

    max_attempts: int = attrs.field(default=12, validator=attrs.validators.ge(1))
    deadline: float | None = 60.0
    throttling: Backoff = Backoff(initial=1.0, cap=20.0)
    transient: Backoff = Backoff(initial=0.2, cap=5.0)
    connect_attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1), kw_only=True)

    def backoff_for(self, exc: BaseException | None) -> Backoff:
        """The curve that applies after ``exc``."""
        return self.throttling if isinstance(exc, ThrottlingError) else self.transient

    def retrying(
        self,
        *,
        idempotent: bool = True,
        sleep: Callable[[float], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        started: float | None = None,
        describe: Callable[[], str] = lambda: "",
    ) -> AsyncRetrying:
        """A fresh ``AsyncRetrying`` for one call (tenacity keeps per-call state in it).

        ``started`` is the clock reading at the first attempt (default: now); ``describe``
        returns the call's context (operation, project/logstore) for the retry log line.
        """
        return AsyncRetrying(
            sleep=sleep,
            retry=_RetryIf(idempotent, self.connect_attempts),
            wait=_JitteredWait(self, rng or random.Random()),
            stop=_Stop(self, clock, clock() if started is None else started),
            before_sleep=_log_retry(describe),
            reraise=True,
        )


class _RetryIf(retry_base):
    """Retryable errors, with connect failures counted against their own budget (per call)."""

    def __init__(self, idempotent: bool, connect_attempts: int) -> None:
        self.idempotent = idempotent
        self.connect_attempts = connect_attempts
        self.connect_failures = 0

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        if exc is None or not is_retryable(exc, idempotent=self.idempotent):
            return False
        if isinstance(exc, ConnectError):
            self.connect_failures += 1
            return self.connect_failures < self.connect_attempts
        return True


class _JitteredWait(wait_base):
    """Full jitter on the curve of the error just seen."""

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        ceiling = self.policy.backoff_for(exc).ceiling(retry_state.attempt_number)
        delay = self.rng.uniform(0.0, ceiling)
        # The server said when to come back: never sooner (the stop rule keeps the deadline).
        after = getattr(exc, "retry_after", None)
        return delay if after is None else max(delay, after)


class _Stop(stop_base):
    """Stop at ``max_attempts``, or when the upcoming sleep would end past the deadline."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float], started: float) -> None:
        self.policy = policy
        self.clock = clock
        self.started = started

    def __call__(self, retry_state: RetryCallState) -> bool:
        if retry_state.attempt_number >= self.policy.max_attempts:
            return True
        deadline = self.policy.deadline
        if deadline is None:
            return False
        return self.clock() - self.started + retry_state.upcoming_sleep >= deadline


def _log_retry(describe: Callable[[], str]) -> Callable[[RetryCallState], None]:
    def before_sleep(retry_state: RetryCallState) -> None:
        exc: Any = retry_state.outcome.exception() if retry_state.outcome else None
        status = getattr(exc, "status", None)
        code = getattr(exc, "error_code", None) or (f"HTTP {status}" if status else type(exc).__name__)
        request_id = getattr(exc, "request_id", None) or "-"
        logger.debug(
            "retrying %s after %s (request %s): attempt %d failed, sleeping %.3fs",
            describe(),
            safe_text(code, 100),
            safe_text(request_id, 64),
            retry_state.attempt_number,
            retry_state.upcoming_sleep,
        )

    return before_sleep


#: The default: up to 12 attempts within 60 s; throttling 1 s..20 s, transient 0.2 s..5 s, full
#: jitter. Twelve, because the deadline is the real bound: even at a 35% failure rate per attempt
#: a call then fails only with probability 0.35**12 (3e-6), yet a dead service gives up in 60 s.
DEFAULT_RETRY: Final = RetryPolicy()

#: One attempt, no retries.
NO_RETRY: Final = RetryPolicy(max_attempts=1, deadline=None)

#: For UpdateCheckPoint: a few prompt retries only. A checkpoint retried long after it was
#: sent could overwrite a newer one committed meanwhile (last writer wins), so the whole retry
#: budget is 2 seconds and the longest sleep half a second.
UPDATE_CHECKPOINT_RETRY: Final = RetryPolicy(
    max_attempts=3,
    deadline=2.0,
    throttling=Backoff(initial=0.2, cap=0.5),
    transient=Backoff(initial=0.1, cap=0.5),
)


#: The longest ``Retry-After`` honoured; a larger value is read as this (the deadline decides).
_MAX_RETRY_AFTER: Final = 3600.0


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header's delay in seconds (the delta-seconds form), or None."""
    if not value:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None  # an HTTP-date, or garbage: fall back to our own backoff
    return min(float(text), _MAX_RETRY_AFTER)


def annotate_attempts(exc: SlsError, attempts: int) -> SlsError:
    """Record on ``exc`` how many attempts were made (shown by ``str(exc)``)."""
    exc.attempts = attempts
    return exc
