"""The emulator's in-memory SLS model: projects, logstores, shards, groups, checkpoints, cursors.

Pure and synchronous: no sockets, no asyncio; the time comes from an injected clock. Every
method either returns plain JSON-ready data or raises :class:`ApiError` carrying the SLS error
code and HTTP status the real service answers with (``docs/protocol.md``; https://www.alibabacloud.com/help/en/sls/developer-reference/error-codes).

Cursor model. A cursor is base64 of a decimal integer, as in the real service, and the integer
is the package's receive time in nanoseconds (made unique per shard by ``+1`` steps), which is
also what real cursors look like (``MTUyNDE1NTM3OTM3MzkwODQ5Ng==`` is 2018-04-19 in ns). So
GetCursorTime of any cursor is ``value // 10**9`` and GetCursor(from=t) is the first written
package whose cursor is ``>= t * 10**9``: the two are consistent by construction. Logs are not
stored; :meth:`EmulatorState.append` records that ``n`` packages arrived, which moves the end
cursor so that lag is real.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from .. import names
from ..errors import ValidationError

__all__ = [
    "MAX_CONSUMER_GROUPS",
    "ApiError",
    "ConsumerGroupState",
    "EmulatorState",
    "LogstoreState",
    "ProjectState",
    "ShardState",
    "decode_cursor",
    "encode_cursor",
    "is_decimal",
    "to_ns",
]

#: Consumer groups allowed per logstore [D].
MAX_CONSUMER_GROUPS: Final = 30
MAX_SHARDS: Final = 256
_NS: Final = 1_000_000_000
_KEY_SPACE: Final = 1 << 128


def is_decimal(text: str) -> bool:
    """True for ``[0-9]+`` only. ``str.isdigit`` also takes U+00B2 (superscript two), which
    ``int()`` rejects, and U+0661 (Arabic-Indic one), which it reads as 1: no client sends those."""
    return text.isascii() and text.isdigit()


class ApiError(Exception):
    """An SLS error answer: HTTP ``status``, ``code`` (``errorCode``) and ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code} ({status}): {message}")
        self.status = status
        self.code = code
        self.message = message


def encode_cursor(value: int) -> str:
    """``1524155379373908496`` -> ``MTUyNDE1NTM3OTM3MzkwODQ5Ng==`` (base64 of the decimal text)."""
    return base64.b64encode(str(value).encode("ascii")).decode("ascii")


