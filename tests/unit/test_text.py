"""``safe_text``: server text escaped and capped before it reaches a log line or a message."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiosls._text import MAX_TEXT, safe_text


def test_printable_text_is_unchanged() -> None:
    assert safe_text("ReadQuotaExceed") == "ReadQuotaExceed"
    assert safe_text("caf\u00e9 \u4e2d\u6587") == "caf\u00e9 \u4e2d\u6587"  # printable non-ASCII is kept
    assert safe_text("") == ""


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),  # ANSI colour: no escape reaches a terminal
        ("code\nFAKE: LOG LINE", "code\\nFAKE: LOG LINE"),  # a newline cannot forge a log line
        ("a\r\nb", "a\\r\\nb"),
        ("nul\x00", "nul\\x00"),
        ("\u202eevil", "\\u202eevil"),  # a bidi override cannot reorder what follows
        ("line\u2028sep", "line\\u2028sep"),
        ("\ud800", "\\ud800"),  # a lone surrogate (surrogateescape'd bytes) is shown, not raised on
    ],
)
def test_non_printable_characters_are_escaped(raw: str, shown: str) -> None:
    assert safe_text(raw) == shown


def test_long_text_is_cut_with_a_marker() -> None:
    assert safe_text("x" * 100_000) == "x" * MAX_TEXT + "..."
    assert safe_text("abcdef", 3) == "abc..."
    assert safe_text("abc", 3) == "abc"


def test_escapes_count_toward_the_limit() -> None:
    # 100 KB of escape characters still gives at most `limit` characters (plus the marker).
    assert safe_text("\x1b" * 100_000, 10) == "\\x1b\\x1b..."
    assert safe_text("ab\n", 3) == "ab..."  # the escape would not fit: cut before it
    assert safe_text("ab\n", 4) == "ab\\n"


def test_non_strings_are_rendered() -> None:
    assert safe_text(404) == "404"
    assert safe_text(None) == "None"
    assert safe_text(ValueError("bad\nthing")) == "bad\\nthing"
    assert safe_text(10**5000) == "<int too large to show>"


@given(st.text(), st.integers(1, 300))
def test_output_is_printable_and_bounded(text: str, limit: int) -> None:
    shown = safe_text(text, limit)
    assert shown.isprintable()
    assert len(shown) <= limit + 3
    if text.isprintable() and len(text) <= limit:
        assert shown == text
