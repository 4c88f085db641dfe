"""Frozen value classes for what SLS returns, and for fan-out targets and results.

Fields are SLS's names in snake_case; a field whose wire name is not the mechanical camelCase
of its own name says so in ``metadata["wire"]`` (read by :mod:`aiosls._serde`).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from .errors import SlsError

__all__ = [
    "CheckpointResult",
    "CheckpointTarget",
    "ConsumerGroup",
    "GroupLag",
    "LagResult",
    "Shard",
    "ShardCheckpoint",
    "ShardLag",
    "MAX_EPOCH_VALUE",
    "epoch_to_datetime",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_to_datetime(value: int) -> datetime:
    """An SLS ``updateTime`` (integer microseconds since the epoch) as an aware UTC datetime.

    Every observed value is microseconds although the reference text says seconds (see
    ``docs/protocol.md``, "GetCheckPoint and updateTime", and the GetCheckPoint API page). As a
    guard we read values below 1e11 as seconds and below 1e14 as milliseconds: a microsecond
    value that small would predate 1973, which no checkpoint can.

    :raises ValueError: the value is negative or beyond year 9999.
    """
    if value < 0:
        raise ValueError(f"negative timestamp {value}")
    if value < 100_000_000_000:
        micros = value * 1_000_000
    elif value < 100_000_000_000_000:
        micros = value * 1_000
    else:
        micros = value
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError as exc:
        raise ValueError(f"timestamp {value} is out of range") from exc


#: The largest raw timestamp epoch_to_datetime accepts (9999-12-31T23:59:59.999999Z in µs).
MAX_EPOCH_VALUE: Final = 253_402_300_799_999_999


def _epoch_in_range(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    # Checked at construction (so at parse time) even though the datetime is built lazily:
    # a bad updateTime must be a ResponseParseError, never a surprise on first access.
    if not 0 <= value <= MAX_EPOCH_VALUE:
        raise ValueError(f"{attribute.metadata.get('wire', attribute.name)} {value} is out of range")


@attrs.frozen
class ShardCheckpoint:
    """The checkpoint a consumer group last committed for one shard (GetCheckPoint).

    ``checkpoint == ""`` means nothing was ever committed for the shard.
    """

    shard: int
    #: The committed cursor (opaque base64 text), or ``""`` if never committed.
    checkpoint: str
    #: Raw ``updateTime`` from the wire: microseconds since the Unix epoch.
    update_time_us: int = attrs.field(metadata={"wire": "updateTime"}, validator=_epoch_in_range)
    #: The consumer that last held or committed the shard; may be ``""``.
    consumer: str = ""

    @functools.cached_property
    def update_time(self) -> datetime:
        """``update_time_us`` as an aware UTC datetime (built on first access: a fan-out
        reading thousands of checkpoints often never looks at most of them)."""
        return epoch_to_datetime(self.update_time_us)

    @property
    def committed(self) -> bool:
        """True once a checkpoint was ever committed for this shard."""
        return self.checkpoint != ""


@attrs.frozen
class ConsumerGroup:
    """A consumer group as ListConsumerGroup returns it."""

    name: str
    #: Seconds without a heartbeat after which a consumer is dropped.
    timeout: int
    #: Whether shards are consumed in order (across splits and merges).
    order: bool


def _create_time(self: Shard) -> datetime:
    return epoch_to_datetime(self.create_time_s)


@attrs.frozen
class Shard:
    """A shard as ListShards returns it."""

    shard_id: int = attrs.field(metadata={"wire": "shardID"})
    #: ``readwrite`` or ``readonly``.
    status: str
    inclusive_begin_key: str
    exclusive_end_key: str
    #: Raw ``createTime``: seconds since the Unix epoch.
    create_time_s: int = attrs.field(metadata={"wire": "createTime"})
    create_time: datetime = attrs.field(
        init=False, default=attrs.Factory(_create_time, takes_self=True), eq=False
    )


@attrs.frozen
class CheckpointTarget:
    """One GetCheckPoint to make in a fan-out; ``shard=None`` means every shard."""

    project: str
    logstore: str
    consumer_group: str
    shard: int | None = None

    def __str__(self) -> str:
        shard = "" if self.shard is None else f"#{self.shard}"
        return f"{self.project}/{self.logstore}/{self.consumer_group}{shard}"


@attrs.frozen(eq=False)
class CheckpointResult:
    """The outcome for one target: its checkpoints, or the error that target alone hit."""

    target: CheckpointTarget
    checkpoints: tuple[ShardCheckpoint, ...] | None = None
    error: SlsError | None = None

    @property
    def ok(self) -> bool:
        """True when the target's checkpoints were read."""
        return self.error is None

    def unwrap(self) -> tuple[ShardCheckpoint, ...]:
        """The checkpoints, or raise this target's error."""
        if self.error is not None:
            raise self.error
        assert self.checkpoints is not None
        return self.checkpoints


