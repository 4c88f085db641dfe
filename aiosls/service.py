"""``CheckpointService``: the asyncio client for SLS consumer-group checkpoints.

The service wires the parts together and owns their lifecycle: the transport (an
:class:`AiohttpTransport` it creates unless given one), the call pipeline
(:mod:`aiosls._pipeline`: sign, send, parse, retry) and the caches the lag sweeps share. Each
operation is one thin method over the pipeline; the fan-out (:mod:`aiosls.fanout`), discovery
(:mod:`aiosls.discovery`) and lag (:mod:`aiosls.lag`) sit on the pipeline, never on the service.
"""

from __future__ import annotations

import asyncio
import enum
import random
import ssl
import sys
import time
import warnings
from collections import Counter, deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp

from . import _sansio, discovery, lag
from ._http import HttpResponse
from ._pipeline import Pipeline
from .credentials import (
    Credentials,
    CredentialsProvider,
    EnvironmentCredentialsProvider,
    StaticCredentialsProvider,
)
from .endpoint import derive_region, parse_endpoint
from .errors import AlreadyExistsError, ServiceClosedError, SlsError
from .fanout import CheckpointStream, FanoutLimits, LagStream, checkpoints_job, new_limits
from .models import (
    CheckpointResult,
    CheckpointTarget,
    ConsumerGroup,
    GroupLag,
    LagResult,
    Shard,
    ShardCheckpoint,
)
from .retry import DEFAULT_RETRY, UPDATE_CHECKPOINT_RETRY, RetryPolicy
from .signing import SignatureVersion
from .timeouts import DEFAULT_TIMEOUTS, Timeouts
from .transport import Transport
from .transport.aiohttp import AiohttpTransport

__all__ = ["CheckpointService"]

_T = TypeVar("_T")
_R = TypeVar("_R")


def _transport_token(transport: Transport) -> str:
    """The User-Agent word naming the transport actually in use."""
    if isinstance(transport, AiohttpTransport):
        return f"aiohttp/{aiohttp.__version__}"
    token = getattr(transport, "user_agent_token", None)
    return token if isinstance(token, str) and token else type(transport).__name__


