"""The one call path: credentials -> build -> sign -> send -> parse, with retries.

Every SLS call of the service, the fan-out and the lag sweeps goes through :meth:`Pipeline.call`.
The first attempt runs directly; only a retryable failure enters the tenacity loop (see
:mod:`aiosls.retry`), so the happy path pays nothing for retry machinery. Every attempt is
rebuilt and re-signed with a fresh date. A ``RequestTimeExpired`` answer teaches the pipeline
the server's clock and an expired STS token refreshes the credentials, each once per attempt.
The whole call, backoff sleeps included, is bounded by a total timeout (by default the retry
deadline plus one connect timeout), so no server can hold a call forever.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final, TypeVar

from . import _sansio
from ._http import HttpResponse
from ._sansio import Operation
from ._text import safe_text
from .credentials import Credentials, CredentialsProvider
from .endpoint import Endpoint
from .errors import (
    AuthError,
    ClientError,
    ClockSkewError,
    ReadTimeout,
    ServiceClosedError,
    SlsError,
    ThrottlingError,
    TransportError,
)
from .retry import RetryPolicy, annotate_attempts, is_retryable, retry_after_seconds
from .signing import SignatureVersion
from .timeouts import Timeouts
from .transport import Transport

__all__ = ["Limiter", "Observer", "Pipeline", "where"]

logger = logging.getLogger("aiosls")
_retry_logger = logging.getLogger("aiosls.retry")

_T = TypeVar("_T")
#: What the fan-out holds around each attempt's send: ``limiter(project)`` is an async context.
Limiter = Callable[[str], AbstractAsyncContextManager[object]]
#: Hears each attempt's outcome: ``observe(project, error)``, error None on success.
Observer = Callable[[str, SlsError | None], None]
_MAX_CLOCK_OFFSET: Final = timedelta(days=1)
#: How often a successful answer's Date is compared with the local clock, and by how much the
#: two must differ (Date has whole seconds) before the offset is adopted.
_CLOCK_SAMPLE_INTERVAL: Final = 60.0
_CLOCK_RESOLUTION: Final = timedelta(seconds=2)
_TOKEN_EXPIRED_CODES: Final = frozenset({"SecurityTokenExpired", "SecurityToken.Expired"})


class _NoLimit:
    """The limiter of a call outside any fan-out: nothing to wait for."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_LIMIT: Final = _NoLimit()


def where(op: Operation) -> str:
    """``project/logstore`` (or ``project``) of an operation, for log lines and messages."""
    return f"{op.project}/{op.logstore}" if op.logstore else op.project


def _outcome(error: SlsError | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, ThrottlingError):
        return "throttled"
    if isinstance(error, TransportError):
        return "transport_error"
    if isinstance(error, ClientError):
        return "client_error"
    return "server_error"


class _CallState:
    """What one call has seen so far: attempts made and the last SLS error."""

    __slots__ = ("attempts", "last_error")

    def __init__(self) -> None:
        self.attempts = 0
        self.last_error: SlsError | None = None


class _TotalTimer:
    """What ``asyncio.timeout(total)`` does for one call, with one loop timer and no context
    manager: when it fires it cancels the calling task; the call then turns that cancellation
    (and only that one: an outer ``cancel()`` still propagates) into its timeout error."""

    __slots__ = ("_cancelling", "_fired", "_handle", "_task")

    def __init__(self, total: float) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("an SLS call must run inside an asyncio task")
        self._task = task
        self._cancelling = task.cancelling()
        self._fired = False
        loop = task.get_loop()
        self._handle = loop.call_at(loop.time() + total, self._fire)

    def _fire(self) -> None:
        self._fired = True
        self._task.cancel()

    def expired(self) -> bool:
        """Whether the CancelledError being handled is ours (asyncio.Timeout's rule); once."""
        if not self._fired:
            return False
        self._fired = False
        return self._task.uncancel() <= self._cancelling

    def disarm(self) -> None:
        """Cancel the timer; if it fired but the call ended otherwise, withdraw our cancel()."""
        self._handle.cancel()
        if self._fired:
            self._fired = False
            self._task.uncancel()


