"""Bounded, streaming fan-out over many targets, with per-project backpressure.

``concurrency`` worker tasks, and never more, pull targets from the (possibly lazy) source and
hand results to the consumer through a bounded buffer: memory is bounded by the pool, not by
the number of targets, whatever the fault rate. Each attempt's send holds one of
``concurrency`` in-flight slots (a target sleeping out a backoff holds none) and passes its
project's gate:

- a project that throttles (403 ``*QuotaExceed``, 429) lowers how many requests it may have
  in flight (multiplicative decrease, additive increase as answers succeed) and, once
  throttling dominates its answers, pauses for a short jittered cool-down, so the request
  rate to a throttled project falls, as SLS's guidance and botocore's adaptive retry mode
  expect;
- a target whose project is cooling down or at its limit is parked (at most ``4 *
  concurrency`` of them) while workers serve other projects, so one slow, throttled or dead
  project delays only its own targets.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Final, Generic, Self, TypeGuard, TypeVar

from . import _sansio
from .errors import SlsError, ThrottlingError
from .models import CheckpointResult, CheckpointTarget, LagResult

if TYPE_CHECKING:
    from ._pipeline import Pipeline
    from .retry import Backoff, RetryPolicy

__all__ = [
    "CheckpointStream",
    "FanoutLimits",
    "Job",
    "LagStream",
    "ResultStream",
    "check_concurrency",
    "checkpoints_job",
    "new_limits",
]

R = TypeVar("R")
#: One target's work: ``job(target, limits)`` returns its result; an SlsError is its result.
Job = Callable[[CheckpointTarget, "FanoutLimits"], Awaitable[R]]

#: A throttled answer multiplies its project's in-flight cap by this (a success adds one).
_DECREASE: Final = 0.85
#: Weight of the newest answer in a project's throttling pressure (an exponential average).
_PRESSURE_WEIGHT: Final = 0.2
#: Pressure at which a project pauses: nearly every recent answer was throttled.
_PAUSE_PRESSURE: Final = 0.9
#: A project throttled again and again pauses for at most ``throttling.initial * 2**(n-1)``.
_MAX_PAUSE_STEPS: Final = 3

#: Marks a drained target source (None cannot: it is a possible, wrong, target value).
_EXHAUSTED: Final = object()


class _ProjectGate:
    """One project's adaptive limit: a cool-down after throttling, and an in-flight cap that
    halves on throttling and grows by one per success, up to ``max_limit``."""

    __slots__ = ("in_flight", "limit", "max_limit", "pressure", "strikes", "until", "waiters")

    def __init__(self, max_limit: int) -> None:
        self.max_limit = max_limit
        self.limit = float(max_limit)
        self.in_flight = 0
        self.strikes = 0  # cool-downs in a row, for their growth
        self.pressure = 0.0
        self.until = 0.0
        self.waiters: deque[asyncio.Future[None]] = deque()

    def open(self, now: float) -> bool:
        """Whether a send to this project could start right now."""
        return now >= self.until and self.in_flight < int(self.limit)

    def wake(self) -> None:
        free = int(self.limit) - self.in_flight
        while free > 0 and self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1


class FanoutLimits:
    """The bounds of one fan-out: ``concurrency`` sends in flight overall, and each project's gate.

    Shared by the workers and, in a scan, by the discovery calls, so every request of the
    fan-out counts against the same bounds and the same backpressure.
    """

    def __init__(
        self,
        concurrency: int,
        per_project: int | None,
        *,
        monotonic: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        backoff: Backoff,
        uniform: Callable[[float, float], float],
    ) -> None:
        self.concurrency = concurrency
        self.per_project = per_project
        self.in_flight = asyncio.Semaphore(concurrency)
        self.gates: dict[str, _ProjectGate] = {}
        self._monotonic = monotonic
        self._sleep = sleep
        self._backoff = backoff
        self._uniform = uniform

    def gate(self, project: str) -> _ProjectGate:
        gate = self.gates.get(project)
        if gate is None:
            gate = self.gates[project] = _ProjectGate(self.per_project or self.concurrency)
        return gate

    def open(self, project: str) -> bool:
        """Whether ``project`` could take another send now (no cool-down, under its limit)."""
        gate = self.gates.get(project)
        return gate is None or gate.open(self._monotonic())

    def limit(self, project: str) -> _Slot:
        """The async context to hold around one send to ``project`` (the pipeline's limiter)."""
        return _Slot(self, self.gate(project))

    def observe(self, project: str, error: SlsError | None) -> None:
        """Feed one attempt's outcome back into ``project``'s gate.

        Each throttled answer takes 15% off the project's in-flight cap and each success adds
        one back, so a project throttled now and then settles at a lower rate and regains its
        cap as it recovers. ``pressure`` is the share of recent answers that were throttled (an
        exponential average); when nearly all of them are, the project pauses for a jittered
        cool-down that grows while the throttling lasts.
        """
        gate = self.gate(project)
        throttled = isinstance(error, ThrottlingError)
        if not throttled and error is not None:
            return  # neither a success nor throttling: says nothing about the quota
        gate.pressure += _PRESSURE_WEIGHT * ((1.0 if throttled else 0.0) - gate.pressure)
        if throttled:
            gate.limit = max(1.0, gate.limit * _DECREASE)
            now = self._monotonic()
            if gate.pressure >= _PAUSE_PRESSURE and now >= gate.until:
                gate.strikes = min(gate.strikes + 1, _MAX_PAUSE_STEPS)
                # Jittered, so the workers waiting at the gate do not all come back at once.
                ceiling = self._backoff.ceiling(gate.strikes)
                gate.until = now + self._uniform(ceiling / 2, ceiling)
        elif gate.strikes or gate.limit < gate.max_limit:
            if gate.pressure < _PAUSE_PRESSURE / 2:
                gate.strikes = 0
            gate.limit = min(float(gate.max_limit), gate.limit + 1.0)
            gate.wake()

    async def acquire(self, gate: _ProjectGate) -> None:
        while True:
            wait = gate.until - self._monotonic()
            if wait > 0:
                await self._sleep(wait)
                continue
            if gate.in_flight < int(gate.limit):
                break
            waiter = asyncio.get_running_loop().create_future()
            gate.waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done():
                    waiter.cancel()
        gate.in_flight += 1
        try:
            await self.in_flight.acquire()
        except BaseException:
            self.release(gate, global_slot=False)
            raise

    def release(self, gate: _ProjectGate, *, global_slot: bool = True) -> None:
        gate.in_flight -= 1
        gate.wake()
        if global_slot:
            self.in_flight.release()


class _Slot:
    """``async with limits.limit(project):`` around one send."""

    __slots__ = ("_gate", "_limits")

    def __init__(self, limits: FanoutLimits, gate: _ProjectGate) -> None:
        self._limits = limits
        self._gate = gate

    async def __aenter__(self) -> None:
        limits, gate = self._limits, self._gate
        # The common case, inline: no cool-down, room in the project and overall.
        if (
            gate.in_flight < int(gate.limit)
            and not limits.in_flight.locked()
            and gate.until <= limits._monotonic()
        ):
            gate.in_flight += 1
            await limits.in_flight.acquire()  # a slot is free: returns without suspending
            return
        await limits.acquire(gate)

    async def __aexit__(self, *exc: object) -> None:
        self._limits.release(self._gate)


class _Pool(Generic[R]):
    """The worker side of a stream. It never references the stream itself, so a consumer that
    drops the stream (``break`` out of ``async for``) lets it be collected, which cancels us."""

    def __init__(
        self,
        job: Job[R],
        targets: Iterable[CheckpointTarget] | AsyncIterable[CheckpointTarget],
        limits: FanoutLimits,
    ) -> None:
        self.job = job
        self.sync_source: Iterator[CheckpointTarget] | None = None
        self.async_source: AsyncIterator[CheckpointTarget] | None = None
        if isinstance(targets, AsyncIterable):
            self.async_source = aiter(targets)
        else:
            self.sync_source = iter(targets)
        self.source_lock = asyncio.Lock()
        self.concurrency = limits.concurrency
        self.limits = limits
        self.workers: set[asyncio.Task[None]] = set()
        self.alive = 0
        self.error: BaseException | None = None
        # Results not yet taken by the consumer: at most ``concurrency`` before workers wait.
        self.ready: deque[R] = deque()
        self.consumer_waiter: asyncio.Future[None] | None = None
        self.space_waiters: deque[asyncio.Future[None]] = deque()
        # Targets set aside while their project cools down or is at its limit.
        self.parked: dict[str, deque[CheckpointTarget]] = {}
        self.n_parked = 0
        self.park_limit = 4 * self.concurrency

    def start(self) -> None:
        for _ in range(self.concurrency):
            task = asyncio.create_task(self.work())
            self.workers.add(task)
            self.alive += 1
            task.add_done_callback(self.on_done)

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

    async def next_target(self) -> object:
        """The source's next item, or ``_EXHAUSTED`` (not None: a None target is a caller's bug
        and must say so, not end the stream early)."""
        if self.sync_source is not None:
            return next(self.sync_source, _EXHAUSTED)
        assert self.async_source is not None
        async with self.source_lock:
            try:
                return await anext(self.async_source)
            except StopAsyncIteration:
                return _EXHAUSTED

    def take_parked(self, *, any_project: bool = False) -> CheckpointTarget | None:
        """A parked target whose project is open (or any, once nothing else is left)."""
        for project, queue in self.parked.items():
            if any_project or self.limits.open(project):
                target = queue.popleft()
                if not queue:
                    del self.parked[project]
                self.n_parked -= 1
                return target
        return None

    async def next_to_run(self) -> CheckpointTarget | None:
        """The next target to work on, or None when everything is done.

        A target whose project is closed (cooling down, or at its in-flight limit) is parked
        and another is taken, so one busy project does not stall workers that could serve the
        others. When the park is full or the source dry, a parked target is run anyway: its
        sends then wait at its project's gate.
        """
        while True:
            if self.parked and (target := self.take_parked()) is not None:
                return target
            item = await self.next_target()
            if item is _EXHAUSTED:
                return self.take_parked(any_project=True)
            if self.admit(item):
                return item

    def next_sync(self) -> CheckpointTarget | None:
        """:meth:`next_to_run` for a plain iterable source, without a coroutine per target."""
        assert self.sync_source is not None
        while True:
            if self.parked and (target := self.take_parked()) is not None:
                return target
            item = next(self.sync_source, _EXHAUSTED)
            if item is _EXHAUSTED:
                return self.take_parked(any_project=True)
            if self.admit(item):
                return item

    def admit(self, item: object) -> TypeGuard[CheckpointTarget]:
        """Whether to run ``item`` now; if not, it is parked until its project opens."""
        if not isinstance(item, CheckpointTarget):
            raise TypeError(f"fan-out targets must be CheckpointTarget, not {type(item).__name__}")
        if self.n_parked >= self.park_limit or self.limits.open(item.project):
            return True
        self.parked.setdefault(item.project, deque()).append(item)
        self.n_parked += 1
        return False

    async def work(self) -> None:
        sync = self.sync_source is not None
        while (target := self.next_sync() if sync else await self.next_to_run()) is not None:
            result = await self.job(target, self.limits)
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


def check_concurrency(concurrency: object, per_project_concurrency: object) -> None:
    """Refuse bounds that are not positive ints (before anything starts)."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be an int >= 1, not {concurrency!r}")
    if per_project_concurrency is not None and (
        isinstance(per_project_concurrency, bool)
        or not isinstance(per_project_concurrency, int)
        or per_project_concurrency < 1
    ):
        raise ValueError(
            f"per_project_concurrency must be an int >= 1 or None, not {per_project_concurrency!r}"
        )


def new_limits(pipeline: Pipeline, concurrency: int, per_project_concurrency: int | None) -> FanoutLimits:
    """The bounds of one fan-out, paced by the pipeline's clock and throttling backoff."""
    check_concurrency(concurrency, per_project_concurrency)
    return FanoutLimits(
        concurrency,
        per_project_concurrency,
        monotonic=pipeline.monotonic,
        sleep=pipeline.sleep,
        backoff=pipeline.retry.throttling,
        uniform=pipeline.rng.uniform,
    )


class ResultStream(AsyncIterator[R]):
    """The async iterator of a fan-out: one result per target, in completion order.

    Use it in ``async for``; leaving the loop early cancels the remaining work. For prompt,
    deterministic cleanup (every worker finished when the block ends), also use it as a
    context manager::

        async with svc.get_checkpoints_many(targets) as results:
            async for result in results:
                ...
    """

    def __init__(
        self,
        job: Job[R],
        targets: Iterable[CheckpointTarget] | AsyncIterable[CheckpointTarget],
        limits: FanoutLimits,
        *,
        extra_results: deque[R] | None = None,
    ) -> None:
        self._pool = _Pool(job, targets, limits)
        self._started = False
        self._closed = False
        self._drained = False
        self._extra: deque[R] = extra_results if extra_results is not None else deque()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> R:
        if self._closed:
            if self._drained and self._extra:  # failures found while the last targets were read
                return self._extra.popleft()
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
                self._drained = True
                await self.aclose()
                if self._extra:
                    return self._extra.popleft()
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


def checkpoints_job(pipeline: Pipeline, retry: RetryPolicy | None) -> Job[CheckpointResult]:
    """GetCheckPoint for one target; its SlsError (a bad name included) is its result."""

    async def job(target: CheckpointTarget, limits: FanoutLimits) -> CheckpointResult:
        try:
            op = _sansio.get_checkpoint(target.project, target.logstore, target.consumer_group, target.shard)
            checkpoints = await pipeline.call(
                op, _sansio.parse_checkpoints, retry=retry, limiter=limits.limit, observe=limits.observe
            )
        except SlsError as exc:
            return CheckpointResult(target, error=exc)
        return CheckpointResult(target, tuple(checkpoints))

    return job


class CheckpointStream(ResultStream[CheckpointResult]):
    """What :meth:`CheckpointService.get_checkpoints_many` and ``scan`` return."""


class LagStream(ResultStream[LagResult]):
    """What :meth:`CheckpointService.get_lag_many` and ``scan_lag`` return."""
