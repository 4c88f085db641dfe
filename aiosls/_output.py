"""Rendering for the ``aiosls`` command: tables, JSON documents, NDJSON lines, progress.

Pure functions of results and a reference time, so the command's output is testable and the
same for every source (the emulator or the real service).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

from .errors import SlsError
from .models import CheckpointResult, ShardCheckpoint

__all__ = [
    "Progress",
    "age",
    "checkpoint_dict",
    "checkpoints_table",
    "error_dict",
    "groups_table",
    "printable",
    "result_dict",
    "status_counts",
    "table",
]


def age(when: datetime | None, now: datetime) -> str:
    """``42s``, ``5m``, ``3h``, ``2d``; ``never`` for None."""
    if when is None:
        return "never"
    seconds = max(0, int((now - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def checkpoint_dict(cp: ShardCheckpoint) -> dict[str, Any]:
    """A checkpoint as a JSON object (update time both ISO 8601 and raw microseconds)."""
    return {
        "shard": cp.shard,
        "checkpoint": cp.checkpoint,
        "committed": cp.committed,
        "consumer": cp.consumer,
        "update_time": cp.update_time.isoformat() if cp.committed else None,
        "update_time_us": cp.update_time_us,
    }


def error_dict(error: BaseException) -> dict[str, Any]:
    """An error as a JSON object: class, code, message, status, request id."""
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


def result_dict(result: CheckpointResult) -> dict[str, Any]:
    """One fan-out result as a JSON object (an NDJSON line)."""
    t = result.target
    out: dict[str, Any] = {
        "project": t.project,
        "logstore": t.logstore,
        "consumer_group": t.consumer_group,
        "shard": t.shard,
        "ok": result.ok,
    }
    if result.error is not None:
        out["error"] = error_dict(result.error)
    else:
        out["checkpoints"] = [checkpoint_dict(cp) for cp in result.checkpoints or ()]
    return out


def dumps_line(obj: Any) -> str:
    """Compact one-line JSON."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``, ``\\r``, ...): names and consumer ids
    come from the server, and must not move the cursor or recolour the user's terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, right: Iterable[int] = ()) -> str:
    """A plain aligned text table (no external dependency); control characters are escaped."""
    body = [[printable(str(cell)) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in body:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    align_right = set(right)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in align_right else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(row) for row in body)
    return "\n".join(out)


def checkpoints_table(checkpoints: Sequence[ShardCheckpoint], now: datetime) -> str:
    """Per-shard table for ``aiosls checkpoints``."""
    rows = [
        (
            str(cp.shard),
            cp.checkpoint or "-",
            cp.update_time.strftime("%Y-%m-%d %H:%M:%S") if cp.committed else "-",
            age(cp.update_time if cp.committed else None, now),
            cp.consumer or "-",
        )
        for cp in sorted(checkpoints, key=lambda c: c.shard)
    ]
    return table(("SHARD", "CHECKPOINT", "UPDATED (UTC)", "AGE", "CONSUMER"), rows, right=(0,))


def group_row(result: CheckpointResult, now: datetime, stale_after: float) -> tuple[str, ...]:
    """One consumer group's summary row for ``scan``/``demo`` tables."""
    t = result.target
    head = (t.project, t.logstore or "*", t.consumer_group or "*")
    if result.error is not None:
        err = result.error
        code = getattr(err, "error_code", None) or type(err).__name__
        return (*head, "-", "-", "-", "-", f"ERROR {code}")
    cps = result.checkpoints or ()
    committed = [cp for cp in cps if cp.committed]
    last = max((cp.update_time for cp in committed), default=None)
    consumers = sorted({cp.consumer for cp in cps if cp.consumer})
    if not committed:
        status = "never committed"
    elif last is not None and (now - last).total_seconds() > stale_after:
        status = "STALE"
    elif len(committed) < len(cps):
        status = "partial"
    elif not consumers:
        status = "unassigned"
    else:
        status = "ok"
    shown = ",".join(consumers[:3]) + (f",+{len(consumers) - 3}" if len(consumers) > 3 else "")
    return (*head, str(len(cps)), str(len(committed)), age(last, now), shown or "-", status)


def status_counts(results: Sequence[CheckpointResult], now: datetime, *, stale_after: float) -> str:
    """``60 ok, 18 STALE, 12 never committed``: the STATUS column tallied."""
    counts: dict[str, int] = {}
    for r in results:
        status = group_row(r, now, stale_after)[-1]
        status = "ERROR" if status.startswith("ERROR") else status
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def groups_table(results: Sequence[CheckpointResult], now: datetime, *, stale_after: float) -> str:
    """The consumer-group table of ``scan`` and ``demo``."""
    ordered = sorted(results, key=lambda r: (r.target.project, r.target.logstore, r.target.consumer_group))
    rows = [group_row(r, now, stale_after) for r in ordered]
    return table(
        ("PROJECT", "LOGSTORE", "GROUP", "SHARDS", "COMMITTED", "LAST UPDATE", "CONSUMERS", "STATUS"),
        rows,
        right=(3, 4, 5),
    )


class Progress:
    """``scanned N targets (M failed)`` on one rewritten stderr line, only on a terminal."""

    def __init__(self, stream: TextIO | None = None, *, every: int = 50) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = self._stream.isatty()
        self._every = every
        self.done = 0
        self.failed = 0

    def update(self, result: CheckpointResult) -> None:
        self.done += 1
        self.failed += not result.ok
        if self._enabled and self.done % self._every == 0:
            self._stream.write(f"\rscanned {self.done} targets ({self.failed} failed)")
            self._stream.flush()

    def finish(self) -> None:
        if self._enabled and self.done >= self._every:
            self._stream.write("\r\033[K")
            self._stream.flush()
