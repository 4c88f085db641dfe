"""Bounded, streaming fan-out of GetCheckPoint over many targets, and target discovery.

``concurrency`` workers pull targets from the (possibly lazy) source and hand results to the
consumer through a bounded buffer; memory is bounded by the pool, not by the number of targets,
and no task is created per target. A worker that sleeps out a backoff calls in a spare worker,
so that sleep never costs an in-flight slot; spares retire as sleepers wake. A semaphore of
``concurrency`` (held only around each attempt's send) keeps the in-flight bound exact even
while a spare and a woken sleeper overlap. In the common case (no backoff) it is never
contended, so no request waits for a hand-off between tasks.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

from .errors import SlsError
from .models import CheckpointResult, CheckpointTarget
from .retry import RetryPolicy

if TYPE_CHECKING:
    from .service import CheckpointService

__all__ = ["CheckpointStream", "discover_targets"]

#: Marks a drained target source (None cannot: it is a possible, wrong, target value).
_EXHAUSTED: Final = object()


class _ProjectLimiter:
    """Per-project slot, then a global slot (always in that order, so no deadlock)."""

    __slots__ = ("_global", "_project")

    def __init__(self, project: asyncio.Semaphore, global_: asyncio.Semaphore) -> None:
        self._project = project
        self._global = global_

    async def __aenter__(self) -> None:
        await self._project.acquire()
        try:
            await self._global.acquire()
        except BaseException:
            self._project.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._global.release()
        self._project.release()

    def project_locked(self) -> bool:
        """True while every slot of this project is taken."""
        return self._project.locked()


class _Limits:
    """The in-flight bounds of one fan-out: ``concurrency`` overall, optionally per project.

    Shared by the GetCheckPoint workers and, in a scan, by the discovery calls, so every
    request of the fan-out counts against the same bounds.
    """

    def __init__(self, concurrency: int, per_project: int | None) -> None:
        self.per_project = per_project
        self.in_flight = asyncio.Semaphore(concurrency)
        self.project_slots: dict[str, _ProjectLimiter] = {}

    def limit(self, project: str) -> AbstractAsyncContextManager[object]:
        """The context manager to hold around one request to ``project``."""
        if self.per_project is None:
            return self.in_flight
        limiter = self.project_slots.get(project)
        if limiter is None:
            limiter = _ProjectLimiter(asyncio.Semaphore(self.per_project), self.in_flight)
            self.project_slots[project] = limiter
        return limiter

    def project_full(self, project: str) -> bool:
        """Whether ``project`` has no free per-project slot right now."""
        limiter = self.project_slots.get(project)
        return limiter is not None and limiter.project_locked()


class _Pool:
    """The worker side of a stream. It never references the stream itself, so a consumer that
    drops the stream (``break`` out of ``async for``) lets it be collected, which cancels us."""

    def __init__(
        self,
        service: CheckpointService,
        targets: Iterable[CheckpointTarget] | AsyncIterable[CheckpointTarget],
        concurrency: int,
        limits: _Limits,
        retry: RetryPolicy | None,
    ) -> None:
        self.get_one = service._get_for_target
        self.service_sleep: Callable[[float], Awaitable[None]] = service._sleep
        self.retry = retry
        self.sync_source: Iterator[CheckpointTarget] | None = None
        self.async_source: AsyncIterator[CheckpointTarget] | None = None
        if isinstance(targets, AsyncIterable):
            self.async_source = aiter(targets)
        else:
            self.sync_source = iter(targets)
        self.source_lock = asyncio.Lock()
        self.exhausted = False
        self.concurrency = concurrency
        self.limits = limits
        self.limit = limits.limit
        self.workers: set[asyncio.Task[None]] = set()
        self.sleeping = 0
        self.alive = 0
        self.error: BaseException | None = None
        # Results not yet taken by the consumer: at most ``concurrency`` before workers wait.
        self.ready: deque[CheckpointResult] = deque()
        self.consumer_waiter: asyncio.Future[None] | None = None
        self.space_waiters: deque[asyncio.Future[None]] = deque()
        # Targets set aside while their project is at its cap (per-project limits only).
        self.parked: dict[str, deque[CheckpointTarget]] = {}
        self.n_parked = 0
        self.park_limit = 4 * concurrency

    def spawn(self) -> None:
        task = asyncio.create_task(self.work())
        self.workers.add(task)
        self.alive += 1
        task.add_done_callback(self.on_done)

    def start(self) -> None:
        for _ in range(self.concurrency):
            self.spawn()

    def on_done(self, task: asyncio.Task[None]) -> None:
        self.alive -= 1
        self.workers.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None and self.error is None:
            self.error = exc  # a bug (not an SlsError) in one target: the consumer re-raises it
        self.wake_consumer()

    def wake_consumer(self) -> None:
        waiter, self.consumer_waiter = self.consumer_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def backoff_sleep(self, seconds: float) -> None:
        """The retry loop's sleep inside a fan-out: a spare worker takes over the slot meanwhile."""
        self.sleeping += 1
        if not self.exhausted and len(self.workers) - self.sleeping < self.concurrency:
            self.spawn()
        try:
            await self.service_sleep(seconds)
        finally:
            self.sleeping -= 1

    async def next_target(self) -> object:
        """The source's next item, or ``_EXHAUSTED`` (not None: a None target is a caller's bug
        and must say so, not end the stream early)."""
        if self.sync_source is not None:
            target = next(self.sync_source, _EXHAUSTED)
        else:
            assert self.async_source is not None
            async with self.source_lock:
                try:
                    target = await anext(self.async_source)
                except StopAsyncIteration:
                    target = _EXHAUSTED
        if target is _EXHAUSTED:
            self.exhausted = True
        return target

    def take_parked(self, *, any_project: bool = False) -> CheckpointTarget | None:
        """A parked target whose project has a free slot (or any, once the source is dry)."""
        for project, queue in self.parked.items():
            if any_project or not self.limits.project_full(project):
                target = queue.popleft()
                if not queue:
                    del self.parked[project]
                self.n_parked -= 1
                return target
        return None

    async def next_to_run(self) -> CheckpointTarget | None:
        """The next target to work on, or None when everything is done.

        With a per-project cap, a target whose project is at its cap is parked (up to
        ``4 * concurrency`` of them) and another is taken, so one busy project does not stall
        workers that could serve the others (no head-of-line blocking).
        """
        while True:
            if self.parked and (target := self.take_parked()) is not None:
                return target
            item = await self.next_target()
            if item is _EXHAUSTED:
                return self.take_parked(any_project=True)
            if not isinstance(item, CheckpointTarget):
                raise TypeError(f"fan-out targets must be CheckpointTarget, not {type(item).__name__}")
            if self.limits.per_project is None or self.n_parked >= self.park_limit:
                return item
            self.limit(item.project)  # make sure the project's limiter exists
            if not self.limits.project_full(item.project):
                return item
            self.parked.setdefault(item.project, deque()).append(item)
            self.n_parked += 1

    async def work(self) -> None:
        while len(self.workers) - self.sleeping <= self.concurrency:  # else: a spare retires
            target = await self.next_to_run()
            if target is None:
                return
            result = await self.get_one(target, self.limit, self.retry, self.backoff_sleep)
            self.ready.append(result)
            self.wake_consumer()
            while len(self.ready) > self.concurrency:  # the consumer is slower: wait for room
                space = asyncio.get_running_loop().create_future()
                self.space_waiters.append(space)
                await space

    def took_one(self) -> None:
        """The consumer took a result: let one waiting worker go on."""
        while self.space_waiters:
            space = self.space_waiters.popleft()
            if not space.done():
                space.set_result(None)
                return

    def cancel(self) -> None:
        for task in self.workers:
            task.cancel()

    async def close(self) -> None:
        workers = list(self.workers)
        self.cancel()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)
        self.workers.clear()
        if self.async_source is not None and hasattr(self.async_source, "aclose"):
            await self.async_source.aclose()
        elif self.sync_source is not None and hasattr(self.sync_source, "close"):
            self.sync_source.close()