# --- lag -----------------------------------------------------------------------------------------


@attrs.frozen
class ShardLag:
    """How far one shard's consumption lags its newest data (SLS's "consumption delay").

    ``lag_seconds = latest_time - consumed_time`` (never negative): ``0.0`` when the
    checkpoint is the end cursor (caught up, however long ago the last write was), ``None``
    when nothing was ever committed. ``expired`` means the checkpoint points at data already
    deleted by the logstore's TTL; the lag is then measured from the oldest retained data.
    """

    shard: int
    #: The committed cursor (opaque), or ``""`` if never committed.
    checkpoint: str
    #: The consumer that last held or committed the shard; ``""`` if none.
    consumer: str
    #: When the checkpoint was last committed (server clock); None if never.
    update_time: datetime | None
    #: Receive time of the last package the group consumed; None if never committed or unknown.
    consumed_time: datetime | None
    #: Receive time of the newest package in the shard; None for an empty shard.
    latest_time: datetime | None
    lag_seconds: float | None
    #: Seconds since the last commit (server clock, skew corrected); None if never committed.
    commit_age_seconds: float | None
    expired: bool = False
    caught_up: bool = False


@attrs.frozen
class GroupLag:
    """One consumer group's lag: one :class:`ShardLag` per shard, measured at ``as_of``."""

    target: CheckpointTarget
    shards: tuple[ShardLag, ...]
    #: When the sweep read the checkpoints (server clock, skew corrected).
    as_of: datetime

    @property
    def lag_seconds(self) -> float | None:
        """The group's lag: the maximum over its shards; None if no shard has a lag."""
        lags = [s.lag_seconds for s in self.shards if s.lag_seconds is not None]
        return max(lags) if lags else None

    @property
    def worst_shard(self) -> int | None:
        """The shard with the largest lag (lowest id on a tie); None if no shard has a lag."""
        best: ShardLag | None = None
        for s in self.shards:
            if s.lag_seconds is not None and (best is None or s.lag_seconds > (best.lag_seconds or 0.0)):
                best = s
        return None if best is None else best.shard

    @property
    def unassigned_shards(self) -> int:
        """Shards no consumer holds (``consumer == ""``)."""
        return sum(1 for s in self.shards if not s.consumer)

    @property
    def max_commit_age_seconds(self) -> float | None:
        """The oldest commit's age over committed shards; None if none was ever committed."""
        ages = [s.commit_age_seconds for s in self.shards if s.commit_age_seconds is not None]
        return max(ages) if ages else None


@attrs.frozen(eq=False)
class LagResult:
    """The outcome of one target in a lag fan-out: its :class:`GroupLag`, or its own error."""

    target: CheckpointTarget
    lag: GroupLag | None = None
    error: SlsError | None = None

    @property
    def ok(self) -> bool:
        """True when the target's lag was measured."""
        return self.error is None

    def unwrap(self) -> GroupLag:
        """The lag, or raise this target's error."""
        if self.error is not None:
            raise self.error
        assert self.lag is not None
        return self.lag
