"""Lag sweeps: how far behind each consumer group is, per shard (SLS's "consumption delay").

A shard's lag is the receive time of its newest data minus the receive time of the last data
the group consumed; a group's lag is the maximum over its shards (SLS help: "View the status
of a consumer group"). The checkpoint is the cursor of the *next* package to read, so the last
consumed package is the one just before it: its time is GetCursorTime of ``checkpoint - 1``
(cursors are base64 of a decimal integer). The newest data's time is GetCursorTime of ``end -
1``. A checkpoint equal to the end cursor is caught up (lag 0), however long ago the last write.

Call economy, because read quota is what runs out at fleet scale:

- within one sweep (:class:`LagSweep`) the end cursor and its time are fetched once per
  (project, logstore, shard) and shared by every group on that logstore; concurrent asks for
  the same key wait on one fetch;
- a cursor's receive time never changes, so :class:`CursorTimeCache` (bounded LRU, owned by the
  service) remembers it across sweeps: a repeated sweep re-asks only for checkpoints that moved.

For G groups over L logstores of S shards a first sweep sends at most ``G + 2*L*S + G*S``
requests and a repeated one with unchanged checkpoints at most ``G + 2*L*S`` (GetCursor ``end``
is always asked; its time only when the end moved). Expired checkpoints cost two more
requests per shard (the oldest data's cursor and time).
"""

from __future__ import annotations

import asyncio
import base64
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, TypeVar

from . import _sansio
from ._http import HttpResponse
from .errors import SlsError
from .health import decode_cursor
from .models import CheckpointTarget, GroupLag, LagResult, ShardCheckpoint, ShardLag

if TYPE_CHECKING:
    from ._pipeline import Pipeline
    from .fanout import FanoutLimits
    from .retry import RetryPolicy

__all__ = [
    "DEFAULT_CURSOR_TIME_CACHE",
    "CursorTimeCache",
    "LagSweep",
    "previous_cursor",
]

_P = TypeVar("_P")

#: Cursor times remembered by default: a 2,000-group fleet of 4 shards needs ~10,000.
DEFAULT_CURSOR_TIME_CACHE: Final = 100_000
#: Shards of one group measured at once (each shard is a few requests).
_SHARDS_AT_ONCE: Final = 8


def previous_cursor(cursor: str) -> str | None:
    """The cursor just before ``cursor`` (of the last package read before it), or None."""
    value = decode_cursor(cursor)
    if value is None or value == 0:
        return None
    return base64.b64encode(str(value - 1).encode("ascii")).decode("ascii")


def _is_invalid_cursor(error: SlsError) -> bool:
    return (error.error_code or "").casefold() == "invalidcursor"


def _time(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class CursorTimeCache:
    """A bounded LRU of ``(project, logstore, shard, cursor) -> receive time`` (unix seconds)."""

    def __init__(self, size: int = DEFAULT_CURSOR_TIME_CACHE) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"cursor_time_cache must be an int >= 0, not {size!r}")
        self.size = size
        self._times: OrderedDict[tuple[str, str, int, str], int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._times)

    def get(self, key: tuple[str, str, int, str]) -> int | None:
        seconds = self._times.get(key)
        if seconds is not None:
            self._times.move_to_end(key)
        return seconds

    def put(self, key: tuple[str, str, int, str], seconds: int) -> None:
        if self.size == 0:
            return
        self._times[key] = seconds
        self._times.move_to_end(key)
        while len(self._times) > self.size:
            self._times.popitem(last=False)


class _Edge:
    """A shard's end (or begin) cursor and the receive time of the package next to it."""

    __slots__ = ("cursor", "seconds")

    def __init__(self, cursor: str, seconds: int | None) -> None:
        self.cursor = cursor
        self.seconds = seconds


_RETRY: Final = object()


