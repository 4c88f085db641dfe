"""Request bytes for :class:`~aiosls.transport.http11.Http11Transport`, sans I/O (RFC 9112 §3).

Header values are encoded exactly as aiohttp's writer encodes them (UTF-8, with the same
control characters refused), so one :class:`~aiosls.transport.HttpRequest` puts the same header
bytes on the wire through either transport; ``tests/loopback/test_header_bytes.py`` compares
them. Stricter than aiohttp on purpose: a method or header name must be an RFC 9110 token, the
target an already-encoded path, and the framing headers are the transport's own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = ["serialize_request"]

# RFC 9110 §5.6.2 token.
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# What aiohttp's header writer refuses (http_writer._FORBIDDEN_HEADER_CHARS_RE): every C0
# control but HTAB, and DEL. CR, LF and NUL among them: no header injection, no smuggling.
_FORBIDDEN: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_METHODS_WITH_LENGTH: Final = frozenset({"POST", "PUT", "PATCH"})
_FRAMING: Final = frozenset({"content-length", "transfer-encoding"})
# Request header names (and methods) already checked: tokens, and not ours to set (_FRAMING).
# The same dozen repeat on every request; bounded, so a caller's odd names cannot grow it.
_checked_names: set[str] = set()
_MAX_CHECKED: Final = 1024


def _check_name(name: str) -> None:
    """A method or header name must be a token, and not a framing header."""
    if name not in _checked_names:
        if not _TOKEN.fullmatch(name):
            raise ValueError("invalid header name")
        if name.lower() in _FRAMING:
            raise ValueError(f"{name} is set by the transport, not by the request")
        if len(_checked_names) < _MAX_CHECKED:
            _checked_names.add(name)


def serialize_request(method: str, target: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """The request's bytes. ``headers`` should include ``Host``; ``Content-Length`` is added.

    :raises ValueError: a control character (CR, LF, NUL, ...) in a value, a name that is not
        a token, a target that is not printable ASCII without spaces, a lone surrogate, or a
        ``Content-Length`` or ``Transfer-Encoding`` of the caller's (the body's framing is ours
        to state: a second one would be request smuggling). The message never quotes a value.
    """
    _check_name(method)
    if not (target.startswith("/") and target.isascii() and target.isprintable()) or " " in target:
        raise ValueError("request target must be an encoded absolute path")
    for name in headers:
        _check_name(name)
    values = headers.values()
    if _FORBIDDEN.search("".join(values)):
        raise ValueError("header value contains a control character")
    parts = [f"{method} {target} HTTP/1.1\r\n"]
    parts += [f"{name}: {value}\r\n" for name, value in headers.items()]
    if body or method in _METHODS_WITH_LENGTH:
        parts.append(f"Content-Length: {len(body)}\r\n")
    parts.append("\r\n")
    text = "".join(parts)
    try:
        head = text.encode("utf-8")
    except UnicodeEncodeError:
        head = None  # a lone surrogate (e.g. from surrogateescape)
    if head is None:
        # Raised out here: the UnicodeEncodeError quotes the whole text, and must not be its context.
        raise ValueError("header value is not encodable as UTF-8")
    return head + body if body else head