def _user_agent(transport: Transport) -> str:
    from . import __version__

    return f"aiosls/{__version__} {_transport_token(transport)} python/{sys.version.split()[0]}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class CheckpointService:
    """Reads (and commits) consumer-group checkpoints of any number of SLS projects, and
    measures how far behind each consumer group is.

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
    :param transport: any :class:`~aiosls.transport.Transport` (e.g. ``InMemoryTransport``,
        or the opt-in ``aiosls.transport.http11.Http11Transport``); by default an
        :class:`AiohttpTransport` owned by the service.
    :param session: an ``aiohttp.ClientSession`` to borrow for the default transport
        (proxies, tracing, a shared pool); never closed by the service.
    :param ssl_context: custom TLS context; certificates are always verified otherwise.
    :param retry: default :class:`RetryPolicy` for reads (override per call with ``retry=``).
    :param timeouts: connect/read per attempt and total per call (by default a call ends
        within the retry deadline plus one connect timeout, whatever the server does).
    :param max_connections: size of the default transport's connection pool.
    :param cursor_time_cache: how many cursor receive times the lag sweeps remember (a
        cursor's time never changes, so a repeated sweep re-asks only for moved checkpoints).
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
        cursor_time_cache: int = lag.DEFAULT_CURSOR_TIME_CACHE,
        user_agent: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        parsed = parse_endpoint(endpoint)
        if signature_version not in ("v1", "v4"):
            raise ValueError(f"signature_version must be 'v1' or 'v4', not {signature_version!r}")
        region = region or derive_region(parsed.host)
        if signature_version == "v4" and not region:
            raise ValueError(
                f"signature V4 needs a region and none can be derived from {str(parsed)!r}: "
                "pass region='cn-hangzhou' (for example) or signature_version='v1'"
            )
        provider: CredentialsProvider
        if credentials is None:
            provider = EnvironmentCredentialsProvider()
        elif isinstance(credentials, Credentials):
            provider = StaticCredentialsProvider(credentials)
        else:
            provider = credentials
        if transport is not None and (session is not None or ssl_context is not None):
            raise ValueError("pass either transport or session/ssl_context, not both")
        self._owns_transport = transport is None
        if transport is None:
            transport = AiohttpTransport(
                session=session,
                ssl_context=ssl_context,
                connect_timeout=timeouts.connect,
                read_timeout=timeouts.read,
                max_connections=max_connections,
            )
        self._transport: Transport = transport
        self._pipeline = Pipeline(
            endpoint=parsed,
            provider=provider,
            static_credentials=credentials if isinstance(credentials, Credentials) else None,
            signature_version=signature_version,
            region=region,
            transport=transport,
            retry=retry,
            timeouts=timeouts,
            user_agent=user_agent or _user_agent(transport),
            clock=clock,
            sleep=sleep,
            monotonic=monotonic,
            rng=rng,
        )
        self._cursor_times = lag.CursorTimeCache(cursor_time_cache)
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
        self._pipeline.closed = True
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
        open_ = getattr(self, "_state", _State.CLOSED) is _State.OPEN and self._owns_transport
        if open_ and getattr(self._transport, "_session", None) is not None:
            _warn(f"unclosed {self!r}: use 'async with' or await aclose()", ResourceWarning, source=self)

    def __repr__(self) -> str:
        p = self._pipeline
        return (
            f"<CheckpointService {p.endpoint} signature={p.signature_version} "
            f"region={p.region} {self._state.value}>"
        )

    @property
    def transport(self) -> Transport:
        """The transport requests go through."""
        return self._transport

    @property
    def requests_sent(self) -> int:
        """How many HTTP requests this service has sent, every attempt counted."""
        return self._pipeline.requests_sent

    @property
    def retries(self) -> int:
        """How many of those requests were retries (attempts after a call's first)."""
        return self._pipeline.retries

    @property
    def request_counts(self) -> Counter[tuple[str, str]]:
        """Requests by ``(operation, outcome)``; outcomes are ``ok``, ``throttled``,
        ``client_error``, ``server_error`` and ``transport_error``. A live view."""
        return self._pipeline.request_counts

    @property
    def clock_offset(self) -> timedelta:
        """Server time minus local time, as learned from a ``RequestTimeExpired`` answer."""
        return self._pipeline.clock_offset

    def _call(
        self,
        op: _sansio.Operation,
        parse: Callable[[HttpResponse], _T],
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> Awaitable[_T]:
        self._check_open()
        return self._pipeline.call(op, parse, retry=retry, timeout=timeout)

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
        op = _sansio.list_consumer_groups(project, logstore)
        return await self._call(op, _sansio.parse_consumer_groups)

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

        :raises ResponseParseError: the server's paging does not advance.
        """
        self._check_open()
        return await discovery.list_logstores(self._pipeline, project, name_filter)

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
        project too: SLS read quotas are per project), by ``concurrency`` worker tasks and no
        more, whatever the fault rate. A project that throttles is slowed down on its own (a
        cool-down and a lower in-flight cap) while the others go on. ``targets`` may be lazy (a
        generator, an async iterable): memory is bounded by ``concurrency``, not by the number
        of targets. A target's :class:`SlsError` is reported in its own result; anything else
        (a bug, cancellation) propagates. Leaving the ``async for`` early cancels the work
        still in flight::

            async for result in svc.get_checkpoints_many(targets, concurrency=32):
                if result.ok:
                    print(result.target, len(result.checkpoints))
                else:
                    print(result.target, result.error)
        """
        self._check_open()
        limits = new_limits(self._pipeline, concurrency, per_project_concurrency)
        return CheckpointStream(checkpoints_job(self._pipeline, retry), targets, limits)

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
        consumer_group_filter: str | Callable[[str], bool] | None = None,
        concurrency: int = 64,
        per_project_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        on_discovery: Callable[[discovery.DiscoveryProgress], None] | None = None,
    ) -> CheckpointStream:
        """Discover every consumer group of ``projects`` and stream their checkpoints.

        ``logstore_filter`` and ``consumer_group_filter`` are globs (``"app-*"``) or predicates
        on names; groups filtered out cost no GetCheckPoint. Projects
        are discovered concurrently under the same bounds as the reads; a failed discovery
        step is reported as a result whose target names the scope that failed (empty
        ``logstore``/``consumer_group``), so one missing project hides nothing else.
        ``on_discovery`` is called after each listing with a
        :class:`~aiosls.discovery.DiscoveryProgress` (projects done of total, targets found),
        e.g. for a progress display; it must be quick and must not raise.
        """
        self._check_open()
        limits = new_limits(self._pipeline, concurrency, per_project_concurrency)
        failures: deque[CheckpointResult] = deque()
        targets = self._discover(
            projects,
            limits,
            failures,
            lambda t, e: CheckpointResult(t, error=e),
            logstore_filter,
            consumer_group_filter,
            on_discovery,
        )
        return CheckpointStream(
            checkpoints_job(self._pipeline, retry), targets, limits, extra_results=failures
        )

    # --- lag ------------------------------------------------------------------------------------

    async def get_lag(
        self,
        project: str,
        logstore: str,
        consumer_group: str,
        *,
        retry: RetryPolicy | None = None,
    ) -> GroupLag:
        """How far behind ``consumer_group`` is, shard by shard (SLS's consumption delay).

        Costs one GetCheckPoint, two requests per shard for the newest data's time (GetCursor
        ``end`` and GetCursorTime) and one GetCursorTime per committed shard, minus whatever
        the cursor-time cache already knows.

        :raises SlsError: the checkpoints or the cursor times could not be read.
        """
        self._check_open()
        sweep = lag.LagSweep(self._pipeline, self._cursor_times, retry=retry)
        return await sweep.group_lag(CheckpointTarget(project, logstore, consumer_group))

    def get_lag_many(
        self,
        targets: Iterable[CheckpointTarget] | AsyncIterable[CheckpointTarget],
        *,
        concurrency: int = 64,
        per_project_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> LagStream:
        """Stream one :class:`LagResult` per target, in completion order, under the same bounds
        and failure isolation as :meth:`get_checkpoints_many`.

        Within one stream the newest data's cursor and time are fetched once per (project,
        logstore, shard) and shared by every group on that logstore; cursor times are cached
        across streams.
        """
        self._check_open()
        limits = new_limits(self._pipeline, concurrency, per_project_concurrency)
        sweep = lag.LagSweep(self._pipeline, self._cursor_times, retry=retry)
        return LagStream(sweep.job, targets, limits)

    def scan_lag(
        self,
        projects: str | Sequence[str],
        *,
        logstore_filter: str | Callable[[str], bool] | None = None,
        consumer_group_filter: str | Callable[[str], bool] | None = None,
        concurrency: int = 64,
        per_project_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        on_discovery: Callable[[discovery.DiscoveryProgress], None] | None = None,
    ) -> LagStream:
        """Discover every consumer group of ``projects`` (as :meth:`scan`) and stream their lag."""
        self._check_open()
        limits = new_limits(self._pipeline, concurrency, per_project_concurrency)
        sweep = lag.LagSweep(self._pipeline, self._cursor_times, retry=retry)
        failures: deque[LagResult] = deque()
        targets = self._discover(
            projects,
            limits,
            failures,
            lambda t, e: LagResult(t, error=e),
            logstore_filter,
            consumer_group_filter,
            on_discovery,
        )
        return LagStream(sweep.job, targets, limits, extra_results=failures)

    def _discover(
        self,
        projects: str | Sequence[str],
        limits: FanoutLimits,
        failures: deque[_R],
        failure: Callable[[CheckpointTarget, SlsError], _R],
        logstore_filter: str | Callable[[str], bool] | None,
        consumer_group_filter: str | Callable[[str], bool] | None,
        on_discovery: Callable[[discovery.DiscoveryProgress], None] | None,
    ) -> AsyncIterator[CheckpointTarget]:
        """The targets of a scan, discovered under the fan-out's own bounds and backpressure."""
        return discovery.discover_targets(
            self._pipeline,
            [projects] if isinstance(projects, str) else projects,
            logstore_filter=logstore_filter,
            consumer_group_filter=consumer_group_filter,
            concurrency=limits.concurrency,
            failures=failures,
            failure=failure,
            limiter=limits.limit,
            observe=limits.observe,
            on_discovery=on_discovery,
        )


def _empty(operation: str) -> Callable[[HttpResponse], None]:
    def parse(response: HttpResponse) -> None:
        _sansio.parse_empty(response, operation)

    return parse
