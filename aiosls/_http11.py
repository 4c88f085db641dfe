"""HTTP/1.1 message framing, sans I/O: request bytes out, response bytes in (RFC 9112).

Only what a client of one JSON API needs: one request at a time per connection (no
pipelining), bodies framed by ``Content-Length``, ``chunked`` or the connection's end, and
``gzip``/``deflate`` bodies decoded under the same size cap as plain ones. Anything else a
server sends is a :class:`ProtocolError`, never a guess. The transport in
:mod:`aiosls.transport.http11` moves the bytes.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from typing import Final

from ._http import LowerCaseHeaders

__all__ = ["BodyTooLarge", "Headers", "ProtocolError", "ResponseParser", "serialize_request"]

#: A response head (status line + headers) longer than this is not an API answer.
MAX_HEAD_BYTES: Final = 64 * 1024
_MAX_CHUNK_LINE: Final = 1024
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_METHODS_WITH_LENGTH: Final = frozenset({"POST", "PUT", "PATCH"})
_FRAMING: Final = frozenset({"content-length", "transfer-encoding"})
# Response header names already checked to be RFC 9110 tokens, and their lower-case keys: the
# same dozen repeat on every message.
_known_names: dict[str, str] = {}
# Request header names (and methods) already checked: tokens, and not ours to set (_FRAMING).
_request_names: set[str] = set()


Headers = LowerCaseHeaders


class ProtocolError(Exception):
    """The peer's bytes are not a valid HTTP/1.1 response (or our request could not be framed)."""


class BodyTooLarge(ProtocolError):
    """The body (after decoding) is larger than the caller's cap; the head was valid."""

    def __init__(self, status: int, headers: Mapping[str, str], what: str) -> None:
        super().__init__(what)
        self.status = status
        self.headers = headers


def _check_name(name: str) -> None:
    """A request's method or header name must be a token, and not a framing header."""
    if name not in _request_names:
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if name.lower() in _FRAMING:
            raise ValueError(f"{name} is set by the transport, not by the request")
        if len(_request_names) < 1024:  # bounded, like _known_names
            _request_names.add(name)


