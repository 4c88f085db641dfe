"""What an operator triages on: a status per consumer group, ages, and JSON rows (pure).

:func:`evaluate` is the one place a result becomes a status; today it is commit age alone, and
the lag and health verdicts replace it there. Everything else (tables, ``--problems``, sorting,
JSON) reads :class:`GroupView`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import attrs

from ..errors import SlsError
from ..models import CheckpointResult, ShardCheckpoint

__all__ = [
    "GroupView",
    "Status",
    "checkpoint_dict",
    "error_dict",
    "evaluate",
    "group_dict",
    "human_age",
    "shard_status",
    "worst_first",
]


class Status(enum.StrEnum):
    """A consumer group's (or shard's) state; the value is what JSON carries."""

    ERROR = "error"  # could not be read
    STALE = "stale"  # the newest commit is older than --stale-after
    NEVER_COMMITTED = "never_committed"  # no shard was ever committed
    PARTIAL = "partial"  # some shards were never committed
    UNASSIGNED = "unassigned"  # committed, but no consumer holds any shard
    OK = "ok"

    @property
    def label(self) -> str:
        """The table's word: upper case for what needs attention first."""
        return _LABELS[self]

    @property
    def severity(self) -> int:
        """0 is the worst; tables sort on it."""
        return _SEVERITY[self]


_LABELS: Final = {
    Status.ERROR: "ERROR",
    Status.STALE: "STALE",
    Status.NEVER_COMMITTED: "never committed",
    Status.PARTIAL: "partial",
    Status.UNASSIGNED: "unassigned",
    Status.OK: "ok",
}
_SEVERITY: Final = {status: rank for rank, status in enumerate(Status)}


def _age(when: datetime, now: datetime) -> float:
    """Seconds from ``when`` to ``now``, never negative (clocks disagree a little)."""
    return max(0.0, round((now - when).total_seconds(), 3))


@attrs.frozen
class GroupView:
    """One scan result with its status and ages, as every output format shows it."""

    result: CheckpointResult
    status: Status
    #: The newest commit over the group's shards (None if none was ever committed).
    last_commit_time: datetime | None
    last_commit_age_seconds: float | None
    #: The oldest commit over committed shards: a stuck shard behind fresh ones shows here.
    oldest_commit_age_seconds: float | None

    @property
    def label(self) -> str:
        """The STATUS cell: ``ERROR <code>`` for a failure, else the status word."""
        error = self.result.error
        if error is None:
            return self.status.label
        return f"ERROR {getattr(error, 'error_code', None) or type(error).__name__}"


def evaluate(result: CheckpointResult, now: datetime, *, stale_after: float) -> GroupView:
    """The status of one group from its checkpoints: the swap point for lag-based verdicts."""
    if result.error is not None:
        return GroupView(result, Status.ERROR, None, None, None)
    cps = result.checkpoints or ()
    committed = [cp for cp in cps if cp.committed]
    if not committed:
        return GroupView(result, Status.NEVER_COMMITTED, None, None, None)
    last = max(cp.update_time for cp in committed)
    oldest = min(cp.update_time for cp in committed)
    last_age = _age(last, now)
    if last_age > stale_after:
        status = Status.STALE
    elif len(committed) < len(cps):
        status = Status.PARTIAL
    elif not any(cp.consumer for cp in cps):
        status = Status.UNASSIGNED
    else:
        status = Status.OK
    return GroupView(result, status, last, last_age, _age(oldest, now))


def shard_status(cp: ShardCheckpoint, now: datetime, *, stale_after: float) -> Status:
    """One shard's status for ``aiosls checkpoints``: never committed, STALE, unassigned or ok."""
    if not cp.committed:
        return Status.NEVER_COMMITTED
    if _age(cp.update_time, now) > stale_after:
        return Status.STALE
    return Status.OK if cp.consumer else Status.UNASSIGNED


def worst_first(views: Sequence[GroupView]) -> list[GroupView]:
    """Most severe status first, then the oldest last commit, then by name."""

    def key(v: GroupView) -> tuple[int, float, str, str, str]:
        t = v.result.target
        return (
            v.status.severity,
            -(v.last_commit_age_seconds or 0.0),
            t.project,
            t.logstore,
            t.consumer_group,
        )

    return sorted(views, key=key)


def human_age(seconds: float | None) -> str:
    """``42s``, ``3m12s``, ``5h04m``, ``2d03h``; ``never`` for None."""
    if seconds is None:
        return "never"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def checkpoint_dict(
    cp: ShardCheckpoint, now: datetime, *, stale_after: float | None = None
) -> dict[str, Any]:
    """A shard's checkpoint as JSON: the raw cursor, the update time (ISO 8601 and raw
    microseconds) and its age; with ``stale_after``, the shard's status too."""
    out: dict[str, Any] = {
        "shard": cp.shard,
        "checkpoint": cp.checkpoint,
        "committed": cp.committed,
        "consumer": cp.consumer,
        "update_time": _iso(cp.update_time) if cp.committed else None,
        "update_time_us": cp.update_time_us,
        "commit_age_seconds": _age(cp.update_time, now) if cp.committed else None,
    }
    if stale_after is not None:
        out["status"] = shard_status(cp, now, stale_after=stale_after).value
    return out


def error_dict(error: BaseException) -> dict[str, Any]:
    """An error as JSON: class, code, message, status, request id."""
    if isinstance(error, SlsError):
        return {
            "type": type(error).__name__,
            "code": error.error_code,
            "message": error.message,
            "status": error.status,
            "request_id": error.request_id,
        }
    return {
        "type": type(error).__name__,
        "code": None,
        "message": str(error),
        "status": None,
        "request_id": None,
    }


def group_dict(view: GroupView, now: datetime) -> dict[str, Any]:
    """One scan result as a JSON object (an NDJSON line): names, status, ages, and the
    checkpoints (raw cursors included) or the error."""
    result = view.result
    t = result.target
    out: dict[str, Any] = {
        "project": t.project,
        "logstore": t.logstore,
        "consumer_group": t.consumer_group,
        "shard": t.shard,
        "ok": result.ok,
        "status": view.status.value,
        "last_commit_time": _iso(view.last_commit_time),
        "last_commit_age_seconds": view.last_commit_age_seconds,
        "oldest_commit_age_seconds": view.oldest_commit_age_seconds,
    }
    if result.error is not None:
        out["error"] = error_dict(result.error)
    else:
        cps = result.checkpoints or ()
        out["shards"] = len(cps)
        out["committed_shards"] = sum(cp.committed for cp in cps)
        out["consumers"] = sorted({cp.consumer for cp in cps if cp.consumer})
        out["checkpoints"] = [checkpoint_dict(cp, now) for cp in cps]
    return out
