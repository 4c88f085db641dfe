"""One HTTP/1.1 response, framed by httptools (llhttp), sans I/O: bytes in, status/headers/body out.

llhttp does the framing (status line, fields, ``Content-Length``, ``chunked``, 1xx, 204/304)
and refuses malformed messages, as it does for aiohttp's own C parser. This module adds what a
client of one JSON API must bound or refuse on top of it:

- the head (status line + fields, interim answers and trailers included) is capped at
  :data:`MAX_HEAD_BYTES`, and no more than :data:`MAX_INTERIM_RESPONSES` 1xx answers come before
  the real one (llhttp has neither limit, and httptools buffers a field until it ends);
- the body is capped as received and, for ``gzip``/``deflate``, as decoded, incrementally, so a
  compression bomb stops at the cap instead of after inflating;
- only ``HTTP/1.0`` and ``HTTP/1.1`` (llhttp also takes RTSP, ICE and an ``HTTP/2.0`` line);
  ``101`` is refused, and so is a ``Transfer-Encoding`` other than ``chunked`` (after
  ``identity``): its bytes could not be undone;
- bytes after the end of the response (a stream out of step) forbid reusing the connection.

Without httptools this module still imports; :func:`require_httptools` names the extra to install.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any, Final

from ..._http import LowerCaseHeaders
from ..._text import safe_text

try:
    import httptools

    _HTTPTOOLS = True
except ImportError:  # pragma: no cover - exercised in a subprocess (test_http11_transport)
    _HTTPTOOLS = False

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "MAX_HEAD_BYTES",
    "MAX_INTERIM_RESPONSES",
    "BodyTooLarge",
    "ProtocolError",
    "ResponseReader",
    "require_httptools",
]

#: Longest response head (status line and fields; interim answers and trailers count too).
MAX_HEAD_BYTES: Final = 64 * 1024
#: Most interim (1xx) answers accepted before the final one; a server that sends more is stalling.
MAX_INTERIM_RESPONSES: Final = 10
_ENCODINGS: Final = frozenset({"identity", "gzip", "x-gzip", "deflate"})
# Response header names seen before, and their lower-case str keys: the same dozen repeat on
# every message. Bounded, so a hostile server cannot grow it.
_names: dict[bytes, str] = {}
_MAX_NAMES: Final = 1024


def require_httptools() -> None:
    """Raise a one-line ImportError unless httptools (the ``speedups`` extra) is installed."""
    if not _HTTPTOOLS:  # pragma: no cover - exercised in a subprocess (test_http11_transport)
        raise ImportError("Http11Transport needs httptools: pip install 'aiosls[speedups]'")


class ProtocolError(Exception):
    """The peer's bytes are not a valid HTTP/1.1 response (or not one this client accepts)."""


class BodyTooLarge(ProtocolError):
    """The body (as received, or decoded) is larger than the caller's cap; the head was valid."""

    def __init__(self, status: int, headers: Mapping[str, str], what: str) -> None:
        super().__init__(what)
        self.status = status
        self.headers = headers


class _Stop(Exception):
    """Raised from a callback to stop llhttp: the response ended (HEAD) or bytes follow it.

    Callbacks raise :class:`ProtocolError` the same way: httptools hands it back as the context
    of its ``HttpParserCallbackError``.
    """