class Pipeline:
    """Signs, sends, parses and retries SLS operations for one endpoint and set of credentials.

    Not a public class: :class:`~aiosls.CheckpointService` builds one and exposes its counters.
    ``clock`` is the wall clock for request dates; ``sleep``, ``monotonic`` and ``rng`` drive
    backoff. All are injectable so tests run retry schedules without waiting.
    """

    def __init__(
        self,
        *,
        endpoint: Endpoint,
        provider: CredentialsProvider,
        static_credentials: Credentials | None,
        signature_version: SignatureVersion,
        region: str | None,
        transport: Transport,
        retry: RetryPolicy,
        timeouts: Timeouts,
        user_agent: str,
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]],
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.provider = provider
        # Static keys skip the provider's await on every request (a fan-out makes thousands).
        self.static_credentials = static_credentials
        self.signature_version: SignatureVersion = signature_version
        self.region = region
        self.transport = transport
        self.retry = retry
        self.timeouts = timeouts
        self.user_agent = user_agent
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic
        self.rng = rng or random.Random()
        self.clock_offset = timedelta(0)
        self._next_clock_sample = 0.0
        self.closed = False
        #: Every HTTP request sent, every attempt counted.
        self.requests_sent = 0
        #: Attempts after the first of a call (retries absorbed or not).
        self.retries = 0
        #: Requests by (operation, outcome): ok, throttled, client_error, server_error, transport_error.
        self.request_counts: Counter[tuple[str, str]] = Counter()

    def now(self) -> datetime:
        """The server's time as best known: the local clock plus the learned offset."""
        return self.clock() + self.clock_offset

    def total_timeout(self, policy: RetryPolicy, timeout: float | None) -> float | None:
        """The bound of one whole call: ``timeout``, else ``Timeouts.total``, else the retry
        deadline plus one connect timeout (a call's last attempt may start just before it)."""
        if timeout is not None:
            return timeout
        if self.timeouts.total is not None:
            return self.timeouts.total
        if policy.deadline is None:
            return None
        return policy.deadline + self.timeouts.connect

    def call(
        self,
        op: Operation,
        parse: Callable[[HttpResponse], _T],
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        limiter: Limiter | None = None,
        observe: Observer | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> Awaitable[_T]:
        """Run ``op`` and parse its answer, with retries, within the call's total timeout.

        ``limiter`` bounds each attempt's send (the fan-out's in-flight slots and project
        gates); ``observe(project, error_or_None)`` hears every attempt's outcome (the fan-out's
        backpressure); ``sleep`` replaces the backoff sleep. A plain function returning the
        awaitable, so a closed service fails at once.

        :raises ServiceClosedError: the service was closed.
        :raises SlsError: the typed error of the last attempt once the policy gives up.
        """
        if self.closed:
            raise ServiceClosedError("CheckpointService is closed; create a new one")
        policy = retry or self.retry
        total = self.total_timeout(policy, timeout)
        return self._run(op, parse, policy, limiter, observe, sleep or self.sleep, total)

    async def _run(
        self,
        op: Operation,
        parse: Callable[[HttpResponse], _T],
        policy: RetryPolicy,
        limiter: Limiter | None,
        observe: Observer | None,
        sleep: Callable[[float], Awaitable[None]],
        total: float | None,
    ) -> _T:
        """The fast first attempt, then (only after a retryable failure) the tenacity loop, the
        whole bounded by ``total`` seconds, backoff sleeps included.

        One coroutine and one loop timer per call (:class:`_TotalTimer`), not
        ``asyncio.timeout``'s context manager around a second coroutine: the same guarantee,
        measured ~10 us cheaper per call, which a fan-out pays thousands of times a second.
        """
        state = _CallState()
        timer = None if total is None else _TotalTimer(total)
        try:
            started = self.monotonic()
            state.attempts = 1
            try:
                return parse(await self._attempt(op, limiter, observe))
            except SlsError as exc:
                state.last_error = exc
                if policy.max_attempts <= 1 or not is_retryable(exc, idempotent=op.idempotent):
                    raise
                first = exc
            return await self._call_retrying(
                op, parse, policy, limiter, observe, sleep, state, started, first
            )
        except asyncio.CancelledError:
            if timer is None or not timer.expired():
                raise  # cancelled by someone else: propagates untouched
            assert total is not None
            raise self._timed_out(op, total, state) from TimeoutError(f"total timeout {total:g}s")
        finally:
            if timer is not None:
                timer.disarm()

    def _timed_out(self, op: Operation, total: float, state: _CallState) -> ReadTimeout:
        last = state.last_error
        detail = f"; last error {last.error_code or type(last).__name__}" if last is not None else ""
        error = ReadTimeout(
            f"{op.name} {where(op)}: no result within the total timeout of {total:g}s{detail}",
            error_code=last.error_code if last is not None else None,
            status=last.status if last is not None else None,
            request_id=last.request_id if last is not None else None,
        )
        annotate_attempts(error, max(state.attempts, 1))
        return error

    async def _call_retrying(
        self,
        op: Operation,
        parse: Callable[[HttpResponse], _T],
        policy: RetryPolicy,
        limiter: Limiter | None,
        observe: Observer | None,
        sleep: Callable[[float], Awaitable[None]],
        state: _CallState,
        started: float,
        first: SlsError,
    ) -> _T:
        """The slow path, after the first attempt failed with ``first`` (retryable)."""
        # The first failure is replayed as tenacity's attempt 1, so the schedule, the log line
        # and the stop rules are exactly tenacity's from here on.
        pending: SlsError | None = first
        retrying = policy.retrying(
            idempotent=op.idempotent,
            sleep=sleep,
            clock=self.monotonic,
            rng=self.rng,
            started=started,
            describe=lambda: f"{op.name} {where(op)}",
        )
        attempts = 0
        try:
            async for attempt in retrying:
                attempts += 1
                state.attempts = attempts
                with attempt:
                    if pending is not None:
                        failure, pending = pending, None
                        raise failure
                    self.retries += 1
                    try:
                        return parse(await self._attempt(op, limiter, observe))
                    except SlsError as exc:
                        state.last_error = exc
                        raise
        except SlsError as exc:
            annotate_attempts(exc, attempts)
            _retry_logger.warning(
                "giving up on %s %s after %d attempts: %s",
                op.name,
                where(op),
                attempts,
                safe_text(exc.error_code or type(exc).__name__, 100),
            )
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _attempt(
        self, op: Operation, limiter: Limiter | None, observe: Observer | None
    ) -> HttpResponse:
        """One attempt, plus at most one immediate re-sign for clock skew or an expired token."""
        fixed_skew = refreshed = False
        while True:
            # Signed inside the in-flight slot: a long wait for one must not age the signature.
            async with limiter(op.project) if limiter is not None else _NO_LIMIT:
                credentials = self.static_credentials or await self._credentials()
                request = _sansio.build_request(
                    op,
                    endpoint=self.endpoint,
                    credentials=credentials,
                    now=self.clock() + self.clock_offset,
                    signature_version=self.signature_version,
                    region=self.region,
                    user_agent=self.user_agent,
                )
                self.requests_sent += 1
                debug = logger.isEnabledFor(logging.DEBUG)
                sent_at = self.monotonic() if debug else 0.0
                try:
                    response = await self.transport.send(request, timeout=self.timeouts.read)
                except SlsError as exc:
                    self.request_counts[op.name, _outcome(exc)] += 1
                    if observe is not None:
                        observe(op.project, exc)
                    if debug:
                        self._log_request(op, None, None, sent_at, exc)
                    raise
            if response.status == 200:
                if self.monotonic() >= self._next_clock_sample:
                    self._sample_clock(response)
                self.request_counts[op.name, "ok"] += 1
                if observe is not None:
                    observe(op.project, None)
                if debug:
                    self._log_request(op, 200, response.request_id, sent_at, None)
                return response
            error = _sansio.error_from_response(response, op.name)
            after = retry_after_seconds(response.headers.get("retry-after"))
            if after is not None:
                error.retry_after = after
            self.request_counts[op.name, _outcome(error)] += 1
            if observe is not None:
                observe(op.project, error)
            if debug:
                self._log_request(op, response.status, response.request_id, sent_at, error)
            if isinstance(error, ClockSkewError) and not fixed_skew and self._learn_clock_offset(response):
                fixed_skew = True
                continue
            if isinstance(error, AuthError) and not refreshed and _token_expired(error, credentials):
                invalidate = getattr(self.provider, "invalidate", None)
                if invalidate is not None:
                    logger.warning(
                        "%s %s: security token rejected (%s, request %s); refreshing credentials",
                        op.name,
                        where(op),
                        safe_text(error.error_code, 100),
                        safe_text(error.request_id, 64),
                    )
                    await invalidate(credentials)
                    refreshed = True
                    continue
            raise error

    def _log_request(
        self,
        op: Operation,
        status: int | None,
        request_id: str | None,
        sent_at: float,
        error: SlsError | None,
    ) -> None:
        outcome = "ok" if error is None else safe_text(error.error_code or type(error).__name__, 100)
        logger.debug(
            "%s %s: %s %s (request %s) in %.1f ms",
            op.name,
            where(op),
            status if status is not None else "no response",
            outcome,
            safe_text(request_id or "-", 64),
            (self.monotonic() - sent_at) * 1000.0,
        )

    async def _credentials(self) -> Credentials:
        """The provider's snapshot; its own failure (an STS endpoint down, say) becomes an
        AuthError, so in a fan-out it is that target's result rather than a crash of the stream."""
        try:
            return await self.provider.get_credentials()
        except SlsError:
            raise
        except Exception as exc:
            error = AuthError(
                f"could not obtain credentials: {type(exc).__name__}", error_code="CredentialsUnavailable"
            )
        # Raised outside the handler and unchained: the provider's exception may quote a secret.
        raise error

    def _sample_clock(self, response: HttpResponse) -> None:
        """Every minute, compare the local clock with a successful answer's ``Date``: commit
        ages (lag, health) are judged on the server's clock, and a clock a few minutes off,
        still inside the signature's 15 minutes, would otherwise never be corrected."""
        self._next_clock_sample = self.monotonic() + _CLOCK_SAMPLE_INTERVAL
        offset = self._server_offset(response)
        # Date has whole seconds: only a difference beyond that is worth adopting.
        if offset is not None and abs(offset - self.clock_offset) > _CLOCK_RESOLUTION:
            self.clock_offset = offset
            logger.info(
                "local clock is %.0fs off the server's; using the server's time", -offset.total_seconds()
            )

    def _server_offset(self, response: HttpResponse) -> timedelta | None:
        """Server time (its ``Date``) minus local time, or None without a usable ``Date``."""
        date = response.headers.get("date")
        if not date:
            return None
        try:
            server = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            return None
        if server.tzinfo is None:
            server = server.replace(tzinfo=UTC)
        offset = server - self.clock()
        if abs(offset) > _MAX_CLOCK_OFFSET:
            # A proxy's or a broken server's Date must not skew every later request: a real
            # clock is not days off, so such an answer is surfaced, not learned from.
            logger.warning(
                "ignoring a server Date %s, more than a day off the local clock", safe_text(date, 64)
            )
            return None
        return offset

    def _learn_clock_offset(self, response: HttpResponse) -> bool:
        offset = self._server_offset(response)
        if offset is None:
            return False
        self.clock_offset = offset
        logger.warning(
            "local clock is %.0fs off the server's; signing with the server's time from now on",
            -self.clock_offset.total_seconds(),
        )
        return True


def _token_expired(error: AuthError, credentials: Credentials) -> bool:
    """Whether an auth error means the STS token expired (the docs: 401 Unauthorized)."""
    if not credentials.security_token:
        return False
    if error.error_code in _TOKEN_EXPIRED_CODES:
        return True
    text = error.message.lower()
    return error.error_code == "Unauthorized" and ("expire" in text or "token" in text)