def serialize_request(method: str, target: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """The request's bytes. ``headers`` must include ``Host``; ``Content-Length`` is added.

    :raises ValueError: a CR, LF or NUL in any part (header injection), a name that is not a
        token, a target that is not printable ASCII without spaces, a character that is not
        Latin-1, or a ``Content-Length`` or ``Transfer-Encoding`` of the caller's (the body's
        framing is ours to state: a second one would be request smuggling).
    """
    _check_name(method)
    if not (target.startswith("/") and target.isascii() and target.isprintable()) or " " in target:
        raise ValueError("request target must be an encoded absolute path")
    for name in headers:
        _check_name(name)
    parts = [f"{method} {target} HTTP/1.1\r\n"]
    parts += [f"{name}: {value}\r\n" for name, value in headers.items()]
    lines = len(headers) + 2
    if body or method in _METHODS_WITH_LENGTH:
        parts.append(f"Content-Length: {len(body)}\r\n")
        lines += 1
    parts.append("\r\n")
    head = "".join(parts)
    # Each line ends in exactly one CRLF; any other CR or LF (or a NUL) came from a value.
    if head.count("\n") != lines or head.count("\r") != lines or "\x00" in head:
        raise ValueError("header value contains a control character")
    return head.encode("latin-1") + body  # UnicodeEncodeError is a ValueError


# Parser states.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _TRAILERS, _UNTIL_EOF, _DONE = range(7)


class ResponseParser:
    """Feeds on one response's bytes; :attr:`done` once it is whole.

    :param method: the request's method (a ``HEAD`` answer has no body).
    :param max_body: cap on the body, counted both as received and as decoded.
    """

    __slots__ = (
        "_buf",
        "_chunk_left",
        "_chunks",
        "_encoding",
        "_length",
        "_max_body",
        "_received",
        "_state",
        "body",
        "headers",
        "keep_alive",
        "method",
        "status",
    )

    def __init__(self, *, method: str = "GET", max_body: int) -> None:
        self.method = method
        self._max_body = max_body
        self._buf = b""
        self._state = _HEAD
        # The body so far, when it comes in more than one read: one buffer, not a list of
        # pieces (a bytes object per 2-byte chunk would cost ~20 times the body's size).
        self._chunks = bytearray()
        self._received = 0
        self._length = 0
        self._chunk_left = 0
        self._encoding = "identity"
        self.status = 0
        self.headers = Headers()
        self.body = b""
        self.keep_alive = False

    @property
    def done(self) -> bool:
        """True once the whole response has been read."""
        return self._state == _DONE

    @property
    def started(self) -> bool:
        """True once any byte of the response has arrived (an interim 1xx answer counts)."""
        return bool(self._buf) or self._state != _HEAD or self.status != 0

    def feed(self, data: bytes) -> bool:
        """Take the next bytes; True once the response is complete.

        :raises ProtocolError: the bytes are not a valid response (or too large).
        """
        buf = self._buf + data if self._buf else data
        state = self._state
        # A loop, not recursion: after an interim 1xx answer the real one follows, and a
        # server may send thousands of them in one read.
        while state == _HEAD:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                # +3: part of the terminator may be here, the rest in the next read.
                if len(buf) > MAX_HEAD_BYTES + 3:
                    raise ProtocolError("response head too large")
                self._buf = buf
                return False
            if end > MAX_HEAD_BYTES:
                raise ProtocolError("response head too large")
            self._head(buf[:end])
            buf = buf[end + 4 :]
            state = self._state
        if state == _LENGTH:
            # The common case: the whole body is here; slice once, no list.
            if not self._chunks and len(buf) >= self._length:
                if len(buf) > self._length:
                    self.keep_alive = False  # bytes we never asked for: do not reuse
                return self._finish(buf[: self._length])
            self._chunks += buf
            self._received += len(buf)
            self._buf = b""
            if self._received >= self._length:
                if self._received > self._length:
                    self.keep_alive = False
                    del self._chunks[self._length :]
                return self._finish(bytes(self._chunks))
            return False
        if state == _UNTIL_EOF:
            self._take(buf)
            self._buf = b""
            return False
        if state == _DONE:
            if buf:
                self.keep_alive = False
            return True
        return self._chunked(buf)

    def feed_eof(self) -> None:
        """The peer closed the connection.

        :raises ProtocolError: the response was incomplete (or never started).
        """
        if self._state == _UNTIL_EOF:
            self._finish(bytes(self._chunks))
        elif self._state != _DONE:
            raise ProtocolError("connection closed before the response was complete")

    # --- internals ------------------------------------------------------------------------------

    def _head(self, raw: bytes) -> None:
        text = raw.decode("latin-1")
        lines = text.split("\r\n")
        # Every line ends in CRLF: a bare CR or LF, or a NUL, is not HTTP/1.1 (RFC 9112 §2.2).
        breaks = len(lines) - 1
        if text.count("\n") != breaks or text.count("\r") != breaks or "\x00" in text:
            raise ProtocolError("response head contains a bare CR, LF or NUL")
        line = lines[0]
        code = line[9:12]
        if (
            len(line) < 12
            or line[:7] != "HTTP/1."
            or line[7] not in "01"
            or line[8] != " "
            or not (code.isascii() and code.isdigit())
            or (len(line) > 12 and line[12] != " ")
        ):
            raise ProtocolError(f"invalid status line {line[:40]!r}")
        status = int(code)
        if status < 100:
            raise ProtocolError(f"invalid status code {status}")
        headers = Headers()
        for field in lines[1:]:
            name, sep, value = field.partition(":")
            key = _known_names.get(name)
            if key is None or not sep:
                if not sep or not _TOKEN.fullmatch(name):
                    # Also an obs-fold continuation line (leading whitespace): RFC 9112 §5.2.
                    raise ProtocolError(f"invalid header line {field[:40]!r}")
                key = name.lower()
                if len(_known_names) < 1024:  # bounded: a hostile server cannot grow it
                    _known_names[name] = key
            value = value.strip(" \t")
            if key in headers:
                headers[key] = f"{headers[key]}, {value}"
            else:
                headers[key] = value
        self.status = status  # an interim one's too: it makes the response started
        if status < 200:
            if status == 101:
                raise ProtocolError("unexpected 101 Switching Protocols")
            return  # interim: stay in _HEAD
        self.headers = headers
        connection = headers.get("connection", "").lower()
        if line[7] == "1":
            self.keep_alive = "close" not in connection
        else:
            self.keep_alive = "keep-alive" in connection
        encoding = headers.get("content-encoding")
        if encoding is not None:
            self._encoding = encoding.strip().lower()
            if self._encoding not in ("identity", "gzip", "x-gzip", "deflate"):
                raise ProtocolError(f"unsupported Content-Encoding {self._encoding[:40]!r}")
        # Body framing, RFC 9112 §6.3.
        if self.method == "HEAD" or status in (204, 304):
            self._state = _LENGTH
            self._length = 0
            return
        transfer = headers.get("transfer-encoding")
        if transfer is not None:
            if "content-length" in headers or line[7] == "0":
                # Both framings, or TE in HTTP/1.0: framing is faulty, never reuse (RFC 9112 §6.1).
                self.keep_alive = False
            codings = [c.strip().lower() for c in transfer.split(",")]
            chunked = codings[-1] == "chunked"
            # Besides one final chunked, only the no-op identity: we could not undo any other
            # coding, and must not hand its bytes over as the body.
            if any(c != "identity" for c in (codings[:-1] if chunked else codings)):
                raise ProtocolError(f"unsupported Transfer-Encoding {transfer[:40]!r}")
            if chunked:
                self._state = _CHUNK_SIZE
            else:
                self._state = _UNTIL_EOF
                self.keep_alive = False
            return
        length = headers.get("content-length")
        if length is None:
            self._state = _UNTIL_EOF
            self.keep_alive = False
            return
        value = length
        if not (value.isdigit() and value.isascii()):  # else: a list of equal values, or garbage
            values = {v.strip() for v in length.split(",")}
            value = values.pop()
            if values or not (value.isascii() and value.isdigit()):
                raise ProtocolError(f"invalid Content-Length {length[:40]!r}")
        if len(value) > 18:
            # int() refuses over 4300 digits (ValueError); 10**18 bytes is no body anyway.
            value = value.lstrip("0") or "0"
            if len(value) > 18:
                raise BodyTooLarge(status, headers, f"Content-Length of {len(value)} digits")
        self._length = int(value)
        if self._length > self._max_body:
            raise BodyTooLarge(status, headers, f"Content-Length {self._length}")
        self._state = _LENGTH

    def _take(self, data: bytes) -> None:
        if data:
            self._received += len(data)
            if self._received > self._max_body:
                raise BodyTooLarge(self.status, self.headers, f"more than {self._max_body} bytes")
            self._chunks += data

    def _chunked(self, buf: bytes) -> bool:
        pos = 0
        state = self._state
        while True:
            if state == _CHUNK_SIZE:
                end = buf.find(b"\r\n", pos)
                # The same limit whether the line's CRLF is here or (+1: its CR only) not yet.
                if end < 0 and len(buf) - pos <= _MAX_CHUNK_LINE + 1:
                    break
                if end < 0 or end - pos > _MAX_CHUNK_LINE:
                    raise ProtocolError("chunk size line too long")
                size = buf[pos:end].split(b";", 1)[0].strip(b" \t")
                if not size or len(size) > 16 or size.strip(b"0123456789abcdefABCDEF"):
                    raise ProtocolError(f"invalid chunk size {bytes(buf[pos:end][:40])!r}")
                pos = end + 2
                self._chunk_left = int(size, 16)
                state = _CHUNK_DATA if self._chunk_left else _TRAILERS
            elif state == _CHUNK_DATA:
                need = self._chunk_left + 2
                if len(buf) - pos < need:
                    # Take what is here, keep the CRLF check for when the chunk is whole.
                    avail = min(len(buf) - pos, self._chunk_left)
                    self._take(buf[pos : pos + avail])
                    self._chunk_left -= avail
                    pos += avail
                    break
                self._take(buf[pos : pos + self._chunk_left])
                if buf[pos + self._chunk_left : pos + need] != b"\r\n":
                    raise ProtocolError("chunk not terminated by CRLF")
                pos += need
                self._chunk_left = 0
                state = _CHUNK_SIZE
            else:  # _TRAILERS: a field section up to an empty line, bounded like the head; ignored
                if buf.startswith(b"\r\n", pos):
                    pos += 2
                else:
                    end = buf.find(b"\r\n\r\n", pos)
                    if end < 0 and len(buf) - pos <= MAX_HEAD_BYTES + 3:
                        break
                    if end < 0 or end - pos > MAX_HEAD_BYTES:
                        raise ProtocolError("chunked trailers too large")
                    pos = end + 4
                if pos < len(buf):
                    self.keep_alive = False
                self._state = state
                return self._finish(bytes(self._chunks))
        self._state = state
        self._buf = buf[pos:]
        return False

    def _finish(self, body: bytes) -> bool:
        if self._encoding != "identity" and body:
            body = self._decode(body)
        self.body = body
        self._state = _DONE
        self._buf = b""
        if self._chunks:
            self._chunks = bytearray()
        return True

    def _decode(self, body: bytes) -> bytes:
        if self._encoding == "deflate":
            # "deflate" is zlib-wrapped by the RFC, raw by some servers: accept both.
            zlib_header = len(body) > 1 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0
            wbits = zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS
        else:
            wbits = 16 + zlib.MAX_WBITS
        decoder = zlib.decompressobj(wbits)
        try:
            out = decoder.decompress(body, self._max_body + 1)
        except zlib.error as exc:
            raise ProtocolError(f"{self._encoding} body does not decode: {exc}") from None
        if len(out) > self._max_body:
            raise BodyTooLarge(self.status, self.headers, f"more than {self._max_body} bytes decoded")
        if not decoder.eof:
            raise ProtocolError(f"{self._encoding} body is truncated")
        if decoder.unused_data:
            # Garbage, or a second gzip member: dropping it would truncate the body silently.
            raise ProtocolError(f"{self._encoding} body has bytes after its end")
        return out
