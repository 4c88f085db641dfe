"""Timeout settings: per attempt (connect, read) and per call (across retries)."""

from __future__ import annotations

from typing import Any, Final

import attrs

__all__ = ["DEFAULT_TIMEOUTS", "Timeouts"]


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be > 0 seconds or None, not {value!r}")


@attrs.frozen
class Timeouts:
    """Seconds. ``connect`` and ``read`` bound each attempt; ``total`` bounds a whole call,
    backoff sleeps included (``None``: no limit beyond the retry policy's deadline)."""

    connect: float = attrs.field(default=5.0, validator=_positive_or_none)
    read: float = attrs.field(default=30.0, validator=_positive_or_none)
    total: float | None = attrs.field(default=None, validator=_positive_or_none)


DEFAULT_TIMEOUTS: Final = Timeouts()
