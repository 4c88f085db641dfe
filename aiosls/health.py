"""Burrow-style health verdicts for consumer groups, from a sliding window of lag observations.

Pure: observations (:class:`~aiosls.models.GroupLag` / :class:`~aiosls.models.LagResult`) go in,
verdicts come out. No I/O, no clock of its own: every time comes from the observation (``as_of``,
``update_time``, ``commit_age_seconds``), so a test can replay any history.

The rules adapt Burrow's (https://github.com/linkedin/Burrow/wiki/Consumer-Lag-Evaluation-Rules)
to SLS, where a shard's lag is a time (the consumer group latency of
https://help.aliyun.com/en/sls/consumer-group-monitoring) and every checkpoint carries its last
commit time. Per shard, over the last ``window`` observations of its group, the
first rule that applies wins:

1. **OK**, caught up: the checkpoint is the shard's end cursor (however old the last commit is:
   an idle shard has nothing to commit), or nothing was ever committed and there is nothing to read.
2. **REWIND**: the checkpoint moved backwards (a reset or a reprocess) within the window and the lag
   has not been back within ``allowed_lag`` since; a good sample before the rewind does not hide it
   (linkedin/Burrow#716).
3. **STOP**: there is unread data and the last commit is older than ``stop_after``. This needs one
   observation only (``commit_age_seconds``); an observation in the window that found the shard
   caught up moves the start of the clock to that observation, because a consumer with nothing to
   read has nothing to commit (Burrow's false STOP on slow topics, linkedin/Burrow#303). An old
   good sample never hides a STOP (linkedin/Burrow#290).
4. **OK**: the lag was within ``allowed_lag`` at some point in the window.
5. **STALL**: commits keep arriving (``update_time`` moves) but the checkpoint does not, over at
   least two observations, with the lag above ``allowed_lag`` throughout.
6. **WARN**: the lag was above ``allowed_lag`` at every point of a full-enough window (at least
   3 observations, or ``window`` if smaller) and is not lower at its end than at its start.
7. Otherwise **OK** (e.g. behind but catching up).

A shard never committed (``checkpoint == ""``) has no lag to judge. It is OK while no new data
arrives (a consumer that starts at the end cursor commits only once it reads something), and WARN
once new data kept arriving over a full-enough window with still no commit: nobody consumes it.
Burrow likewise cannot evaluate a partition without commits; it reports it OK, "incomplete".

A group's status is its worst shard's (the highest code). ``ERR`` is for an observation that
failed: a :class:`LagResult` with an error. A vanished group (``NotFoundError``) is ERR once and its
history is dropped; any other error keeps it, so one throttled sweep does not restart the window.

Known limit: from a single observation, a low-traffic shard that just received data after a long
idle time looks stopped (old commit, unread data). From the second sweep on, the caught-up
observation before it prevents that; sweep more often than ``stop_after`` to benefit.
"""

from __future__ import annotations

import base64
import enum
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Final

import attrs

from ._text import safe_text
from .errors import NotFoundError
from .models import CheckpointTarget, GroupLag, LagResult, ShardLag

__all__ = ["GroupHealth", "Health", "HealthEvaluator", "ShardHealth", "decode_cursor", "format_duration"]

#: Observations WARN needs before judging a trend (fewer if the window itself is smaller).
WARN_MIN_OBSERVATIONS: Final = 3
# A checkpoint is base64 of a 64-bit integer's decimal digits: 20 digits at most.
_MAX_CURSOR_DIGITS: Final = 20
_CAUGHT_UP: Final = "caught up"


class Health(enum.IntEnum):
    """A verdict; the values are the exporter's metric codes, and higher is worse."""

    OK = 0
    WARN = 1
    STALL = 2
    STOP = 3
    REWIND = 4
    ERR = 5


@attrs.frozen
class ShardHealth:
    """One shard's verdict, its current lag (None if never committed) and why, in a short line."""

    shard: int
    status: Health
    lag_seconds: float | None
    reason: str = ""


@attrs.frozen
class GroupHealth:
    """One group's verdict: its worst shard's status, every shard's verdict and one human line."""

    target: CheckpointTarget
    status: Health
    shards: tuple[ShardHealth, ...]
    #: The largest lag over the shards; None if no shard has one (or the observation failed).
    max_lag_seconds: float | None
    reason: str = ""