class ResponseReader:
    """Feeds on one response's bytes (the answer to one request); :attr:`done` once it is whole.

    :param method: the request's method (a ``HEAD`` answer has no body).
    :param max_body: cap on the body, counted both as received and as decoded.
    """

    __slots__ = (
        "_chunks",
        "_decoder",
        "_encoding",
        "_faulty",
        "_final",
        "_head_bytes",
        "_interim",
        "_magic",
        "_max_body",
        "_parser",
        "_pending",
        "_received",
        "_stalled",
        "_until_eof",
        "body",
        "done",
        "headers",
        "keep_alive",
        "method",
        "started",
        "status",
    )

    def __init__(self, *, method: str = "GET", max_body: int) -> None:
        if not _HTTPTOOLS:  # pragma: no cover - exercised in a subprocess (test_http11_transport)
            require_httptools()
        self.method = method
        self._max_body = max_body
        self._parser: Any = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers = LowerCaseHeaders()
        #: The body once done (so far: its first piece, as it came).
        self.body = b""
        # Then, from its second piece: one bytearray (never a list of pieces: a bytes object per
        # 2-byte chunk would cost ~20 times the body's size).
        self._chunks: bytearray | None = None
        self.keep_alive = False
        #: True once the whole response has been read.
        self.done = False
        #: True once any byte of the response has arrived (an interim 1xx answer counts).
        self.started = False
        self._final = False  # the head being read is the final answer's (not a 1xx)
        self._until_eof = False  # the body ends with the connection
        self._interim = 0
        self._magic = b""  # the first bytes of the stream, until they are known to be "HTTP/"
        self._head_bytes = 0
        self._received = 0
        self._stalled = 0  # bytes fed since the parser last handed anything over
        self._faulty = False  # Transfer-Encoding in HTTP/1.0: framing that forbids reuse
        self._encoding = "identity"
        self._decoder: Any = None
        self._pending = b""  # the first byte of a deflate body, until its second says which kind

    # --- feeding --------------------------------------------------------------------------------

    def feed(self, data: bytes) -> bool:
        """Take the next bytes; True once the response is complete.

        :raises ProtocolError: the bytes are not a valid response (or too large).
        """
        done = self.done  # (a local: the callbacks below change the attribute)
        if done:
            if data:
                self.keep_alive = False  # bytes nobody asked for: the stream is out of step
            return True
        if not data:
            return False
        self.started = True
        if len(self._magic) < 5:
            # llhttp also takes "RTSP/" and "ICE/" responses: this is an HTTP client.
            self._magic += data[: 5 - len(self._magic)]
            if not b"HTTP/".startswith(self._magic):
                raise ProtocolError("not an HTTP response")
        mark = self._head_bytes + self._received + self._interim
        error: BaseException | None = None
        try:
            self._parser.feed_data(data)
        except Exception as exc:
            # Matched by module, not by class: httptools' C parser keeps the error classes of
            # its first import, and a tool that drops and re-imports modules (coverage's source
            # lookup does) leaves httptools.HttpParserError a different class.
            if not type(exc).__module__.startswith("httptools."):  # pragma: no cover - a bug
                raise
            # A callback's own exception is the context httptools gives its error; else llhttp
            # refused the bytes (its reason is one of a fixed set of strings: escaped anyway).
            error = exc.__context__
            if error is None:
                error = ProtocolError(f"invalid response: {safe_text(exc, 80)}")
        if error is not None:
            if self.done and isinstance(error, _Stop | ProtocolError):
                self.keep_alive = False  # stopped at bytes after the end (or a HEAD answer's head)
                return True
            if isinstance(error, _Stop):  # pragma: no cover - only raised once done
                error = ProtocolError("invalid response")
            # Raised out here, not from the parser's error: it adds nothing but llhttp's state.
            raise error
        if self.done:
            return True
        if mark != self._head_bytes + self._received + self._interim:
            self._stalled = 0
        else:
            # llhttp (a reason phrase, a chunk extension) or httptools (a field name or value)
            # took these bytes and handed nothing over: an endless one must still hit a limit.
            self._stalled += len(data)
            if self._stalled > MAX_HEAD_BYTES:
                raise ProtocolError("response head too large")
        return False

    def feed_eof(self) -> None:
        """The peer closed the connection.

        :raises ProtocolError: the response was incomplete (or never started).
        """
        if self.done:
            return
        if self._until_eof:
            self._finish()
            self.keep_alive = False
            return
        raise ProtocolError("connection closed before the response was complete")

    # --- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._final:
            # A second response after the final one: bytes we never asked for. Stop reading.
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEAD_BYTES:
            raise ProtocolError("response head too large")
        if self._final:
            return  # a trailer field: bounded above, otherwise ignored
        key = _names.get(name)
        if key is None:
            key = name.decode("latin-1").lower()  # llhttp checked it is a token
            if len(_names) < _MAX_NAMES:
                _names[name] = key
        text = value.decode("latin-1").strip(" \t")
        headers = self.headers
        if key in headers:
            headers[key] = f"{headers[key]}, {text}"
        else:
            headers[key] = text

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise ProtocolError(f"unsupported HTTP version {safe_text(version, 8)}")
        if status < 100:
            raise ProtocolError(f"invalid status code {status}")
        self.status = status  # an interim one's too
        if status < 200:
            if status == 101:
                raise ProtocolError("unexpected 101 Switching Protocols")
            self._interim += 1
            if self._interim > MAX_INTERIM_RESPONSES:
                raise ProtocolError("too many interim (1xx) responses")
            self.headers = LowerCaseHeaders()  # an interim answer's fields are not the response's
            return
        self._final = True
        headers = self.headers
        encoding = headers.get("content-encoding")
        if encoding is not None:
            self._encoding = encoding = encoding.strip().lower()
            if encoding not in _ENCODINGS:
                raise ProtocolError(f"unsupported Content-Encoding {safe_text(encoding, 40)!r}")
        if self.method == "HEAD":
            # llhttp cannot be told a HEAD answer has no body (httptools offers no way): stop it
            # here. The bytes after the head are unknown, so the connection is never reused.
            self.done = True
            raise _Stop
        if status in (204, 304):
            return  # no body, whatever the fields say (llhttp knows)
        transfer = headers.get("transfer-encoding")
        if transfer is not None:
            codings = [c.strip().lower() for c in transfer.split(",")]
            # Besides one final chunked, only the no-op identity: we could not undo any other
            # coding, and must not hand its bytes over as the body.
            if any(c != "identity" for c in codings[:-1]) or codings[-1] not in ("chunked", "identity"):
                raise ProtocolError(f"unsupported Transfer-Encoding {safe_text(transfer, 40)!r}")
            self._until_eof = codings[-1] != "chunked"
            # Faulty framing in HTTP/1.0 (RFC 9112 §6.1): read it, but never reuse the socket.
            self._faulty = version == "1.0"
            return
        length = headers.get("content-length")
        if length is None:
            self._until_eof = True
        else:
            # llhttp checked it: digits that fit in 64 bits, after any number of leading zeros
            # (which int() would refuse past 4300 digits).
            size = int(length.lstrip("0") or "0")
            if size > self._max_body:
                raise BodyTooLarge(status, headers, f"Content-Length {size}")

    def on_body(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self._max_body:
            raise BodyTooLarge(self.status, self.headers, f"more than {self._max_body} bytes")
        if self._encoding != "identity":
            data = self._decode(data)
            if not data:
                return
        chunks = self._chunks
        if chunks is not None:
            chunks += data
        elif self.body:
            chunks = self._chunks = bytearray(self.body)
            chunks += data
        else:
            self.body = data
        if self._encoding != "identity" and self._decoded() > self._max_body:
            raise (BodyTooLarge(self.status, self.headers, f"more than {self._max_body} bytes decoded"))

    def on_message_complete(self) -> None:
        if not self._final:
            return  # an interim answer: the real one follows
        self.keep_alive = not self._faulty and self._parser.should_keep_alive()
        self._finish()

    # --- the body -------------------------------------------------------------------------------

    def _decode(self, data: bytes) -> bytes:
        """The next decoded piece of a gzip/deflate body, at most one byte over the cap."""
        decoder = self._decoder
        if decoder is None:
            if self._encoding == "deflate":
                data = self._pending + data
                if len(data) < 2:
                    self._pending = data
                    return b""
                self._pending = b""
                # "deflate" is zlib-wrapped by the RFC, raw by some servers: accept both.
                zlib_header = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
                wbits = zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS
            else:
                wbits = 16 + zlib.MAX_WBITS
            decoder = self._decoder = zlib.decompressobj(wbits)
        if decoder.eof:
            # Garbage, or a second gzip member: dropping it would truncate the body silently.
            raise ProtocolError(f"{self._encoding} body has bytes after its end")
        out: bytes | None
        try:
            out = decoder.decompress(data, self._max_body - self._decoded() + 1)
        except zlib.error:
            out = None
        if out is None:
            # Raised out here: zlib's message adds nothing, and it is no context worth keeping.
            raise ProtocolError(f"{self._encoding} body does not decode")
        if decoder.unused_data:
            raise ProtocolError(f"{self._encoding} body has bytes after its end")
        return out

    def _finish(self) -> None:
        if self._pending or (self._decoder is not None and not self._decoder.eof):
            raise ProtocolError(f"{self._encoding} body is truncated")
        if self._chunks is not None:
            self.body = bytes(self._chunks)
            self._chunks = None
        self.done = True

    def _decoded(self) -> int:
        return len(self._chunks) if self._chunks is not None else len(self.body)