class LagSweep:
    """One sweep's shared state: the shards' end cursors, fetched once per sweep.

    ``job`` is the fan-out's per-target function; :meth:`group_lag` measures one group.
    """

    def __init__(
        self, pipeline: Pipeline, cursor_times: CursorTimeCache, *, retry: RetryPolicy | None
    ) -> None:
        self._pipeline = pipeline
        self._times = cursor_times
        self._retry = retry
        self._edges: dict[tuple[str, str, int, str], asyncio.Future[object]] = {}

    async def job(self, target: CheckpointTarget, limits: FanoutLimits) -> LagResult:
        """The lag of one fan-out target; its SlsError (a bad name included) is its result."""
        try:
            lag = await self.group_lag(target, limits)
        except SlsError as exc:
            return LagResult(target, error=exc)
        return LagResult(target, lag)

    async def group_lag(self, target: CheckpointTarget, limits: FanoutLimits | None = None) -> GroupLag:
        """Read ``target``'s checkpoints and measure every shard's lag.

        :raises SlsError: the checkpoints, a cursor or a cursor time could not be read.
        """
        op = _sansio.get_checkpoint(target.project, target.logstore, target.consumer_group, target.shard)
        checkpoints = await self._call(op, _sansio.parse_checkpoints, limits)
        as_of = self._pipeline.now()
        shards: list[ShardLag] = []
        for start in range(0, len(checkpoints), _SHARDS_AT_ONCE):
            batch = checkpoints[start : start + _SHARDS_AT_ONCE]
            if len(batch) == 1:
                shards.append(await self._shard_lag(target, batch[0], as_of, limits))
            else:
                shards.extend(
                    await asyncio.gather(*(self._shard_lag(target, cp, as_of, limits) for cp in batch))
                )
        return GroupLag(target, tuple(shards), as_of)

    def _call(
        self, op: _sansio.Operation, parse: Callable[[HttpResponse], _P], limits: FanoutLimits | None
    ) -> Awaitable[_P]:
        if limits is None:
            return self._pipeline.call(op, parse, retry=self._retry)
        return self._pipeline.call(op, parse, retry=self._retry, limiter=limits.limit, observe=limits.observe)

    async def _shard_lag(
        self, target: CheckpointTarget, cp: ShardCheckpoint, as_of: datetime, limits: FanoutLimits | None
    ) -> ShardLag:
        project, logstore, shard = target.project, target.logstore, cp.shard
        end = await self._edge(project, logstore, shard, "end", limits)
        latest = end.seconds
        committed = cp.checkpoint != ""
        update_time = cp.update_time if committed and cp.update_time_us > 0 else None
        commit_age = None if update_time is None else max(0.0, (as_of - update_time).total_seconds())
        consumed: int | None = None
        expired = caught_up = False
        if not committed:
            lag: float | None = None
        elif cp.checkpoint == end.cursor:
            caught_up = True
            consumed = latest
            lag = 0.0
        else:
            consumed, expired, caught_up = await self._consumed(
                project, logstore, shard, cp.checkpoint, end, limits
            )
            if caught_up:
                consumed = latest
            lag = 0.0 if latest is None or consumed is None else float(max(0, latest - consumed))
        return ShardLag(
            shard=shard,
            checkpoint=cp.checkpoint,
            consumer=cp.consumer,
            update_time=update_time,
            consumed_time=_time(consumed),
            latest_time=_time(latest),
            lag_seconds=lag,
            commit_age_seconds=commit_age,
            expired=expired,
            caught_up=caught_up,
        )

    async def _consumed(
        self,
        project: str,
        logstore: str,
        shard: int,
        checkpoint: str,
        end: _Edge,
        limits: FanoutLimits | None,
    ) -> tuple[int | None, bool, bool]:
        """(receive time of the last consumed package, expired, caught up) for a checkpoint
        that is not the end cursor."""
        before = previous_cursor(checkpoint)
        if before is not None:
            try:
                return await self._cursor_time(project, logstore, shard, before, limits), False, False
            except SlsError as exc:
                if not _is_invalid_cursor(exc):
                    raise
        # The package before the checkpoint is not there: the checkpoint is at or before the
        # oldest retained data (a reprocess from the beginning, or data the TTL deleted), or
        # past the end. Measure from the oldest data rather than silently snapping to it.
        value, end_value = decode_cursor(checkpoint), decode_cursor(end.cursor)
        if value is not None and end_value is not None and value >= end_value:
            return None, False, True
        begin = await self._edge(project, logstore, shard, "begin", limits)
        begin_value = decode_cursor(begin.cursor)
        expired = value is not None and begin_value is not None and value < begin_value
        # begin == end: every package expired (or none was written): nothing is left to read.
        return begin.seconds, expired, begin.cursor == end.cursor

    async def _edge(
        self, project: str, logstore: str, shard: int, where: str, limits: FanoutLimits | None
    ) -> _Edge:
        """The shard's ``end`` (newest package) or ``begin`` (oldest package), once per sweep."""
        key = (project, logstore, shard, where)
        while True:
            future = self._edges.get(key)
            if future is None:
                break
            result = await asyncio.shield(future)
            if result is not _RETRY:
                assert isinstance(result, _Edge)
                return result
        future = asyncio.get_running_loop().create_future()
        self._edges[key] = future
        try:
            edge = await self._fetch_edge(project, logstore, shard, where, limits)
        except SlsError as exc:
            del self._edges[key]  # the next group asks again: one failure is not cached
            future.set_exception(exc)
            future.exception()  # retrieved: waiters (if any) re-raise it as their own result
            raise
        except BaseException:
            del self._edges[key]
            future.set_result(_RETRY)  # cancelled: a waiter fetches it itself
            raise
        future.set_result(edge)
        return edge

    async def _fetch_edge(
        self, project: str, logstore: str, shard: int, where: str, limits: FanoutLimits | None
    ) -> _Edge:
        op = _sansio.get_cursor(project, logstore, shard, where)
        cursor = await self._call(op, _sansio.parse_cursor, limits)
        # The newest package is the one before the end cursor; the oldest is at begin.
        at = previous_cursor(cursor) if where == "end" else cursor
        if at is None:
            return _Edge(cursor, None)
        try:
            seconds = await self._cursor_time(project, logstore, shard, at, limits)
        except SlsError as exc:
            if not _is_invalid_cursor(exc):
                raise
            seconds = None  # an empty shard: nothing before its end cursor
        return _Edge(cursor, seconds)

    async def _cursor_time(
        self, project: str, logstore: str, shard: int, cursor: str, limits: FanoutLimits | None
    ) -> int:
        key = (project, logstore, shard, cursor)
        seconds = self._times.get(key)
        if seconds is None:
            op = _sansio.get_cursor_time(project, logstore, shard, cursor)
            seconds = await self._call(op, _sansio.parse_cursor_time, limits)
            self._times.put(key, seconds)
        return seconds
