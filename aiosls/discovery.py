"""Target discovery: every consumer group of every (matching) logstore of some projects.

Projects are discovered concurrently, each by its own task (at most ``concurrency`` at once),
under the fan-out's bounds: a slow, throttled or dead project delays only its own targets, and
its failure is its own result. Targets flow to the fan-out through a bounded queue, so
discovery never runs far ahead of the checkpoint reads.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Final, Generic, TypeVar

import attrs

from . import _sansio
from .errors import ResponseParseError, SlsError
from .models import CheckpointTarget

if TYPE_CHECKING:
    from ._pipeline import Limiter, Observer, Pipeline

__all__ = [
    "MAX_LOGSTORE_PAGES",
    "DiscoveryProgress",
    "discover_targets",
    "list_logstores",
    "name_predicate",
]

R = TypeVar("R")

#: ListLogStores pages (500 names each) one listing may take: 100,000 logstores, far beyond
#: any real project; a server that pages on and on past it is not answering sensibly.
MAX_LOGSTORE_PAGES: Final = 200
#: Consumer-group listings in flight per project during discovery.
_GROUP_LISTINGS_PER_PROJECT: Final = 8


async def list_logstores(
    pipeline: Pipeline,
    project: str,
    name_filter: str | None = None,
    *,
    limiter: Limiter | None = None,
    observe: Observer | None = None,
) -> list[str]:
    """ListLogStores, every page, until ``total`` is reached.

    :raises ResponseParseError: the paging does not advance (a page repeats, or ``total`` keeps
        growing past :data:`MAX_LOGSTORE_PAGES` pages): stop after a few requests, not never.
    """
    names: list[str] = []
    seen: set[str] = set()
    offset = 0
    for _ in range(MAX_LOGSTORE_PAGES):
        op = _sansio.list_logstores(project, offset=offset, name_filter=name_filter)
        page, total = await pipeline.call(op, _sansio.parse_logstores_page, limiter=limiter, observe=observe)
        if not page or (offset + len(page) >= total and not (set(page) & seen)):
            names.extend(page)
            return names
        if set(page) & seen:
            raise ResponseParseError(
                f"ListLogStores {project}: the page at offset {offset} repeats names already listed; "
                "the server's paging does not advance",
                error_code="PagingDoesNotAdvance",
            )
        seen.update(page)
        names.extend(page)
        offset += len(page)
    raise ResponseParseError(
        f"ListLogStores {project}: more than {MAX_LOGSTORE_PAGES} pages; the server's paging does not end",
        error_code="PagingDoesNotAdvance",
    )


def name_predicate(name_filter: str | Callable[[str], bool] | None) -> Callable[[str], bool]:
    """A glob (``"app-*"``), a predicate, or None (every name) as a predicate."""
    if name_filter is None:
        return lambda _name: True
    if isinstance(name_filter, str):
        pattern = name_filter
        return lambda name: fnmatch.fnmatchcase(name, pattern)
    return name_filter


_DONE: Final = object()


@attrs.frozen
class DiscoveryProgress:
    """How far a scan's discovery is, passed to its ``on_discovery`` hook after each listing.

    ``projects_done == projects_total`` once discovery is over: ``targets_found`` is then final.
    """

    projects_done: int
    projects_total: int
    #: Consumer groups found so far that the filters kept (each becomes a target).
    targets_found: int

    @property
    def finished(self) -> bool:
        """Every project is listed (or failed): no more targets will be found."""
        return self.projects_done >= self.projects_total


#: Called with the discovery's progress after each project and each logstore listing.
DiscoveryHook = Callable[[DiscoveryProgress], None]


class _Discovery(Generic[R]):
    """The discovery tasks of one scan and the bounded queue their targets go through."""

    def __init__(
        self,
        pipeline: Pipeline,
        projects: list[str],
        wanted: Callable[[str], bool],
        wanted_group: Callable[[str], bool],
        concurrency: int,
        failures: deque[R],
        failure: Callable[[CheckpointTarget, SlsError], R],
        limiter: Limiter | None,
        observe: Observer | None,
        on_discovery: DiscoveryHook | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.on_discovery = on_discovery
        self.projects_total = len(projects)
        self.projects_done = 0
        self.found = 0
        self.projects = deque(projects)
        self.wanted = wanted
        self.wanted_group = wanted_group
        self.failures = failures
        self.failure = failure
        self.limiter = limiter
        self.observe = observe
        # Targets wait for room (2 x concurrency of them at most); the end marker never does.
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.room = asyncio.Semaphore(2 * concurrency)
        self.tasks = [asyncio.create_task(self.run()) for _ in range(min(concurrency, len(projects)))]
        self.running = len(self.tasks)

    async def run(self) -> None:
        try:
            while self.projects:
                await self.project(self.projects.popleft())
        finally:
            self.running -= 1
            if self.running == 0:
                self.queue.put_nowait(_DONE)

    def report(self) -> None:
        """Tell the hook, if any, how far discovery is."""
        if self.on_discovery is not None:
            self.on_discovery(DiscoveryProgress(self.projects_done, self.projects_total, self.found))

    async def project(self, project: str) -> None:
        try:
            stores = await list_logstores(self.pipeline, project, limiter=self.limiter, observe=self.observe)
        except SlsError as exc:
            self.failures.append(self.failure(CheckpointTarget(project, "", ""), exc))
        else:
            logstores = deque(s for s in stores if self.wanted(s))
            async with asyncio.TaskGroup() as tg:
                for _ in range(min(_GROUP_LISTINGS_PER_PROJECT, len(logstores))):
                    tg.create_task(self.logstores(project, logstores))
        self.projects_done += 1
        self.report()

    async def logstores(self, project: str, logstores: deque[str]) -> None:
        while logstores:
            logstore = logstores.popleft()
            op = _sansio.list_consumer_groups(project, logstore)
            try:
                groups = await self.pipeline.call(
                    op, _sansio.parse_consumer_groups, limiter=self.limiter, observe=self.observe
                )
            except SlsError as exc:
                self.failures.append(self.failure(CheckpointTarget(project, logstore, ""), exc))
                continue
            kept = [group for group in groups if self.wanted_group(group.name)]
            self.found += len(kept)
            self.report()
            for group in kept:
                await self.room.acquire()
                self.queue.put_nowait(CheckpointTarget(project, logstore, group.name))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def discover_targets(
    pipeline: Pipeline,
    projects: Iterable[str],
    *,
    logstore_filter: str | Callable[[str], bool] | None,
    consumer_group_filter: str | Callable[[str], bool] | None = None,
    concurrency: int,
    failures: deque[R],
    failure: Callable[[CheckpointTarget, SlsError], R],
    limiter: Limiter | None = None,
    observe: Observer | None = None,
    on_discovery: DiscoveryHook | None = None,
) -> AsyncIterator[CheckpointTarget]:
    """Yield a target for every matching consumer group of every matching logstore of ``projects``.

    A listing that fails for a project or a logstore becomes ``failure(scope, error)`` in
    ``failures`` (its target has empty names below the failed scope) and discovery goes on
    with the rest. Anything but an SlsError (a bug) propagates to the reader.
    ``on_discovery``, if given, is called after each listing with a :class:`DiscoveryProgress`
    (for a progress display); it runs in a discovery task, so it must be quick and not raise.
    """
    names = list(dict.fromkeys(projects))  # a project named twice is discovered once
    if not names:
        if on_discovery is not None:
            on_discovery(DiscoveryProgress(0, 0, 0))
        return
    discovery = _Discovery(
        pipeline,
        names,
        name_predicate(logstore_filter),
        name_predicate(consumer_group_filter),
        concurrency,
        failures,
        failure,
        limiter,
        observe,
        on_discovery,
    )
    try:
        while True:
            item = await discovery.queue.get()
            if item is _DONE:
                break
            discovery.room.release()
            assert isinstance(item, CheckpointTarget)
            yield item
        for task in discovery.tasks:
            task.result()  # a bug in discovery is the reader's error, not silence
    finally:
        await discovery.close()
