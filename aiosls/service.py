"""``CheckpointService``: the asyncio client for SLS consumer-group checkpoints.

Each call runs credentials -> build -> sign -> send -> parse. The first attempt runs directly;
only a retryable failure enters the tenacity loop (see :mod:`aiosls.retry`), so the happy path
pays nothing for retry machinery. Every attempt is rebuilt and re-signed with a fresh date.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import ssl
import sys
import time
import warnings
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import aiohttp

from . import _sansio
from ._sansio import Operation
from .credentials import (
    Credentials,
    CredentialsProvider,
    EnvironmentCredentialsProvider,
    StaticCredentialsProvider,
)
from .endpoint import derive_region, parse_endpoint
from .errors import (
    AlreadyExistsError,
    AuthError,
    ClockSkewError,
    ReadTimeout,
    ServiceClosedError,
    SlsError,
)
from .fanout import CheckpointStream, _Limits, discover_targets
from .models import CheckpointResult, CheckpointTarget, ConsumerGroup, Shard, ShardCheckpoint
from .retry import DEFAULT_RETRY, UPDATE_CHECKPOINT_RETRY, RetryPolicy, annotate_attempts, is_retryable
from .signing import SignatureVersion
from .timeouts import DEFAULT_TIMEOUTS, Timeouts
from .transport import HttpResponse, Transport
from .transport.aiohttp import AiohttpTransport
from .transport.http11 import Http11Transport

__all__ = ["CheckpointService"]

logger = logging.getLogger("aiosls")

_T = TypeVar("_T")
_Limiter = Callable[[str], AbstractAsyncContextManager[object]]
_MAX_CLOCK_OFFSET: Final = timedelta(days=1)
_TOKEN_EXPIRED_CODES: Final = frozenset({"SecurityTokenExpired", "SecurityToken.Expired"})


def _user_agent() -> str:
    from . import __version__

    return f"aiosls/{__version__} aiohttp/{aiohttp.__version__} python/{sys.version.split()[0]}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _NoLimit:
    """The limiter of a call outside any fan-out: nothing to wait for."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_LIMIT: Final = _NoLimit()


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class CheckpointService:
    """Reads (and commits) consumer-group checkpoints of any number of SLS projects.

    Example::

        async with CheckpointService(
            endpoint="cn-hangzhou.log.aliyuncs.com",
            credentials=Credentials("LTAI...", "secret"),
        ) as svc:
            for cp in await svc.get_checkpoints("my-project", "app-log", "cg-main"):
                print(cp.shard, cp.checkpoint, cp.update_time)

    :param endpoint: ``host``, ``https://host`` or ``http://host:port`` (https by default).
        IP and ``localhost`` endpoints are connected to directly, the project only in ``Host``.
    :param credentials: a :class:`Credentials`, any :class:`CredentialsProvider`, or ``None``
        to read the ``ALIBABA_CLOUD_*`` environment variables on each request.
    :param signature_version: ``"v4"`` (SLS4-HMAC-SHA256, default) or ``"v1"`` (hmac-sha1).
    :param region: V4 signing region; derived from standard endpoints when omitted.
    :param transport: any :class:`~aiosls.transport.Transport` (e.g. ``InMemoryTransport``);
        by default an :class:`Http11Transport` owned by the service.
    :param session: an ``aiohttp.ClientSession`` to borrow: the service then sends through an
        :class:`AiohttpTransport` on it (proxies, tracing, a shared pool).
    :param ssl_context: custom TLS context; certificates are always verified otherwise.
    :param retry: default :class:`RetryPolicy` for reads (override per call with ``retry=``).
    :param timeouts: connect/read per attempt and total per call.
    :param max_connections: size of the default transport's connection pool.
    :param clock: wall clock for request dates (UTC); ``sleep``, ``monotonic`` and ``rng``
        drive backoff. All four exist so tests can run retry schedules without waiting.
    :raises ValueError: the endpoint or signature settings are unusable (e.g. V4 without a
        region for a custom endpoint).
    """

    def __init__(
        self,
        endpoint: str,
        credentials: Credentials | CredentialsProvider | None = None,
        *,
        signature_version: SignatureVersion = "v4",
        region: str | None = None,
        transport: Transport | None = None,
        session: aiohttp.ClientSession | None = None,
        ssl_context: ssl.SSLContext | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        max_connections: int = 100,
        user_agent: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._endpoint = parse_endpoint(endpoint)
        if signature_version not in ("v1", "v4"):
            raise ValueError(f"signature_version must be 'v1' or 'v4', not {signature_version!r}")
        self._signature_version: SignatureVersion = signature_version
        self._region = region or derive_region(self._endpoint.host)
        if signature_version == "v4" and not self._region:
            raise ValueError(
                f"signature V4 needs a region and none can be derived from {endpoint!r}: "
                "pass region='cn-hangzhou' (for example) or signature_version='v1'"
            )
        # Static keys skip the provider's await on every request (a fan-out makes thousands).
        self._static_credentials = credentials if isinstance(credentials, Credentials) else None
        if credentials is None:
            self._provider: CredentialsProvider = EnvironmentCredentialsProvider()
        elif isinstance(credentials, Credentials):
            self._provider = StaticCredentialsProvider(credentials)
        else:
            self._provider = credentials
        if transport is not None and (session is not None or ssl_context is not None):
            raise ValueError("pass either transport or session/ssl_context, not both")
        self._owns_transport = transport is None
        self._transport: Transport
        if transport is not None:
            self._transport = transport
        elif session is not None:
            self._transport = AiohttpTransport(
                session=session,
                ssl_context=ssl_context,
                connect_timeout=timeouts.connect,
                read_timeout=timeouts.read,
                max_connections=max_connections,
            )
        else:
            self._transport = Http11Transport(
                ssl_context=ssl_context,
                connect_timeout=timeouts.connect,
                read_timeout=timeouts.read,
                max_connections=max_connections,
            )
        self._retry = retry
        self._timeouts = timeouts
        self._user_agent = user_agent or _user_agent()
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self._clock_offset = timedelta(0)
        self._requests_sent = 0
        self._state = _State.OPEN

    # --- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._check_open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the transport if the service created it. Idempotent."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        if self._owns_transport:
            await self._transport.aclose()

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._state is _State.CLOSED

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise ServiceClosedError("CheckpointService is closed; create a new one")

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # Only a transport we own holds sockets; a borrowed one is its owner's business.
        if getattr(self, "_state", _State.CLOSED) is _State.OPEN and self._owns_transport:
            transport = self._transport
            if (isinstance(transport, AiohttpTransport) and transport._session is not None) or (
                isinstance(transport, Http11Transport) and transport.open_connections
            ):
                _warn(f"unclosed {self!r}: use 'async with' or await aclose()", ResourceWarning, source=self)

    def __repr__(self) -> str:
        return (
            f"<CheckpointService {self._endpoint} signature={self._signature_version} "
            f"region={self._region} {self._state.value}>"
        )

    @property
    def requests_sent(self) -> int:
        """How many HTTP requests this service has sent, every attempt counted."""
        return self._requests_sent

    @property
    def clock_offset(self) -> timedelta:
        """Server time minus local time, as learned from a ``RequestTimeExpired`` answer."""
        return self._clock_offset

    # --- the call machinery ---------------------------------------------------------------------

    def _call(
        self,
        op: Operation,
        parse: Callable[[HttpResponse], _T],
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        limiter: _Limiter | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> Awaitable[_T]:
        """Run ``op`` with retries; ``limiter`` bounds each attempt's send (fan-out), ``sleep``
        replaces the backoff sleep (the fan-out's calls in a spare worker meanwhile).

        A plain function returning the awaitable: without a total timeout (the common case)
        the caller awaits the retry loop directly, one coroutine layer fewer per request.
        """
        self._check_open()
        total = timeout if timeout is not None else self._timeouts.total
        call = self._call_retrying(op, parse, retry or self._retry, limiter, sleep or self._sleep)
        if total is None:
            return call
        return self._within(total, op, call)

    async def _within(self, total: float, op: Operation, call: Awaitable[_T]) -> _T:
        """Bound a whole call, backoff sleeps included, by ``total`` seconds."""
        deadline = asyncio.timeout(total)
        try:
            async with deadline:
                return await call
        except TimeoutError as exc:
            if not deadline.expired():
                raise  # a ReadTimeout from inside, not our total budget
            raise ReadTimeout(
                f"{op.name} {_where(op)}: no result within the total timeout of {total}s"
            ) from exc

    async def _call_retrying(
        self,
        op: Operation,
        parse: Callable[[HttpResponse], _T],
        policy: RetryPolicy,
        limiter: _Limiter | None,
        sleep: Callable[[float], Awaitable[None]],
    ) -> _T:
        started = self._monotonic()
        try:
            return parse(await self._attempt(op, limiter))
        except SlsError as exc:
            if policy.max_attempts <= 1 or not is_retryable(exc, idempotent=op.idempotent):
                raise
            pending: SlsError | None = exc
        # Slow path. The failure above is replayed as tenacity's attempt 1, so the schedule,
        # the log line and the stop rules are exactly tenacity's from here on.
        retrying = policy.retrying(
            idempotent=op.idempotent,
            sleep=sleep,
            clock=self._monotonic,
            rng=self._rng,
            started=started,
            describe=lambda: f"{op.name} {_where(op)}",
        )
        attempts = 0
        try:
            async for attempt in retrying:
                attempts += 1
                with attempt:
                    if pending is not None:
                        first, pending = pending, None
                        raise first
                    return parse(await self._attempt(op, limiter))
        except SlsError as exc:
            annotate_attempts(exc, attempts)
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _attempt(self, op: Operation, limiter: _Limiter | None) -> HttpResponse:
        """One attempt, plus at most one immediate re-sign for clock skew or an expired token."""
        fixed_skew = refreshed = False
        while True:
            # Signed inside the in-flight slot: a long wait for one must not age the signature.
            async with limiter(op.project) if limiter is not None else _NO_LIMIT:
                credentials = self._static_credentials or await self._credentials()
                request = _sansio.build_request(
                    op,
                    endpoint=self._endpoint,
                    credentials=credentials,
                    now=self._clock() + self._clock_offset,
                    signature_version=self._signature_version,
                    region=self._region,
                    user_agent=self._user_agent,
                )
                self._requests_sent += 1
                response = await self._transport.send(request, timeout=self._timeouts.read)
            if response.status == 200:
                return response
            error = _sansio.error_from_response(response, op.name)
            if isinstance(error, ClockSkewError) and not fixed_skew and self._learn_clock_offset(response):
                fixed_skew = True
                continue
            if isinstance(error, AuthError) and not refreshed and _token_expired(error, credentials):
                invalidate = getattr(self._provider, "invalidate", None)
                if invalidate is not None:
                    logger.warning(
                        "%s %s: security token rejected (%s, request %s); refreshing credentials",
                        op.name,
                        _where(op),
                        error.error_code,
                        error.request_id,
                    )
                    await invalidate(credentials)
                    refreshed = True
                    continue
            raise error

    async def _credentials(self) -> Credentials:
        """The provider's snapshot; its own failure (an STS endpoint down, say) becomes an
        AuthError, so in a fan-out it is that target's result rather than a crash of the stream."""
        try:
            return await self._provider.get_credentials()
        except SlsError:
            raise
        except Exception as exc:
            raise AuthError(
                f"could not obtain credentials: {type(exc).__name__}", error_code="CredentialsUnavailable"
            ) from exc

    def _learn_clock_offset(self, response: HttpResponse) -> bool:
        date = response.headers.get("date")
        if not date:
            return False
        try:
            server = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return False
        if server.tzinfo is None:
            server = server.replace(tzinfo=UTC)
        offset = server - self._clock()
        if abs(offset) > _MAX_CLOCK_OFFSET:
            # A proxy's or a broken server's Date must not skew every later request: a real
            # clock is not days off, so such an answer is surfaced, not learned from.
            logger.warning("ignoring a server Date %s, more than a day off the local clock", date)
            return False
        self._clock_offset = offset
        logger.warning(
            "local clock is %.0fs off the server's; signing with the server's time from now on",
            -self._clock_offset.total_seconds(),
        )
        return True

    # --- checkpoints ----------------------------------------------------------------------------

    async def get_checkpoints(
        self,
        project: str,
        logstore: str,
        consumer_group: str,
        *,
        shard: int | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> list[ShardCheckpoint]:
        """GetCheckPoint: every shard's checkpoint, or only ``shard``'s (``[]`` if no such shard).

        :raises ValidationError: a name breaks the SLS naming rules (nothing is sent).
        :raises NotFoundError: the project, logstore or consumer group does not exist.
        :raises SlsError: any other failure, after the retry policy gave up.
        """
        op = _sansio.get_checkpoint(project, logstore, consumer_group, shard)
        return await self._call(op, _sansio.parse_checkpoints, retry=retry, timeout=timeout)

    async def update_checkpoint(
        self,
        project: str,
        logstore: str,
        consumer_group: str,
        shard: int,
        checkpoint: str,
        *,
        consumer: str = "",
        force_success: bool = True,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> None:
        """ConsumerGroupUpdateCheckPoint: commit ``checkpoint`` for ``shard``.

        Retries are prompt only (:data:`~aiosls.retry.UPDATE_CHECKPOINT_RETRY`: 3 attempts
        within 2 s): a replay arriving long after a newer commit would overwrite it. Without a
        ``consumer`` the server requires ``force_success=True``.

        :raises NotFoundError: unknown group, or (``ConsumerNotExist``) consumer.
        :raises ClientError: e.g. ``ConsumerNotMatch`` when the shard moved to another consumer.
        """
        op = _sansio.update_checkpoint(
            project,
            logstore,
            consumer_group,
            shard,
            checkpoint,
            consumer=consumer,
            force_success=force_success,
        )
        await self._call(op, _empty(op.name), retry=retry or UPDATE_CHECKPOINT_RETRY, timeout=timeout)

    async def heartbeat(
        self, project: str, logstore: str, consumer_group: str, consumer: str, shards: Iterable[int] = ()
    ) -> list[int]:
        """ConsumerGroupHeartBeat: report the shards ``consumer`` holds; returns those assigned."""
        op = _sansio.heartbeat(project, logstore, consumer_group, consumer, shards)
        return await self._call(op, _sansio.parse_heartbeat)

    # --- consumer groups, shards, logstores -----------------------------------------------------

    async def list_consumer_groups(self, project: str, logstore: str) -> list[ConsumerGroup]:
        """ListConsumerGroup (a logstore has at most 30)."""
        return await self._list_consumer_groups(project, logstore, None)

    async def _list_consumer_groups(
        self, project: str, logstore: str, limiter: _Limiter | None
    ) -> list[ConsumerGroup]:
        op = _sansio.list_consumer_groups(project, logstore)
        return await self._call(op, _sansio.parse_consumer_groups, limiter=limiter)

    async def create_consumer_group(
        self,
        project: str,
        logstore: str,
        consumer_group: str,
        *,
        timeout: int,
        order: bool = False,
        exist_ok: bool = False,
    ) -> None:
        """CreateConsumerGroup; with ``exist_ok`` an existing group is updated to this config.

        :raises AlreadyExistsError: the group exists and ``exist_ok`` is false.
        """
        op = _sansio.create_consumer_group(project, logstore, consumer_group, timeout=timeout, order=order)
        try:
            await self._call(op, _empty(op.name))
        except AlreadyExistsError:
            if not exist_ok:
                raise
            await self.update_consumer_group(project, logstore, consumer_group, timeout=timeout, order=order)

    async def update_consumer_group(
        self,
        project: str,
        logstore: str,
        consumer_group: str,
        *,
        timeout: int | None = None,
        order: bool | None = None,
    ) -> None:
        """UpdateConsumerGroup: change its heartbeat ``timeout`` and/or ``order``."""
        op = _sansio.update_consumer_group(project, logstore, consumer_group, timeout=timeout, order=order)
        await self._call(op, _empty(op.name))

    async def delete_consumer_group(self, project: str, logstore: str, consumer_group: str) -> None:
        """DeleteConsumerGroup."""
        op = _sansio.delete_consumer_group(project, logstore, consumer_group)
        await self._call(op, _empty(op.name))

    async def list_shards(self, project: str, logstore: str) -> list[Shard]:
        """ListShards."""
        return await self._call(_sansio.list_shards(project, logstore), _sansio.parse_shards)

    async def list_logstores(self, project: str, *, name_filter: str | None = None) -> list[str]:
        """ListLogStores, every page (500 names a page) until ``total`` is reached.

        ``name_filter`` is SLS's substring match on logstore names.
        """
        return await self._list_logstores(project, name_filter, None)

    async def _list_logstores(
        self, project: str, name_filter: str | None, limiter: _Limiter | None
    ) -> list[str]:
        names: list[str] = []
        offset = 0
        while True:
            op = _sansio.list_logstores(project, offset=offset, name_filter=name_filter)
            page, total = await self._call(op, _sansio.parse_logstores_page, limiter=limiter)
            names.extend(page)
            offset += len(page)
            if not page or offset >= total:
                return names

    async def get_cursor(self, project: str, logstore: str, shard: int, from_: str | int = "end") -> str:
        """GetCursor: the cursor at ``"begin"``, ``"end"`` or a unix time in seconds."""
        op = _sansio.get_cursor(project, logstore, shard, from_)
        return await self._call(op, _sansio.parse_cursor)

    async def get_cursor_time(self, project: str, logstore: str, shard: int, cursor: str) -> datetime:
        """GetCursorTime: when the data at ``cursor`` was received (aware UTC datetime)."""
        op = _sansio.get_cursor_time(project, logstore, shard, cursor)
        seconds = await self._call(op, _sansio.parse_cursor_time)
        return datetime.fromtimestamp(seconds, UTC)

    async def create_project(self, project: str, *, description: str = "") -> None:
        """CreateProject."""
        op = _sansio.create_project(project, description=description)
        await self._call(op, _empty(op.name))

    async def create_logstore(
        self, project: str, logstore: str, *, shard_count: int = 2, ttl: int = 30
    ) -> None:
        """CreateLogStore with ``shard_count`` shards kept ``ttl`` days."""
        op = _sansio.create_logstore(project, logstore, shard_count=shard_count, ttl=ttl)
        await self._call(op, _empty(op.name))

    # --- fan-out --------------------------------------------------------------------------------

    def get_checkpoints_many(
        self,
        targets: Iterable[CheckpointTarget] | AsyncIterable[CheckpointTarget],
        *,
        concurrency: int = 64,
        per_project_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> CheckpointStream:
        """Stream one :class:`CheckpointResult` per target, in completion order.

        At most ``concurrency`` requests are in flight (``per_project_concurrency`` caps each
        project too: SLS read quotas are per project); a target waiting out a backoff holds no
        slot. ``targets`` may be lazy (a generator, an async iterable): memory is bounded by
        ``concurrency``, not by the number of targets. A target's :class:`SlsError` is reported
        in its own result; anything else (a bug, cancellation) propagates. Leaving the
        ``async for`` early cancels the work still in flight::

            async for result in svc.get_checkpoints_many(targets, concurrency=32):
                if result.ok:
                    print(result.target, len(result.checkpoints))
                else:
                    print(result.target, result.error)
        """
        return CheckpointStream(
            self,
            targets,
            concurrency=concurrency,
            per_project_concurrency=per_project_concurrency,
            retry=retry,
        )

    async def gather_checkpoints(
        self,
        targets: Iterable[CheckpointTarget],
        *,
        concurrency: int = 64,
        per_project_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> list[CheckpointResult]:
        """Like :meth:`get_checkpoints_many`, but one list in input order: for small batches."""
        ordered = list(targets)
        by_target: dict[CheckpointTarget, CheckpointResult] = {}
        async with self.get_checkpoints_many(
            ordered, concurrency=concurrency, per_project_concurrency=per_project_concurrency, retry=retry
        ) as stream:
            async for result in stream:
                by_target[result.target] = result
        return [by_target[t] for t in ordered]

    def scan(
        self,
        projects: str | Sequence[str],
        *,
        logstore_filter: str | Callable[[str], bool] | None = None,
        concurrency: int = 64,
        per_project_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> CheckpointStream:
        """Discover every consumer group of ``projects`` and stream their checkpoints.

        ``logstore_filter`` is a glob (``"app-*"``) or a predicate on logstore names. A failed
        discovery step is reported as a result whose target names the scope that failed
        (empty ``logstore``/``consumer_group``), so one missing project hides nothing else.
        """
        names = [projects] if isinstance(projects, str) else list(projects)
        failures: deque[CheckpointResult] = deque()
        # One set of bounds for the discovery calls and the GetCheckPoint calls alike.
        limits = _Limits(concurrency, per_project_concurrency)
        targets = discover_targets(
            self,
            names,
            logstore_filter=logstore_filter,
            concurrency=concurrency,
            failures=failures,
            limits=limits,
        )
        return CheckpointStream(
            self,
            targets,
            concurrency=concurrency,
            per_project_concurrency=per_project_concurrency,
            retry=retry,
            extra_results=failures,
            limits=limits,
        )

    async def _get_for_target(
        self,
        target: CheckpointTarget,
        limiter: _Limiter,
        retry: RetryPolicy | None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> CheckpointResult:
        """One fan-out target; its SlsError becomes its result, anything else propagates."""
        try:
            op = _sansio.get_checkpoint(target.project, target.logstore, target.consumer_group, target.shard)
            checkpoints = await self._call(
                op, _sansio.parse_checkpoints, retry=retry, limiter=limiter, sleep=sleep
            )
        except SlsError as exc:
            return CheckpointResult(target, error=exc)
        return CheckpointResult(target, tuple(checkpoints))


def _where(op: Operation) -> str:
    return f"{op.project}/{op.logstore}" if op.logstore else op.project


def _empty(operation: str) -> Callable[[HttpResponse], None]:
    def parse(response: HttpResponse) -> None:
        _sansio.parse_empty(response, operation)

    return parse


def _token_expired(error: AuthError, credentials: Credentials) -> bool:
    """Whether an auth error means the STS token expired (the docs: 401 Unauthorized)."""
    if not credentials.security_token:
        return False
    if error.error_code in _TOKEN_EXPIRED_CODES:
        return True
    text = error.message.lower()
    return error.error_code == "Unauthorized" and ("expire" in text or "token" in text)