def decode_cursor(cursor: str) -> int | None:
    """The integer an SLS cursor encodes (base64 of its decimal digits), or None if it is not one.

    Cursors are opaque to clients, but the official SDKs decode them the same way to step back
    one package; we only compare them, to see a checkpoint move backwards.
    """
    if not cursor or len(cursor) > 4 * ((_MAX_CURSOR_DIGITS + 2) // 3):
        return None
    try:
        digits = base64.b64decode(cursor, validate=True)
    except ValueError:  # binascii.Error, or text that is not ASCII
        return None
    # bytes.isdigit() is ASCII only: no other script's digits, no sign, no spaces.
    if not digits.isdigit() or len(digits) > _MAX_CURSOR_DIGITS:
        return None
    return int(digits)


def format_duration(seconds: float) -> str:
    """``seconds`` as a short human duration: ``45s``, ``3m12s``, ``1h`` or ``2d3h``."""
    total = max(0, round(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n]
    # Two units are precise enough for a verdict line ("2d3h", not "2d3h4m5s").
    return "".join(shown[:2]) or "0s"


@attrs.frozen(slots=True)
class _Sample:
    """What the evaluator keeps of one shard observation: ``window`` of them per shard, so no
    checkpoint text (how it compares with the one before is decided once, on arrival)."""

    #: The observation's time (one object shared by every shard of the group's observation).
    as_of: datetime
    #: ``update_time`` / ``latest_time`` as POSIX seconds (a float is half a datetime's size).
    update_s: float | None
    latest_s: float | None
    lag: float | None
    caught_up: bool
    #: The checkpoint is behind the previous observation's (both decodable cursors). Like
    #: ``held``, never read on the window's first sample: its previous one is not in the window.
    moved_back: bool
    #: The checkpoint is the previous observation's.
    held: bool


def _timestamp(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


class _ShardHistory:
    """One shard's window, plus the last two checkpoints (to compare the next one with)."""

    __slots__ = ("before_last", "last", "samples", "window")

    def __init__(self, window: int) -> None:
        # A list trimmed by hand: a deque allocates a 64-slot block per shard, for ~10 samples.
        self.samples: list[_Sample] = []
        self.window = window
        self.last: str | None = None  # checkpoint of samples[-1]
        self.before_last: str | None = None  # checkpoint of samples[-2], for a replaced sample

    def add(self, shard: ShardLag, as_of: datetime) -> None:
        samples = self.samples
        if samples and as_of <= samples[-1].as_of:
            if as_of < samples[-1].as_of:
                samples.clear()  # a clock that went back restarts the window
            else:
                samples.pop()  # the same sweep seen twice replaces itself
                self.last = self.before_last
        before, checkpoint = self.last, shard.checkpoint
        held = moved_back = False
        if before is not None:
            held = checkpoint == before
            old, new = decode_cursor(before), decode_cursor(checkpoint)
            moved_back = old is not None and new is not None and new < old
        self.before_last, self.last = before, checkpoint
        if len(samples) == self.window:
            del samples[0]
        samples.append(
            _Sample(
                as_of=as_of,
                update_s=_timestamp(shard.update_time),
                latest_s=_timestamp(shard.latest_time),
                lag=shard.lag_seconds,
                caught_up=shard.caught_up,
                moved_back=moved_back,
                held=held,
            )
        )


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


class HealthEvaluator:
    """Burrow-style verdicts over a sliding window of lag observations per consumer group.

    Feed it every sweep's :class:`GroupLag` (or :class:`LagResult`) in time order; it keeps the
    last ``window`` observations of each shard and nothing else: about 200 bytes each, so 17 MB
    for 2,000 groups of 4 shards with ``window=10``. :meth:`observe_all` and :meth:`forget` free
    groups that went away; a caller of :meth:`observe` alone must forget them itself.

    :param allowed_lag: seconds of lag that are still healthy (a consumer that commits every few
        seconds always shows a little).
    :param window: how many observations of a group the rules look back over.
    :param stop_after: seconds without a commit, while data waits, after which a shard is STOP.
        Default: the time the window spans, never less than ``allowed_lag``. Keep it above your
        consumers' commit interval.
    :raises ValueError: a parameter is out of range.

    Example::

        health = HealthEvaluator(allowed_lag=60.0, window=10)
        async for result in svc.scan_lag(["my-project"]):
            verdict = health.observe(result)
            if verdict.status is not Health.OK:
                print(verdict.target, verdict.status.name, verdict.reason)
    """

    def __init__(self, allowed_lag: float = 60.0, window: int = 10, stop_after: float | None = None) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an integer >= 1, not {window!r}")
        if not (isinstance(allowed_lag, int | float) and math.isfinite(allowed_lag) and allowed_lag >= 0):
            raise ValueError(f"allowed_lag must be a finite number >= 0, not {allowed_lag!r}")
        if stop_after is not None and not (
            isinstance(stop_after, int | float) and math.isfinite(stop_after) and stop_after > 0
        ):
            raise ValueError(f"stop_after must be a finite number > 0 or None, not {stop_after!r}")
        self.allowed_lag = float(allowed_lag)
        self.window = window
        self.stop_after = None if stop_after is None else float(stop_after)
        self._allowed = format_duration(self.allowed_lag)  # in most reasons; format it once
        self._groups: dict[CheckpointTarget, dict[int, _ShardHistory]] = {}

    def __repr__(self) -> str:
        return (
            f"HealthEvaluator(allowed_lag={self.allowed_lag!r}, window={self.window!r}, "
            f"stop_after={self.stop_after!r}, groups={len(self._groups)})"
        )

    @property
    def tracked_groups(self) -> int:
        """How many groups have history (to check that forgetting works)."""
        return len(self._groups)

    def observe(self, observation: GroupLag | LagResult) -> GroupHealth:
        """Add one observation of a group to its window and return the group's verdict.

        :raises TypeError: ``observation`` is neither a GroupLag nor a LagResult.
        """
        if isinstance(observation, LagResult):
            if observation.error is not None:
                return self._failed(observation)
            observation = observation.unwrap()
        if not isinstance(observation, GroupLag):
            raise TypeError(f"expected GroupLag or LagResult, not {type(observation).__name__}")
        return self._observe(observation)

    def observe_all(self, observations: Iterable[GroupLag | LagResult]) -> list[GroupHealth]:
        """Observe one whole sweep, then forget every group it did not include.

        A group that is gone (deleted, or no longer matched by the sweep's filters) must not
        linger and turn STOP; feed each sweep whole so that it is forgotten.
        """
        verdicts = [self.observe(o) for o in observations]
        seen = {v.target for v in verdicts}
        for target in [t for t in self._groups if t not in seen]:
            del self._groups[target]
        return verdicts

    def forget(self, target: CheckpointTarget) -> None:
        """Drop a group's history (no error if there is none)."""
        self._groups.pop(target, None)

    # --- internals --------------------------------------------------------------------------

    def _failed(self, result: LagResult) -> GroupHealth:
        error = result.error
        assert error is not None
        code = safe_text(error.error_code or type(error).__name__, 64)
        if isinstance(error, NotFoundError):
            # Gone: ERR this once, then no history (a group re-created later starts afresh).
            self.forget(result.target)
            reason = f"group not found ({code})"
        else:
            reason = f"lag could not be read ({code})"
        return GroupHealth(result.target, Health.ERR, (), None, reason)

    def _observe(self, lag: GroupLag) -> GroupHealth:
        history = self._groups.setdefault(lag.target, {})
        current = {s.shard for s in lag.shards}
        for gone in [shard for shard in history if shard not in current]:
            del history[gone]  # merged or otherwise gone: a later shard of that id starts afresh
        verdicts = []
        for shard in lag.shards:
            shard_history = history.get(shard.shard)
            if shard_history is None:
                shard_history = history[shard.shard] = _ShardHistory(self.window)
            shard_history.add(shard, lag.as_of)
            status, reason = self._judge(shard, shard_history.samples)
            verdicts.append(ShardHealth(shard.shard, status, shard.lag_seconds, reason))
        return _group(lag, tuple(verdicts))

    def _stop_after(self, samples: Sequence[_Sample]) -> float:
        if self.stop_after is not None:
            return self.stop_after
        return max(_seconds(samples[-1].as_of, samples[0].as_of), self.allowed_lag)

    def _judge(self, shard: ShardLag, samples: Sequence[_Sample]) -> tuple[Health, str]:
        now = samples[-1]
        allowed = self._allowed
        if now.caught_up:
            return Health.OK, _CAUGHT_UP
        if now.lag is None:
            return self._never_committed(samples)
        lag = format_duration(now.lag)
        expired = " (checkpoint expired: unread data was deleted)" if shard.expired else ""

        rewound_at = _last_rewind(samples)
        if rewound_at is not None and not any(self._fine(s) for s in samples[rewound_at:]):
            seen = samples[rewound_at].as_of
            when = "" if seen == now.as_of else f" {format_duration(_seconds(now.as_of, seen))} ago"
            return Health.REWIND, f"checkpoint moved back{when}, lag {lag} > allowed {allowed}{expired}"

        idle = self._idle_seconds(shard, samples)
        limit = self._stop_after(samples)
        if idle is not None and idle > limit:
            return (
                Health.STOP,
                f"no commit for {format_duration(idle)} > {format_duration(limit)}, lag {lag}{expired}",
            )

        if any(self._fine(s) for s in samples):
            return Health.OK, f"lag {lag} within allowed {allowed} in the last {_sweeps(len(samples))}"

        # "update_time moved while the checkpoint held" needs two observations by construction.
        stuck = _stuck_run(samples)
        first, last = stuck[0].update_s, stuck[-1].update_s
        if first is not None and last is not None and last > first:
            return (
                Health.STALL,
                f"commits arrive but the checkpoint has not moved in {_sweeps(len(stuck))}, lag {lag}",
            )

        # The trend is judged over the trailing samples that have a lag (a never-committed one has none).
        lags = [s.lag for s in _trailing(samples, lambda s: s.lag is not None) if s.lag is not None]
        need = min(WARN_MIN_OBSERVATIONS, self.window)
        if len(lags) < need:
            return Health.OK, f"lag {lag} > allowed {allowed}, {len(lags)} of {need} sweeps to judge"
        if now.lag < lags[0]:
            return Health.OK, f"lag {lag} > allowed {allowed}, decreasing over {_sweeps(len(lags))}"
        trend = (
            ""
            if len(lags) == 1
            else f", {'rising' if now.lag > lags[0] else 'not decreasing'} over {_sweeps(len(lags))}"
        )
        return Health.WARN, f"lag {lag} > allowed {allowed}{trend}{expired}"

    def _fine(self, sample: _Sample) -> bool:
        return sample.caught_up or (sample.lag is not None and sample.lag <= self.allowed_lag)

    def _idle_seconds(self, shard: ShardLag, samples: Sequence[_Sample]) -> float | None:
        """Seconds the consumer has had data to read without committing, or None if unknown."""
        if shard.commit_age_seconds is None:
            return None
        idle = shard.commit_age_seconds
        for s in reversed(samples):
            if s.caught_up:
                # Nothing to read then, so nothing to commit: the clock starts there at the earliest.
                idle = min(idle, _seconds(samples[-1].as_of, s.as_of))
                break
        return idle

    def _never_committed(self, samples: Sequence[_Sample]) -> tuple[Health, str]:
        now = samples[-1]
        if now.latest_s is None:
            return Health.OK, "never committed, nothing to read"
        run = _trailing(samples, lambda s: s.lag is None and not s.caught_up and s.latest_s is not None)
        first_seen = run[0].latest_s
        assert first_seen is not None
        if len(run) >= min(WARN_MIN_OBSERVATIONS, self.window) and now.latest_s > first_seen:
            return Health.WARN, f"never committed while new data arrived over {_sweeps(len(run))}"
        return Health.OK, "never committed (lag unknown)"


def _sweeps(n: int) -> str:
    return "1 sweep" if n == 1 else f"{n} sweeps"


def _last_rewind(samples: Sequence[_Sample]) -> int | None:
    """Index of the last sample whose checkpoint is behind the one before it, or None."""
    # samples[0] compared itself with a sample that has left the window: not a move within it.
    for i in range(len(samples) - 1, 0, -1):
        if samples[i].moved_back:
            return i
    return None


def _trailing(samples: Sequence[_Sample], keep: Callable[[_Sample], bool]) -> list[_Sample]:
    """The longest run of samples at the end of the window that all pass ``keep`` (oldest first)."""
    run: list[_Sample] = []
    for s in reversed(samples):
        if not keep(s):
            break
        run.append(s)
    run.reverse()
    return run


def _stuck_run(samples: Sequence[_Sample]) -> Sequence[_Sample]:
    """The trailing samples that all hold the newest checkpoint (oldest first; never empty)."""
    start = len(samples) - 1
    while start > 0 and samples[start].held:
        start -= 1
    return samples[start:]


def _group(lag: GroupLag, shards: tuple[ShardHealth, ...]) -> GroupHealth:
    lags = [s.lag_seconds for s in shards if s.lag_seconds is not None]
    max_lag = max(lags) if lags else None
    if not shards:
        return GroupHealth(lag.target, Health.OK, shards, None, "no shards")
    if all(s.reason == _CAUGHT_UP for s in shards):
        return GroupHealth(lag.target, Health.OK, shards, max_lag, "all shards caught up")
    # The worst shard speaks for the group: highest status, then largest lag, then lowest id.
    worst = max(shards, key=lambda s: (s.status, s.lag_seconds or 0.0, -s.shard))
    bad = sum(1 for s in shards if s.status is not Health.OK)
    more = f" (+{bad - 1} more shards not OK)" if bad > 1 else ""
    return GroupHealth(
        lag.target, worst.status, shards, max_lag, f"shard {worst.shard}: {worst.reason}{more}"
    )