class CheckpointStream(AsyncIterator[CheckpointResult]):
    """The async iterator returned by :meth:`CheckpointService.get_checkpoints_many`.

    Use it in ``async for``; leaving the loop early cancels the remaining work. For prompt,
    deterministic cleanup (every worker finished when the block ends), also use it as a
    context manager::

        async with svc.get_checkpoints_many(targets) as results:
            async for result in results:
                ...
    """

    def __init__(
        self,
        service: CheckpointService,
        targets: Iterable[CheckpointTarget] | AsyncIterable[CheckpointTarget],
        *,
        concurrency: int,
        per_project_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        extra_results: deque[CheckpointResult] | None = None,
        limits: _Limits | None = None,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an int >= 1, not {concurrency!r}")
        if per_project_concurrency is not None and per_project_concurrency < 1:
            raise ValueError("per_project_concurrency must be >= 1 or None")
        limits = limits or _Limits(concurrency, per_project_concurrency)
        self._pool = _Pool(service, targets, concurrency, limits, retry)
        self._started = False
        self._closed = False
        self._extra: deque[CheckpointResult] = extra_results if extra_results is not None else deque()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> CheckpointResult:
        if self._closed:
            raise StopAsyncIteration
        pool = self._pool
        if not self._started:
            self._started = True
            pool.start()
        while True:
            if self._extra:
                return self._extra.popleft()
            if pool.ready:
                result = pool.ready.popleft()
                pool.took_one()
                return result
            if pool.error is not None:
                error, pool.error = pool.error, None
                await self.aclose()
                raise error
            if pool.alive == 0:
                await self.aclose()
                raise StopAsyncIteration
            waiter = asyncio.get_running_loop().create_future()
            pool.consumer_waiter = waiter
            try:
                await waiter
            except BaseException:
                # Our consumer was cancelled: stop every worker now, not at garbage collection.
                pool.cancel()
                raise

    async def aclose(self) -> None:
        """Cancel whatever is still in flight and wait for it to finish. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._pool.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # A consumer that broke out of ``async for`` drops us: cancel the workers right away.
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.cancel()


# --- discovery ------------------------------------------------------------------------------------


def _logstore_predicate(logstore_filter: str | Callable[[str], bool] | None) -> Callable[[str], bool]:
    if logstore_filter is None:
        return lambda _name: True
    if isinstance(logstore_filter, str):
        pattern = logstore_filter
        return lambda name: fnmatch.fnmatchcase(name, pattern)
    return logstore_filter


async def discover_targets(
    service: CheckpointService,
    projects: Iterable[str],
    *,
    logstore_filter: str | Callable[[str], bool] | None = None,
    concurrency: int = 64,
    failures: deque[CheckpointResult] | list[CheckpointResult],
    limits: _Limits | None = None,
) -> AsyncIterator[CheckpointTarget]:
    """Yield a target for every consumer group of every (matching) logstore of ``projects``.

    Projects are interleaved round-robin, so a per-project cap never leaves workers waiting on
    one project while others are idle. Discovery requests count against ``limits`` like the
    GetCheckPoint requests do. Listing logstores or consumer groups can fail for one project or
    logstore; that failure is appended to ``failures`` (as a result whose target has empty
    names below the failed scope) and discovery goes on with the rest.
    """
    wanted = _logstore_predicate(logstore_filter)
    limit = limits.limit if limits is not None else None
    streams = [
        aiter(_discover_project(service, project, wanted, concurrency, failures, limit))
        for project in projects
    ]
    try:
        while streams:
            for stream in list(streams):
                try:
                    yield await anext(stream)
                except StopAsyncIteration:
                    streams.remove(stream)
    finally:
        for stream in streams:
            await stream.aclose()  # type: ignore[attr-defined]


async def _list_groups(
    service: CheckpointService,
    project: str,
    logstore: str,
    limit: Callable[[str], AbstractAsyncContextManager[object]] | None,
    out: dict[str, list[str] | SlsError],
) -> None:
    """One logstore's group names into ``out``; its SlsError too, so it hides nothing else."""
    try:
        groups = await service._list_consumer_groups(project, logstore, limit)
    except SlsError as exc:
        out[logstore] = exc
        return
    out[logstore] = [g.name for g in groups]


async def _discover_project(
    service: CheckpointService,
    project: str,
    wanted: Callable[[str], bool],
    concurrency: int,
    failures: deque[CheckpointResult] | list[CheckpointResult],
    limit: Callable[[str], AbstractAsyncContextManager[object]] | None,
) -> AsyncIterator[CheckpointTarget]:
    try:
        logstores = [s for s in await service._list_logstores(project, None, limit) if wanted(s)]
    except SlsError as exc:
        failures.append(CheckpointResult(CheckpointTarget(project, "", ""), error=exc))
        return
    for start in range(0, len(logstores), concurrency):
        batch = logstores[start : start + concurrency]
        listed: dict[str, list[str] | SlsError] = {}
        async with asyncio.TaskGroup() as tg:
            for logstore in batch:
                tg.create_task(_list_groups(service, project, logstore, limit, listed))
        for logstore in batch:
            groups = listed[logstore]
            if isinstance(groups, SlsError):
                failures.append(CheckpointResult(CheckpointTarget(project, logstore, ""), error=groups))
                continue
            for group in groups:
                yield CheckpointTarget(project, logstore, group)
