"""Server-supplied text made safe for one log line or one exception message (pure)."""

from __future__ import annotations

from typing import Final

__all__ = ["safe_text"]

#: Longest server-supplied fragment that goes into a log line or an error message.
MAX_TEXT: Final = 200


def safe_text(text: object, limit: int = MAX_TEXT) -> str:
    """``text`` with control characters escaped (no ANSI escapes, no forged log lines), cut to
    ``limit`` characters with ``...`` marking the cut."""
    value = text if isinstance(text, str) else str(text)
    if len(value) > limit:
        value = value[:limit] + "..."
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in value)
