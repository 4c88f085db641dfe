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
import weakref
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


class CheckpointStream(AsyncIterator[CheckpointResult]):
    """The async iterator returned by :meth:`CheckpointService.get_checkpoints_many`.

    Use it in ``async for``; leaving the loop early cancels the remaining work. For prompt,
    deterministic cleanup (no task left even for a moment), also use it as a context manager::

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
        extra_results: deque[CheckpointResult] | list[CheckpointResult] | None = None,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an int >= 1, not {concurrency!r}")
        if per_project_concurrency is not None and per_project_concurrency < 1:
            raise ValueError("per_project_concurrency must be >= 1 or None")
        self._service = service
        self._retry = retry
        self._sync_source: Iterator[CheckpointTarget] | None = None
        self._async_source: AsyncIterator[CheckpointTarget] | None = None
        if isinstance(targets, AsyncIterable):
            self._async_source = aiter(targets)
        else:
            self._sync_source = iter(targets)
        self._source_lock = asyncio.Lock()
        self._concurrency = concurrency
        self._per_project = per_project_concurrency
        self._in_flight = asyncio.Semaphore(concurrency)
        self._project_slots: dict[str, _ProjectLimiter] = {}
        self._n_workers = 2 * concurrency
        self._slots = asyncio.Semaphore(self._n_workers)
        self._queue: asyncio.Queue[CheckpointResult | _WorkerDone] = asyncio.Queue()
        self._workers: set[asyncio.Task[None]] = set()
        self._live = 0
        self._started = False
        self._closed = False
        self._extra = extra_results if extra_results is not None else []

    # --- limits -------------------------------------------------------------------------------

    def _limit(self, project: str) -> AbstractAsyncContextManager[object]:
        if self._per_project is None:
            return self._in_flight
        limiter = self._project_slots.get(project)
        if limiter is None:
            limiter = _ProjectLimiter(asyncio.Semaphore(self._per_project), self._in_flight)
            self._project_slots[project] = limiter
        return limiter

    # --- workers ------------------------------------------------------------------------------

    def _start(self) -> None:
        self._started = True
        self._live = self._n_workers
        on_done = _make_on_done(weakref.ref(self))
        for _ in range(self._n_workers):
            task = asyncio.create_task(self._work())
            self._workers.add(task)
            task.add_done_callback(on_done)

    async def _next_target(self) -> CheckpointTarget | None:
        if self._sync_source is not None:
            return next(self._sync_source, None)
        assert self._async_source is not None
        async with self._source_lock:
            try:
                return await anext(self._async_source)
            except StopAsyncIteration:
                return None

    async def _work(self) -> None:
        get_one = self._service._get_for_target
        while True:
            await self._slots.acquire()
            target = await self._next_target()
            if target is None:
                self._slots.release()
                return
            if not isinstance(target, CheckpointTarget):
                raise TypeError(f"fan-out targets must be CheckpointTarget, not {type(target).__name__}")
            self._queue.put_nowait(await get_one(target, self._limit, self._retry))

    # --- consumer side ------------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> CheckpointResult:
        if self._closed:
            raise StopAsyncIteration
        if not self._started:
            self._start()
        while True:
            if self._extra:
                return self._pop_extra()
            if self._live == 0 and self._queue.empty():
                await self.aclose()
                raise StopAsyncIteration
            try:
                item = await self._queue.get()
            except BaseException:
                # Our consumer was cancelled: stop every worker now, not at garbage collection.
                self._cancel_workers()
                raise
            if isinstance(item, _WorkerDone):
                self._live -= 1
                self._workers.discard(item.task)
                if not item.task.cancelled() and (exc := item.task.exception()) is not None:
                    await self.aclose()
                    raise exc  # a bug (or a non-SlsError) in one target stops the fan-out
                continue
            self._slots.release()
            return item

    def _pop_extra(self) -> CheckpointResult:
        if isinstance(self._extra, deque):
            return self._extra.popleft()
        return self._extra.pop(0)

    def _cancel_workers(self) -> None:
        for task in self._workers:
            task.cancel()

    async def aclose(self) -> None:
        """Cancel whatever is still in flight and wait for it to finish. Idempotent."""
        if self._closed:
            return
        self._closed = True
        workers = list(self._workers)
        self._cancel_workers()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)
        self._workers.clear()
        source = self._async_source
        if source is not None and hasattr(source, "aclose"):
            await source.aclose()
        elif self._sync_source is not None and hasattr(self._sync_source, "close"):
            self._sync_source.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # A consumer that broke out of ``async for`` drops us: cancel the workers right away.
        for task in getattr(self, "_workers", ()):
            task.cancel()


def _make_on_done(ref: weakref.ref[CheckpointStream]) -> Callable[[asyncio.Task[None]], None]:
    # A weak reference, so that workers do not keep an abandoned stream alive.
    def on_done(task: asyncio.Task[None]) -> None:
        stream = ref()
        if stream is None:
            if not task.cancelled():
                task.exception()  # retrieved: an abandoned stream's error is not "never retrieved"
            return
        stream._queue.put_nowait(_WorkerDone(task))

    return on_done


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
