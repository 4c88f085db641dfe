"""Server-supplied text made safe for one log line or one exception message (pure)."""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_TEXT", "safe_text"]

#: Longest server-supplied fragment that goes into a log line or an error message.
MAX_TEXT: Final = 200


def _as_str(text: object) -> str:
    if isinstance(text, str):
        return text
    try:
        return str(text)
    except ValueError:  # an int past sys.get_int_max_str_digits()
        return f"<{type(text).__name__} too large to show>"


def safe_text(text: object, limit: int = MAX_TEXT) -> str:
    """``text`` with every non-printable character escaped (no ANSI escape, no newline that
    forges a log line, no bidi override), at most ``limit`` characters of it, escapes
    included, with ``...`` marking a cut. Only the first ``limit`` characters are looked at."""
    value = _as_str(text)
    head = value[:limit]
    cut = len(value) > limit
    if not head.isprintable():
        pieces: list[str] = []
        size = 0
        for c in head:
            piece = c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
            size += len(piece)
            if size > limit:
                cut = True
                break
            pieces.append(piece)
        head = "".join(pieces)
    return head + "..." if cut else head
