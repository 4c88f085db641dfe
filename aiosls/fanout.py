"""Bounded, streaming fan-out of GetCheckPoint over many targets, and target discovery.

A fixed pool of workers pulls targets from the (possibly lazy) source and hands results to the
consumer through a queue; memory is bounded by the pool, not by the number of targets, and no
task is created per target. Two limits are separate on purpose: the pool (``2 * concurrency``
workers) bounds memory, while a semaphore of ``concurrency`` bounds requests *in flight*, held
only around each attempt's send so a target sleeping out a backoff holds no slot.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Self

import attrs

from .errors import SlsError
from .models import CheckpointResult, CheckpointTarget
from .retry import RetryPolicy

if TYPE_CHECKING:
    from .service import CheckpointService

__all__ = ["CheckpointStream", "discover_targets"]


@attrs.frozen
class _WorkerDone:
    task: asyncio.Task[None]


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


class _Pool:
    """The worker side of a stream. It never references the stream itself, so a consumer that
    drops the stream (``break`` out of ``async for``) lets it be collected, which cancels us."""

    def __init__(
        self,
        service: CheckpointService,
        targets: Iterable[CheckpointTarget] | AsyncIterable[CheckpointTarget],
        concurrency: int,
        per_project_concurrency: int | None,
        retry: RetryPolicy | None,
    ) -> None:
        self.get_one = service._get_for_target
        self.retry = retry
        self.sync_source: Iterator[CheckpointTarget] | None = None
        self.async_source: AsyncIterator[CheckpointTarget] | None = None
        if isinstance(targets, AsyncIterable):
            self.async_source = aiter(targets)
        else:
            self.sync_source = iter(targets)
        self.source_lock = asyncio.Lock()
        self.per_project = per_project_concurrency
        self.in_flight = asyncio.Semaphore(concurrency)
        self.project_slots: dict[str, _ProjectLimiter] = {}
        self.size = 2 * concurrency
        self.slots = asyncio.Semaphore(self.size)
        self.queue: asyncio.Queue[CheckpointResult | _WorkerDone] = asyncio.Queue()
        self.workers: set[asyncio.Task[None]] = set()

    def limit(self, project: str) -> AbstractAsyncContextManager[object]:
        if self.per_project is None:
            return self.in_flight
        limiter = self.project_slots.get(project)
        if limiter is None:
            limiter = _ProjectLimiter(asyncio.Semaphore(self.per_project), self.in_flight)
            self.project_slots[project] = limiter
        return limiter

    def start(self) -> None:
        for _ in range(self.size):
            task = asyncio.create_task(self.work())
            self.workers.add(task)
            task.add_done_callback(self.on_done)

    def on_done(self, task: asyncio.Task[None]) -> None:
        self.queue.put_nowait(_WorkerDone(task))

    async def next_target(self) -> CheckpointTarget | None:
        if self.sync_source is not None:
            return next(self.sync_source, None)
        assert self.async_source is not None
        async with self.source_lock:
            try:
                return await anext(self.async_source)
            except StopAsyncIteration:
                return None

    async def work(self) -> None:
        while True:
            await self.slots.acquire()
            target = await self.next_target()
            if target is None:
                self.slots.release()
                return
            if not isinstance(target, CheckpointTarget):
                raise TypeError(f"fan-out targets must be CheckpointTarget, not {type(target).__name__}")
            self.queue.put_nowait(await self.get_one(target, self.limit, self.retry))

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
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an int >= 1, not {concurrency!r}")
        if per_project_concurrency is not None and per_project_concurrency < 1:
            raise ValueError("per_project_concurrency must be >= 1 or None")
        self._pool = _Pool(service, targets, concurrency, per_project_concurrency, retry)
        self._live = 0
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
            self._live = pool.size
            pool.start()
        while True:
            if self._extra:
                return self._extra.popleft()
            if self._live == 0 and pool.queue.empty():
                await self.aclose()
                raise StopAsyncIteration
            try:
                item = await pool.queue.get()
            except BaseException:
                # Our consumer was cancelled: stop every worker now, not at garbage collection.
                pool.cancel()
                raise
            if isinstance(item, _WorkerDone):
                self._live -= 1
                pool.workers.discard(item.task)
                if not item.task.cancelled() and (exc := item.task.exception()) is not None:
                    await self.aclose()
                    raise exc  # a bug (not an SlsError) in one target stops the whole fan-out
                continue
            pool.slots.release()
            return item

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
) -> AsyncIterator[CheckpointTarget]:
    """Yield a target for every consumer group of every (matching) logstore of ``projects``.

    Listing logstores or consumer groups can fail for one project or logstore; that failure is
    appended to ``failures`` (as a result whose target has empty names below the failed scope)
    and discovery goes on with the rest.
    """
    wanted = _logstore_predicate(logstore_filter)
    for project in projects:
        try:
            logstores = [s for s in await service.list_logstores(project) if wanted(s)]
        except SlsError as exc:
            failures.append(CheckpointResult(CheckpointTarget(project, "", ""), error=exc))
            continue
        for start in range(0, len(logstores), concurrency):
            batch = logstores[start : start + concurrency]
            listed: list[tuple[str, list[str] | SlsError]] = []

            async def list_groups(
                logstore: str, project: str = project, out: list[tuple[str, list[str] | SlsError]] = listed
            ) -> None:
                try:
                    groups = await service.list_consumer_groups(project, logstore)
                except SlsError as exc:
                    out.append((logstore, exc))
                    return
                out.append((logstore, [g.name for g in groups]))

            async with asyncio.TaskGroup() as tg:
                for logstore in batch:
                    tg.create_task(list_groups(logstore))
            order = {name: i for i, name in enumerate(batch)}
            for logstore, groups in sorted(listed, key=lambda item: order[item[0]]):
                if isinstance(groups, SlsError):
                    failures.append(CheckpointResult(CheckpointTarget(project, logstore, ""), error=groups))
                    continue
                for group in groups:
                    yield CheckpointTarget(project, logstore, group)
