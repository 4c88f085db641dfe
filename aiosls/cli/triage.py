"""What an operator triages on: a status per consumer group, ages, and JSON rows (pure).

:func:`evaluate` is the one place a lag observation becomes a status: the verdict of
:class:`aiosls.HealthEvaluator` (OK, WARN, STALL, STOP, REWIND, ERR). Everything else (tables,
``--problems``, sorting, JSON) reads :class:`GroupView`. :class:`Status` and
:func:`shard_status` are the commit-age statuses ``aiosls checkpoints`` still shows (it reads
checkpoints only, no lag).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs

from ..errors import SlsError
from ..health import GroupHealth, Health, HealthEvaluator, ShardHealth
from ..models import LagResult, ShardCheckpoint, ShardLag

__all__ = [
    "HEALTH_LABELS",
    "GroupView",
    "Status",
    "checkpoint_dict",
    "error_dict",
    "evaluate",
    "group_dict",
    "human_age",
    "shard_lag_dict",
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


#: The STATUS words, as the table shows them and as JSON carries them (lower case there).
HEALTH_LABELS: Final = {h: h.name for h in Health}


@attrs.frozen
class GroupView:
    """One group's lag observation with its verdict and ages, as every output format shows it."""

    result: LagResult
    health: GroupHealth
    #: The newest commit over the group's shards (None if none was ever committed).
    last_commit_time: datetime | None
    last_commit_age_seconds: float | None
    #: The oldest commit over committed shards: a stuck shard behind fresh ones shows here.
    oldest_commit_age_seconds: float | None

    @property
    def status(self) -> Health:
        """The group's verdict: its worst shard's, or ERR when it could not be read."""
        return self.health.status

    @property
    def lag_seconds(self) -> float | None:
        """The group's lag (the maximum over its shards), None if unknown."""
        return None if self.result.lag is None else self.result.lag.lag_seconds

    @property
    def worst_shard(self) -> int | None:
        """The shard with the largest lag, None if no shard has a lag."""
        return None if self.result.lag is None else self.result.lag.worst_shard

    @property
    def label(self) -> str:
        """The STATUS cell: ``ERR <code>`` for a failure, else the verdict's name."""
        error = self.result.error
        if error is None:
            return HEALTH_LABELS[self.status]
        return f"ERR {getattr(error, 'error_code', None) or type(error).__name__}"


def evaluate(result: LagResult, health: HealthEvaluator) -> GroupView:
    """The status of one group: ``health``'s verdict on this observation (a scan judges one
    observation with ``window=1``; ``aiosls lag --watch`` keeps the window across sweeps)."""
    verdict = health.observe(result)
    if result.lag is None:
        return GroupView(result, verdict, None, None, None)
    shards = result.lag.shards
    updates = [s.update_time for s in shards if s.update_time is not None]
    ages = [s.commit_age_seconds for s in shards if s.commit_age_seconds is not None]
    return GroupView(
        result,
        verdict,
        max(updates) if updates else None,
        round(min(ages), 3) if ages else None,
        round(max(ages), 3) if ages else None,
    )


def shard_status(cp: ShardCheckpoint, now: datetime, *, stale_after: float) -> Status:
    """One shard's status for ``aiosls checkpoints``: never committed, STALE, unassigned or ok."""
    if not cp.committed:
        return Status.NEVER_COMMITTED
    if _age(cp.update_time, now) > stale_after:
        return Status.STALE
    return Status.OK if cp.consumer else Status.UNASSIGNED


def worst_first(views: Sequence[GroupView]) -> list[GroupView]:
    """Worst verdict first (ERR, REWIND, STOP, STALL, WARN, OK), then the largest lag, then the
    oldest last commit, then by name."""

    def key(v: GroupView) -> tuple[int, float, float, str, str, str]:
        t = v.result.target
        return (
            -int(v.status),
            -(v.lag_seconds or 0.0),
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


def shard_lag_dict(shard: ShardLag, verdict: ShardHealth | None) -> dict[str, Any]:
    """A shard's checkpoint, lag and verdict as JSON: times ISO 8601, durations in seconds."""
    update = shard.update_time
    return {
        "shard": shard.shard,
        "checkpoint": shard.checkpoint,
        "committed": shard.checkpoint != "",
        "consumer": shard.consumer,
        "update_time": _iso(update),
        "update_time_us": _us(update) if update is not None else 0,
        "commit_age_seconds": _round(shard.commit_age_seconds),
        "consumed_time": _iso(shard.consumed_time),
        "latest_time": _iso(shard.latest_time),
        "lag_seconds": _round(shard.lag_seconds),
        "expired": shard.expired,
        "caught_up": shard.caught_up,
        "status": None if verdict is None else verdict.status.name.lower(),
        "reason": None if verdict is None else verdict.reason,
    }


def group_dict(view: GroupView) -> dict[str, Any]:
    """One group as a JSON object (an NDJSON line): names, verdict and why, lag, ages, and a row
    per shard (raw cursors included), or the error."""
    result = view.result
    t = result.target
    out: dict[str, Any] = {
        "project": t.project,
        "logstore": t.logstore,
        "consumer_group": t.consumer_group,
        "shard": t.shard,
        "ok": result.ok,
        "status": view.status.name.lower(),
        "reason": view.health.reason,
        "lag_seconds": _round(view.lag_seconds),
        "worst_shard": view.worst_shard,
        "last_commit_time": _iso(view.last_commit_time),
        "last_commit_age_seconds": view.last_commit_age_seconds,
        "oldest_commit_age_seconds": view.oldest_commit_age_seconds,
    }
    if result.error is not None:
        out["error"] = error_dict(result.error)
        return out
    assert result.lag is not None
    shards = result.lag.shards
    verdicts = {v.shard: v for v in view.health.shards}
    out["as_of"] = _iso(result.lag.as_of)
    out["shards"] = len(shards)
    out["committed_shards"] = sum(s.checkpoint != "" for s in shards)
    out["consumers"] = sorted({s.consumer for s in shards if s.consumer})
    out["checkpoints"] = [shard_lag_dict(s, verdicts.get(s.shard)) for s in shards]
    return out


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def _us(when: datetime) -> int:
    """Microseconds since the epoch, exactly (SLS's updateTime unit)."""
    return (when - _EPOCH) // timedelta(microseconds=1)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
