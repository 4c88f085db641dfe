"""Background sweeps: every ``interval``, read every source's lag, judge it, render it once.

A :class:`Source` is an injected async ``sweep()`` returning one sweep's ``LagResult``s (the
service's ``scan_lag`` in production, a fake in tests), so everything here runs without a
network. Failures stay where they happen: a failed project (or logstore) sets its own ``up`` to 0
and its groups to ERR; a failed source marks only its own projects. Scrapes never wait for a
sweep: :attr:`Exporter.rendered` holds the last completed sweep's bytes.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

import attrs

from .._text import safe_text
from ..errors import NotFoundError, SlsError
from ..health import GroupHealth, Health, HealthEvaluator
from ..models import CheckpointTarget, GroupLag, LagResult
from .metrics import CHUNK, DURATION_BUCKETS, GroupRow, Rendered, ShardRow, Slicer, Snapshot, render

__all__ = ["Exporter", "Source", "SweepStats"]

log = logging.getLogger("aiosls.exporter")

SweepFn = Callable[[], Awaitable[Sequence[LagResult]]]
CountsFn = Callable[[], Mapping[tuple[str, str], int]]
_NAMES: Final = tuple(h.name for h in sorted(Health))
#: With ``freeze_gc``: a full collection runs once the frozen objects grew by this factor
#: over what was alive after the first sweep (or the last full collection).
FULL_GC_GROWTH: Final = 2.0


def _no_counts() -> Mapping[tuple[str, str], int]:
    return {}


@attrs.frozen
class Source:
    """One set of projects swept together (one endpoint and its credentials in production).

    :param sweep: returns one sweep's results; discovery failures are results whose target has
        an empty ``consumer_group`` (and an empty ``logstore`` for a whole project).
    :param labels: extra labels added to every series of this source.
    :param request_counts: cumulative requests per (operation, outcome), for
        ``aiosls_exporter_requests_total``.
    """

    projects: tuple[str, ...]
    sweep: SweepFn
    labels: Mapping[str, str] = attrs.field(factory=dict)
    request_counts: CountsFn = _no_counts


@attrs.frozen
class SweepStats:
    """What one sweep found, for its log line and for tests."""

    groups: int
    not_ok: int
    errors: int
    projects_up: int
    projects: int
    duration: float
    series: int


class Exporter:
    """Runs the sweeps and keeps the last completed one rendered.

    :param interval: seconds between sweep starts; a sweep slower than that skips the beats it
        overran instead of starting late sweeps back to back.
    :param allowed_lag, window, stop_after: the :class:`~aiosls.health.HealthEvaluator`'s.
    :param granularity: ``"shard"`` exposes per-shard series too; ``"group"`` only per-group ones.
    :param freeze_gc: for a process that runs only the exporter. A sweep allocates ~10^6
        objects at 10,000 groups; the collector's automatic full collections would then scan
        them all in one stop-the-loop pause (~0.5 s) that scrapes wait behind. With this flag
        automatic collection is off while a sweep runs and what is alive at its end is frozen
        (``gc.freeze()``): a sweep's garbage is freed by reference counting (it has no cycles:
        ``gc.collect()`` finds none after a sweep). Should cycles appear after all, frozen
        objects grow, and once they grew by :data:`FULL_GC_GROWTH` one full collection runs
        between sweeps, so memory stays bounded.
    :param clock: wall clock (Unix seconds) for ``aiosls_exporter_last_sweep_timestamp_seconds``;
        ``monotonic`` and ``sleep`` pace the sweeps (injected so tests run without waiting).
    """

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        interval: float = 60.0,
        allowed_lag: float = 60.0,
        window: int = 10,
        stop_after: float | None = None,
        granularity: str = "shard",
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        chunk: int = CHUNK,
        freeze_gc: bool = False,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._sources = tuple(sources)
        self._interval = interval
        self._granularity = granularity
        self._evaluators = [
            HealthEvaluator(allowed_lag=allowed_lag, window=window, stop_after=stop_after) for _ in sources
        ]
        self._known: list[set[CheckpointTarget]] = [set() for _ in sources]
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._chunk = chunk
        self._freeze_gc = freeze_gc
        self._frozen_after_full = 0
        #: With ``freeze_gc``: full collections run so far.
        self.full_collections = 0
        self._errors: Counter[tuple[tuple[str, str], ...]] = Counter()
        self._buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self._duration_sum = 0.0
        #: The last completed sweep's responses; None until :meth:`prime` or a first sweep.
        self.rendered: Rendered | None = None
        self.snapshot: Snapshot | None = None
        self.sweeps = 0
        #: Beats skipped because a sweep overran the interval.
        self.skipped = 0

    @property
    def sources(self) -> tuple[Source, ...]:
        """What each sweep reads."""
        return self._sources

    # --- one sweep ------------------------------------------------------------------------------

    async def sweep_once(self) -> SweepStats:
        """Sweep every source (concurrently), judge, render, and publish the result."""
        if not self._freeze_gc or not gc.isenabled():
            return await self._sweep_once()
        gc.disable()
        try:
            return await self._sweep_once()
        finally:
            self._freeze()
            gc.enable()

    def _freeze(self) -> None:
        """Freeze what survived the sweep; collect fully when the frozen set has grown."""
        gc.freeze()
        if not self._frozen_after_full:  # the first sweep: what is alive now is the baseline
            self._frozen_after_full = gc.get_freeze_count()
        elif gc.get_freeze_count() > self._frozen_after_full * FULL_GC_GROWTH:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._frozen_after_full = gc.get_freeze_count()
            self.full_collections += 1

    async def _sweep_once(self) -> SweepStats:
        started = self._monotonic()
        collected: list[tuple[list[GroupRow], list[tuple[dict[str, str], int]]]] = [
            ([], []) for _ in self._sources
        ]
        async with asyncio.TaskGroup() as tg:
            for i in range(len(self._sources)):
                tg.create_task(self._sweep_source(i, collected[i]))
        groups = [row for rows, _ in collected for row in rows]
        up = [item for _, ups in collected for item in ups]
        requests: Counter[tuple[str, str]] = Counter()
        for source in self._sources:
            requests.update(source.request_counts())
        duration = self._monotonic() - started
        self._observe_duration(duration)
        snap = self._snapshot(groups, up, requests, self._clock())
        rendered = await render(snap, chunk=self._chunk)
        self.snapshot, self.rendered = snap, rendered
        self.sweeps += 1
        named = [g for g in groups if g.labels.get("consumer_group")]  # not a failed scope's row
        stats = SweepStats(
            groups=len(named),
            not_ok=sum(1 for g in named if g.status != Health.OK),
            errors=sum(1 for g in named if g.status == Health.ERR),
            projects_up=sum(1 for _, v in up if v),
            projects=len(up),
            duration=duration,
            series=rendered.series,
        )
        log.info(
            "sweep %d: %d groups (%d not OK, %d ERR), %d/%d projects up, %.2f s, %d series",
            self.sweeps,
            stats.groups,
            stats.not_ok,
            stats.errors,
            stats.projects_up,
            stats.projects,
            stats.duration,
            stats.series,
        )
        return stats

    def _observe_duration(self, duration: float) -> None:
        first = bisect.bisect_left(DURATION_BUCKETS, duration)
        for i in range(first, len(self._buckets)):
            self._buckets[i] += 1
        self._duration_sum += duration

    async def prime(self) -> None:
        """Render the state before any sweep (the exporter's own families, no samples of lag),
        so ``/metrics`` answers 200 from the start; ``/healthz`` stays 503 until a sweep."""
        if self.rendered is None:
            snap = self._snapshot([], [], {}, None)
            self.rendered = await render(snap, chunk=self._chunk)

    def _snapshot(
        self,
        groups: list[GroupRow],
        up: list[tuple[dict[str, str], int]],
        requests: Mapping[tuple[str, str], int],
        timestamp: float | None,
    ) -> Snapshot:
        return Snapshot(
            groups=groups,
            up=up,
            requests=dict(requests),
            errors=[(dict(key), n) for key, n in sorted(self._errors.items())],
            duration_buckets=tuple(self._buckets),
            duration_sum=self._duration_sum,
            last_sweep_timestamp=timestamp,
            granularity=self._granularity,
            names=_NAMES,
        )

    async def _sweep_source(
        self, index: int, out: tuple[list[GroupRow], list[tuple[dict[str, str], int]]]
    ) -> None:
        source = self._sources[index]
        extra = dict(source.labels)
        results: Sequence[LagResult]
        try:
            results = await source.sweep()
        except SlsError as exc:
            results = [LagResult(CheckpointTarget(p, "", ""), error=exc) for p in source.projects]
        except Exception as exc:  # a bug or an unexpected failure: this source only, loudly
            log.exception("sweep of projects %s failed", ", ".join(source.projects))
            wrapped = SlsError(f"sweep failed: {type(exc).__name__}", error_code=type(exc).__name__)
            results = [LagResult(CheckpointTarget(p, "", ""), error=wrapped) for p in source.projects]
        rows, up = out
        slicer = Slicer()
        group_results: list[LagResult] = []
        scope_failures: list[LagResult] = []
        # Per project: [groups read, groups failed]; a project with a scope failure is down.
        tally: dict[str, list[int]] = {p: [0, 0] for p in source.projects}
        down: set[str] = set()
        for r in results:
            project = r.target.project
            counts = tally.setdefault(project, [0, 0])
            if r.target.consumer_group:
                group_results.append(r)
                counts[0] += 1
                counts[1] += r.error is not None
            else:
                scope_failures.append(r)
                down.add(project)
                where = f"{project}/{r.target.logstore}" if r.target.logstore else project
                log.warning("%s could not be read: %s", safe_text(where), safe_text(r.error))
            if r.error is not None:
                code = safe_text(r.error.error_code or type(r.error).__name__, 64)
                self._errors[tuple(sorted({**extra, "project": project, "error_code": code}.items()))] += 1
            await slicer.tick()
        # Groups known from the last sweep inside a scope that failed now: ERR, not vanished
        # (unless the scope is gone for good: NotFound).
        seen = {r.target for r in group_results}
        carried: list[LagResult] = []
        failed_scopes = {
            (f.target.project, f.target.logstore): f.error
            for f in scope_failures
            if not isinstance(f.error, NotFoundError)
        }
        if failed_scopes:
            for t in self._known[index]:
                error = failed_scopes.get((t.project, "")) or failed_scopes.get((t.project, t.logstore))
                if error is not None and t not in seen:
                    carried.append(LagResult(t, error=error))
        # HealthEvaluator.observe_all, spread over the loop: ~100 µs a group is a second for
        # 10,000 groups, which scrapes must not wait behind. Then forget the groups gone.
        evaluator = self._evaluators[index]
        observed = [*group_results, *carried]
        lags: dict[CheckpointTarget, GroupLag] = {r.target: r.lag for r in group_results if r.lag is not None}
        broken = 0
        for r in observed:
            try:
                verdict = evaluator.observe(r)
            except Exception:  # a bug judging one group must not take the whole fleet's metrics
                if not broken:
                    log.exception("judging %s failed", safe_text(str(r.target)))
                broken += 1
                verdict = GroupHealth(r.target, Health.ERR, (), None, "internal error (see the log)")
            rows.append(self._row(verdict, lags.get(r.target), extra))
            await slicer.tick()
        if broken > 1:
            log.error("judging failed for %d groups in all (first one logged above)", broken)
        current = {r.target for r in observed if not isinstance(r.error, NotFoundError)}
        for gone in self._known[index] - current:
            evaluator.forget(gone)
        self._known[index] = current
        for failure in scope_failures:
            assert failure.error is not None
            t = failure.target
            code = safe_text(failure.error.error_code or type(failure.error).__name__, 64)
            what = f"logstore {t.logstore}" if t.logstore else "project"
            rows.append(
                GroupRow(
                    labels={**extra, "project": t.project, "logstore": t.logstore, "consumer_group": ""},
                    status=Health.ERR,
                    max_lag_seconds=None,
                    unassigned_shards=None,
                    reason=f"{what} could not be read ({code})",
                )
            )
        # up: 0 when the project (or one of its logstores) could not be listed, or when every
        # group of it failed; 1 otherwise.
        for project, (read, failed) in tally.items():
            all_failed = read > 0 and failed == read
            up.append(({**extra, "project": project}, 0 if project in down or all_failed else 1))

    @staticmethod
    def _row(verdict: GroupHealth, lag: GroupLag | None, extra: Mapping[str, str]) -> GroupRow:
        t = verdict.target
        ages = {s.shard: s.commit_age_seconds for s in lag.shards} if lag is not None else {}
        return GroupRow(
            labels={
                **extra,
                "project": t.project,
                "logstore": t.logstore,
                "consumer_group": t.consumer_group,
            },
            status=int(verdict.status),
            max_lag_seconds=verdict.max_lag_seconds,
            unassigned_shards=lag.unassigned_shards if lag is not None else None,
            shards=tuple(
                ShardRow(s.shard, int(s.status), s.lag_seconds, ages.get(s.shard)) for s in verdict.shards
            ),
            reason=verdict.reason,
        )

    # --- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Sweep every ``interval`` until cancelled; an overrun skips beats, never piles up."""
        next_at = self._monotonic()
        while True:
            try:
                await self.sweep_once()
            except Exception:
                # A bug: log it and keep serving the last sweep (its age shows in
                # aiosls_exporter_last_sweep_timestamp_seconds); try again on the next beat.
                log.exception("sweep failed")
            next_at += self._interval
            now = self._monotonic()
            if now > next_at:
                missed = math.ceil((now - next_at) / self._interval)
                self.skipped += missed
                next_at += missed * self._interval
                log.warning(
                    "sweep took longer than the interval (%.1f s): skipped %d beat(s)", self._interval, missed
                )
            await self._sleep(next_at - now)
