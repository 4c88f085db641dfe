"""Server-supplied text made safe for one log line or one exception message (pure)."""

from __future__ import annotations

from typing import Final

__all__ = ["safe_text"]

#: Longest server-supplied fragment that goes into a log line or an error message.
MAX_TEXT: Final = 200


def safe_text(text: object, limit: int = MAX_TEXT) -> str:
    """``text`` with control characters escaped (no ANSI escapes, no forged log lines), cut to
    ``limit`` characters with ``...`` marking the cut."""
    if isinstance(text, str):
        value = text
    else:
        try:
            value = str(text)
        except ValueError:  # an int past sys.get_int_max_str_digits()
            value = f"<{type(text).__name__} too large to show>"
    if len(value) > limit:
        value = value[:limit] + "..."
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in value)