def decode_cursor(cursor: str) -> int:
    """The integer inside a cursor; :raises ApiError: 400 ``InvalidCursor`` if it is not one."""
    try:
        text = base64.b64decode(cursor.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        text = b""
    # Status of InvalidCursor is [U] in the spec: 400 chosen, like every other bad parameter.
    if not text.isdigit() or len(text) > 20:
        raise ApiError(400, "InvalidCursor", f"cursor {cursor[:64]!r} is not a valid cursor")
    return int(text)


def to_ns(t: datetime) -> int:
    """An aware datetime as unix nanoseconds (the emulator's cursor unit)."""
    return int(t.timestamp()) * _NS + t.microsecond * 1000


def _to_us(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000 + t.microsecond


@attrs.define(eq=False)
class ShardState:
    """One shard: its key range and the write history that drives its cursors.

    Packages are kept as arithmetic runs: run ``i`` holds ``_counts[i]`` cursors
    ``_starts[i] + k * _steps[i]``, so an hour written at a steady rate costs one list entry.
    ``_end`` is the cursor of the next package to be written (the last one plus 1); it stays
    put when old packages expire, as the real end cursor does.
    """

    shard_id: int
    create_time_s: int
    inclusive_begin_key: str
    exclusive_end_key: str
    base_cursor: int
    status: str = "readwrite"
    _starts: list[int] = attrs.field(factory=list)
    _counts: list[int] = attrs.field(factory=list)
    _steps: list[int] = attrs.field(factory=list)
    _lasts: list[int] = attrs.field(factory=list)
    _end: int = attrs.field(default=-1)

    def __attrs_post_init__(self) -> None:
        if self._end < 0:
            self._end = self.base_cursor

    @property
    def begin_cursor(self) -> int:
        """Cursor of the oldest retained package (the end cursor when none is retained)."""
        return self._starts[0] if self._starts else self._end

    @property
    def end_cursor(self) -> int:
        """Cursor of the next package to be written."""
        return self._end

    @property
    def packages(self) -> int:
        """How many written packages are retained (appended and not yet expired)."""
        return sum(self._counts)

    @property
    def newest(self) -> int | None:
        """Cursor (= receive time in ns) of the newest retained package, or None."""
        return self._lasts[-1] if self._lasts else None

    def append(self, n: int, at_ns: int, step_ns: int = 1) -> None:
        """Record ``n`` packages received from ``at_ns`` on, ``step_ns`` apart (kept monotonic
        even if the clock steps back); a run that continues the last one extends it."""
        if n <= 0:
            return
        step = max(1, step_ns)
        start = max(self._end, at_ns)
        if self._starts and self._steps[-1] == step and self._lasts[-1] + step == start:
            self._counts[-1] += n
            self._lasts[-1] += n * step
        else:
            self._starts.append(start)
            self._counts.append(n)
            self._steps.append(step)
            self._lasts.append(start + (n - 1) * step)
        self._end = self._lasts[-1] + 1

    def expire(self, before_ns: int) -> None:
        """Drop the packages received before ``before_ns`` (the logstore's TTL passed)."""
        while self._lasts and self._lasts[0] < before_ns:
            for runs in (self._starts, self._counts, self._steps, self._lasts):
                del runs[0]
        if self._starts and self._starts[0] < before_ns:
            k = -(-(before_ns - self._starts[0]) // self._steps[0])
            self._starts[0] += k * self._steps[0]
            self._counts[0] -= k

    def cursor_at(self, t_ns: int) -> int:
        """First retained cursor ``>= t_ns``, or the end cursor if nothing was written since."""
        i = bisect.bisect_left(self._lasts, t_ns)
        if i == len(self._lasts):
            return self._end
        start, step = self._starts[i], self._steps[i]
        if t_ns <= start:
            return start
        return start + -(-(t_ns - start) // step) * step

    def package_at_or_before(self, cursor: int) -> int | None:
        """The newest retained package cursor ``<= cursor``, or None if there is none."""
        i = bisect.bisect_right(self._starts, cursor) - 1
        if i < 0:
            return None
        start, step = self._starts[i], self._steps[i]
        return start + min(self._counts[i] - 1, (cursor - start) // step) * step

    def cursor_time(self, cursor: int, now_s: int) -> int:
        """GetCursorTime: receive time (unix seconds) of the package at or just before ``cursor``.

        :raises ApiError: 400 ``InvalidCursor`` for a cursor after the end cursor or more than
            one before the oldest retained package (its data expired). ``begin - 1`` (the
            "previous" cursor of a group reading from the start) answers the oldest package's
            time; a shard that retains nothing answers ``now_s`` for ``end - 1`` and ``end``.
        """
        if cursor > self._end or cursor < self.begin_cursor - 1:
            raise ApiError(400, "InvalidCursor", f"cursor {encode_cursor(cursor)} is out of range")
        if not self._starts:
            return now_s
        package = self.package_at_or_before(cursor)
        return (self._starts[0] if package is None else package) // _NS

    def to_wire(self) -> dict[str, Any]:
        return {
            "shardID": self.shard_id,
            "status": self.status,
            "inclusiveBeginKey": self.inclusive_begin_key,
            "exclusiveEndKey": self.exclusive_end_key,
            "createTime": self.create_time_s,
        }


@attrs.define(eq=False)
class ConsumerGroupState:
    """A consumer group: config, per-shard checkpoints, live consumers and shard ownership."""

    name: str
    timeout: int
    order: bool
    #: shard -> wire dict ``{"shard","checkpoint","updateTime","consumer"}`` (reused, never copied).
    checkpoints: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    #: consumer -> last heartbeat (unix seconds, float).
    heartbeats: dict[str, float] = attrs.field(factory=dict)
    #: shard -> consumer that holds it.
    owners: dict[int, str] = attrs.field(factory=dict)
    #: Simulated behaviour (:data:`SIMULATIONS`), or None for a group only clients drive.
    simulate: str | None = None
    #: Simulation: shard -> cursor of the last package the simulated consumer consumed.
    positions: dict[int, int] = attrs.field(factory=dict)
    #: Simulation: the consumer name it heartbeats and commits as.
    sim_consumer: str = "sim-consumer-1"
    #: Simulation: whether a ``rewinding`` group already jumped back.
    rewound: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "timeout": self.timeout, "order": self.order}

    def expire(self, now_s: float) -> None:
        """Drop consumers silent for longer than ``timeout`` and free their shards."""
        dead = [c for c, t in self.heartbeats.items() if now_s - t > self.timeout]
        for c in dead:
            del self.heartbeats[c]
        if dead:
            self.owners = {s: c for s, c in self.owners.items() if c in self.heartbeats}

    def rebalance(self, shard_ids: Iterable[int]) -> None:
        """Spread shards evenly over live consumers, moving as few as possible.

        Consumers already holding the most keep the "+1" quotas; surplus shards are released
        and free ones go, lowest first, to consumers below quota (by name, for determinism).
        """
        shards = sorted(shard_ids)
        known = set(shards)
        live = sorted(self.heartbeats)
        owners = {s: c for s, c in self.owners.items() if c in self.heartbeats and s in known}
        if not live:
            self.owners = {}
            return
        held: dict[str, list[int]] = {c: [] for c in live}
        for s in shards:
            if s in owners:
                held[owners[s]].append(s)
        base, extra = divmod(len(shards), len(live))
        ranked = sorted(live, key=lambda c: (-len(held[c]), c))
        quota = {c: base + (1 if i < extra else 0) for i, c in enumerate(ranked)}
        for c in live:
            for s in held[c][quota[c] :]:
                del owners[s]
            held[c] = held[c][: quota[c]]
        free = [s for s in shards if s not in owners]
        for c in live:
            while len(held[c]) < quota[c] and free:
                s = free.pop(0)
                owners[s] = c
                held[c].append(s)
        self.owners = owners

    def assigned(self, consumer: str) -> list[int]:
        return sorted(s for s, c in self.owners.items() if c == consumer)


@attrs.define(eq=False)
class LogstoreState:
    """A logstore: its shards and consumer groups, and how fast the simulation writes to it."""

    name: str
    ttl: int
    shards: dict[int, ShardState]
    consumer_groups: dict[str, ConsumerGroupState] = attrs.field(factory=dict)
    #: Packages per second the simulation writes to each readwrite shard.
    write_rate: float = 0.0
    #: Retention in seconds when set, overriding ``ttl`` (days).
    ttl_seconds: int | None = None
    #: Simulation: receive time (ns) of the next package the writer owes.
    next_write_ns: int = 0

    @property
    def retention_ns(self) -> int:
        """How long packages are kept, in ns."""
        return (self.ttl_seconds if self.ttl_seconds is not None else self.ttl * 86400) * _NS

    def expire(self, now_ns: int) -> None:
        """Drop every shard's packages older than the retention."""
        cutoff = now_ns - self.retention_ns
        for shard in self.shards.values():
            shard.expire(cutoff)


@attrs.define(eq=False)
class ProjectState:
    """A project: description and logstores."""

    name: str
    description: str = ""
    logstores: dict[str, LogstoreState] = attrs.field(factory=dict)


def _bad(message: str, code: str = "ParameterInvalid") -> ApiError:
    return ApiError(400, code, message)


def _check_name(validate: Callable[[object], str], value: object) -> str:
    try:
        return validate(value)
    except ValidationError as exc:
        raise _bad(exc.message) from None


def _key(i: int, n: int) -> str:
    return f"{i * _KEY_SPACE // n:032x}" if i < n else "f" * 32


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EmulatorState:
    """Everything the emulator knows. Methods mirror the SLS APIs and raise :class:`ApiError`.

    Seeding helpers (``create_project`` ... ``append``) are the same calls the HTTP handlers
    make, so state built from Python and state built over the wire cannot differ.
    """

    def __init__(self, clock: Callable[[], datetime] = _utcnow) -> None:
        self.clock = clock
        self.projects: dict[str, ProjectState] = {}

    # --- lookups ---------------------------------------------------------------------------

    def project(self, project: str) -> ProjectState:
        try:
            return self.projects[project]
        except KeyError:
            raise ApiError(404, "ProjectNotExist", f"Project {project} does not exist") from None

    def logstore(self, project: str, logstore: str) -> LogstoreState:
        try:
            return self.project(project).logstores[logstore]
        except KeyError:
            raise ApiError(404, "LogStoreNotExist", f"logstore {logstore} does not exist") from None

    def consumer_group(self, project: str, logstore: str, group: str) -> ConsumerGroupState:
        try:
            return self.logstore(project, logstore).consumer_groups[group]
        except KeyError:
            raise ApiError(404, "ConsumerGroupNotExist", f"consumer group {group} does not exist") from None

    def shard(self, project: str, logstore: str, shard: int) -> ShardState:
        try:
            return self.logstore(project, logstore).shards[shard]
        except KeyError:
            raise _bad(f"shard {shard} does not exist", "ShardNotExist") from None

    # --- projects and logstores ------------------------------------------------------------

    def create_project(self, project: str, description: str = "") -> ProjectState:
        """CreateProject; 400 ``ProjectAlreadyExist`` if it exists."""
        _check_name(names.validate_project, project)
        if project in self.projects:
            raise _bad(f"Project {project} already exist", "ProjectAlreadyExist")
        state = self.projects[project] = ProjectState(project, description)
        return state

    def create_logstore(
        self,
        project: str,
        logstore: str,
        shard_count: int = 2,
        ttl: int = 30,
        *,
        created: datetime | None = None,
    ) -> LogstoreState:
        """CreateLogStore with ``shard_count`` readwrite shards over the whole key space.

        ``created`` backdates the logstore (default now), so history can be written into it.
        """
        p = self.project(project)
        _check_name(names.validate_logstore, logstore)
        if isinstance(shard_count, bool) or not isinstance(shard_count, int):
            raise _bad("shardCount must be an integer")
        if not 0 < shard_count <= MAX_SHARDS:
            raise _bad(f"shardCount must be 1..{MAX_SHARDS}")
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= 3650:
            raise _bad("ttl must be an integer of days in 1..3650")
        if logstore in p.logstores:
            raise _bad(f"logstore {logstore} already exist", "LogStoreAlreadyExist")
        when = created or self.clock()
        created_s, base = int(when.timestamp()), to_ns(when)
        shards = {
            i: ShardState(i, created_s, _key(i, shard_count), _key(i + 1, shard_count), base)
            for i in range(shard_count)
        }
        state = p.logstores[logstore] = LogstoreState(logstore, ttl, shards)
        return state

    def list_logstores(self, project: str, offset: int, size: int, pattern: str) -> dict[str, Any]:
        """ListLogStores: ``{"count","total","logstores"}``, names sorted, substring filter."""
        matches = sorted(n for n in self.project(project).logstores if pattern in n)
        page = matches[offset : offset + size]
        return {"count": len(page), "total": len(matches), "logstores": page}

    def list_shards(self, project: str, logstore: str) -> list[dict[str, Any]]:
        return [s.to_wire() for s in self.logstore(project, logstore).shards.values()]

    def append(
        self, project: str, logstore: str, shard: int, n: int = 1, *, at: datetime | None = None
    ) -> str:
        """Record ``n`` packages written to a shard (at ``at``, default now); returns the end cursor."""
        s = self.shard(project, logstore, shard)
        s.append(n, to_ns(at or self.clock()))
        return encode_cursor(s.end_cursor)

    # --- cursors ---------------------------------------------------------------------------

    def get_cursor(self, project: str, logstore: str, shard: int, from_: str) -> str:
        """GetCursor: ``begin``, ``end`` or unix seconds (400 ``ParameterInvalid`` otherwise)."""
        s = self.shard(project, logstore, shard)
        if from_ == "begin":
            return encode_cursor(s.begin_cursor)
        if from_ == "end":
            return encode_cursor(s.end_cursor)
        if not is_decimal(from_) or len(from_) > 12:
            raise _bad(f"from must be begin, end or unix seconds, not {from_[:32]!r}")
        seconds = int(from_)
        if seconds >= self.clock().timestamp():
            return encode_cursor(s.end_cursor)
        return encode_cursor(s.cursor_at(seconds * _NS))

    def get_cursor_time(self, project: str, logstore: str, shard: int, cursor: str) -> int:
        """GetCursorTime: the receive time (unix seconds) of the package at or before ``cursor``.

        400 ``InvalidCursor`` (the status SLS leaves undocumented; 400 like every bad parameter)
        for a cursor after the end or before the oldest retained data: see
        :meth:`ShardState.cursor_time`.
        """
        s = self.shard(project, logstore, shard)
        return s.cursor_time(decode_cursor(cursor), int(self.clock().timestamp()))

    # --- consumer groups -------------------------------------------------------------------

    def create_consumer_group(
        self, project: str, logstore: str, group: str, timeout: int, order: bool = False
    ) -> ConsumerGroupState:
        ls = self.logstore(project, logstore)
        _check_name(names.validate_consumer_group, group)
        _check_timeout(timeout)
        if not isinstance(order, bool):
            raise _bad("order must be a boolean")
        # Uniqueness is enforced per logstore: the doc says "unique within a project" but the
        # same group name on many logstores is what every fan-out setup does [U].
        if group in ls.consumer_groups:
            # Status of ConsumerGroupAlreadyExist is [U]; 400 like the other conflicts.
            raise _bad(f"consumer group {group} already exist", "ConsumerGroupAlreadyExist")
        if len(ls.consumer_groups) >= MAX_CONSUMER_GROUPS:
            # Status of ConsumerGroupQuotaExceed is [U]; 400, since retrying cannot help.
            raise _bad(
                f"logstore {logstore} already has {MAX_CONSUMER_GROUPS} consumer groups",
                "ConsumerGroupQuotaExceed",
            )
        cg = ls.consumer_groups[group] = ConsumerGroupState(group, timeout, order)
        return cg

    def update_consumer_group(
        self, project: str, logstore: str, group: str, timeout: int | None, order: bool | None
    ) -> None:
        cg = self.consumer_group(project, logstore, group)
        if timeout is not None:
            cg.timeout = _check_timeout(timeout)
        if order is not None:
            if not isinstance(order, bool):
                raise _bad("order must be a boolean")
            cg.order = order

    def delete_consumer_group(self, project: str, logstore: str, group: str) -> None:
        self.consumer_group(project, logstore, group)
        del self.projects[project].logstores[logstore].consumer_groups[group]

    def list_consumer_groups(self, project: str, logstore: str) -> list[dict[str, Any]]:
        return [cg.to_wire() for cg in self.logstore(project, logstore).consumer_groups.values()]

    def get_checkpoints(
        self, project: str, logstore: str, group: str, shard: int | None = None
    ) -> list[dict[str, Any]]:
        """GetCheckPoint: every shard (never-committed ones answer ``checkpoint: ""``), or one.

        A shard that does not exist answers ``[]`` [D]. The hot path: no copies are made.
        """
        ls = self.logstore(project, logstore)
        cg = self.consumer_group(project, logstore, group)
        cps = cg.checkpoints
        if shard is not None:
            if shard not in ls.shards:
                return []
            return [cps.get(shard) or _never(shard)]
        return [cps.get(s) or _never(s) for s in ls.shards]

    def set_checkpoint(
        self,
        project: str,
        logstore: str,
        group: str,
        shard: int,
        checkpoint: str,
        *,
        consumer: str = "",
        update_time_us: int | None = None,
    ) -> None:
        """Store a checkpoint as a forced UpdateCheckPoint would (seeding helper)."""
        self.shard(project, logstore, shard)
        cg = self.consumer_group(project, logstore, group)
        when = _to_us(self.clock()) if update_time_us is None else update_time_us
        cg.checkpoints[shard] = {
            "shard": shard,
            "checkpoint": checkpoint,
            "updateTime": when,
            "consumer": consumer,
        }

    def update_checkpoint(
        self,
        project: str,
        logstore: str,
        group: str,
        shard: int,
        checkpoint: str,
        consumer: str,
        force_success: bool,
    ) -> None:
        """ConsumerGroupUpdateCheckPoint.

        Without ``forceSuccess`` the consumer must be alive and hold the shard (UpdateCheckPoint):
        ``ConsumerNotExist`` / ``ConsumerNotMatch`` otherwise (400, status [U]).
        """
        cg = self.consumer_group(project, logstore, group)
        self.shard(project, logstore, shard)
        if not force_success:
            if not consumer:
                raise _bad("consumer is required unless forceSuccess is true")
            cg.expire(self.clock().timestamp())
            if consumer not in cg.heartbeats:
                raise _bad(f"consumer {consumer} does not exist", "ConsumerNotExist")
            if cg.owners.get(shard) != consumer:
                raise _bad(f"shard {shard} is not held by consumer {consumer}", "ConsumerNotMatch")
        self.set_checkpoint(project, logstore, group, shard, checkpoint, consumer=consumer)

    def heartbeat(self, project: str, logstore: str, group: str, consumer: str, held: list[int]) -> list[int]:
        """ConsumerGroupHeartBeat: refresh ``consumer``, expire silent ones, rebalance.

        An unknown consumer reporting held shards gets 400 ``NotExistConsumerWithBody`` [D]: it
        was expired and must start over with ``[]``.
        """
        ls = self.logstore(project, logstore)
        cg = self.consumer_group(project, logstore, group)
        if not consumer:
            raise ApiError(400, "MissingParameter", "consumer is required")
        now = self.clock().timestamp()
        cg.expire(now)
        if consumer not in cg.heartbeats and held:
            raise _bad(f"consumer {consumer} does not exist", "NotExistConsumerWithBody")
        cg.heartbeats[consumer] = now
        cg.rebalance(ls.shards)
        return cg.assigned(consumer)


def _never(shard: int) -> dict[str, Any]:
    # A shard never committed: the real service answers an empty checkpoint, time 0, no consumer.
    return {"shard": shard, "checkpoint": "", "updateTime": 0, "consumer": ""}


def _check_timeout(timeout: object) -> int:
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 0 < timeout <= 86400:
        raise _bad("timeout must be an integer of seconds in 1..86400")
    return timeout
