"""``AiohttpTransport``: one pooled, keep-alive ``aiohttp.ClientSession`` per service.

It sends the request's already-encoded URL verbatim (``yarl.URL(..., encoded=True)``) and
suppresses aiohttp's automatic ``Content-Type``: either would change the bytes the signature
covers (``docs/protocol.md``, "Signatures"). A session passed in is borrowed and never closed
here; one we create is ours, created inside the running loop on first use, and closed by
:meth:`aclose`.
"""

from __future__ import annotations

import ssl
import sys
import warnings
from typing import Any, Final

import aiohttp
from yarl import URL

from .._text import safe_text
from ..errors import (
    CertificateError,
    ConnectError,
    ReadTimeout,
    ResponseParseError,
    ServiceClosedError,
    SlsError,
    TransportError,
    ValidationError,
)
from . import DEFAULT_MAX_RESPONSE_BYTES, ClosingContext, HttpRequest, HttpResponse, response_too_large

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "AiohttpTransport"]


def _said(exc: object) -> str:
    """An aiohttp/OS error's text for our message: it may quote server bytes, so escaped."""
    return safe_text(exc, 300)


def _request_id(resp: aiohttp.ClientResponse) -> str | None:
    rid = resp.headers.get("x-log-requestid")
    return None if rid is None else safe_text(rid, 128)


_SKIP_CONTENT_TYPE: Final = frozenset({"Content-Type"})
_SKIP_USER_AGENT: Final = frozenset({"User-Agent"})
_SKIP_BOTH: Final = _SKIP_CONTENT_TYPE | _SKIP_USER_AGENT
# aiohttp adds an automatic Content-Type only to these methods or to a request with a body.
_AUTO_CONTENT_TYPE_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


class AiohttpTransport(ClosingContext):
    """Sends requests over a pooled aiohttp session.

    :param session: a session to borrow (never closed by us). Its own settings apply.
    :param ssl_context: a custom TLS context; by default certificates are always verified.
    :param connect_timeout: seconds to establish a connection (TCP + TLS).
    :param read_timeout: default seconds for the response of one attempt: no gap between
        bytes may exceed it, and the whole attempt (connection included) must end within
        ``connect_timeout + read_timeout``, so a server that drip-feeds bytes cannot hold a
        call forever. ``send(timeout=...)`` overrides it per attempt.
    :param max_connections: connection pool size (0 = unlimited).
    :param max_response_bytes: larger bodies raise :class:`ResponseParseError`.

    Known limitation (aiohttp 3.14): a response that a server sends *unsolicited* on an idle
    kept-alive connection, after the previous exchange completed, is queued by aiohttp's
    protocol and handed to the next request that reuses the connection. The pool checks only
    that a connection is still open (``TCPConnector._get``), not whether it holds unread
    bytes, and nothing public tells us which connection a request got. An honest server
    never does this (HTTP/1.1 answers requests in order); a broken or hostile one can make a
    request read a stale answer. With an IP endpoint every project shares one origin and so
    one pool, so that answer may have been meant for another project's call. Use hostname
    endpoints (one origin per project) or ``Http11Transport`` if you cannot trust the
    server; ``tests/loopback/test_aiohttp_transport.py`` pins the behaviour.
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_connections: int = 100,
        keepalive_timeout: float = 30.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._session = session
        self._owns_session = session is None
        # True = verify with the default CA store; a caller's context is used as given.
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        # A borrowed session has its own connector; a caller's TLS context then goes per request.
        self._request_ssl: ssl.SSLContext | bool = True
        if session is not None and ssl_context is not None:
            self._request_ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_connections = max_connections
        self._keepalive_timeout = keepalive_timeout
        self._max_response_bytes = max_response_bytes
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        self._closed = False

    def _session_for_send(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ServiceClosedError("transport is closed")
        if self._session is None:
            # Created lazily so it binds to the running loop, never in __init__.
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                keepalive_timeout=self._keepalive_timeout,
                ttl_dns_cache=300,
                ssl=self._ssl,
            )
            # No session-wide skip_auto_headers: aiohttp would then copy the headers of every
            # request; send() names the skips a request needs (usually none).
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True, trust_env=False)
        return self._session

    def _skip_auto_headers(self, request: HttpRequest) -> frozenset[str] | None:
        """The automatic headers aiohttp must not add to ``request`` (they would change what
        was signed), or None when it would add none anyway: naming skips costs a copy."""
        headers = request.headers
        skip_type = bool(request.body) or request.method.upper() in _AUTO_CONTENT_TYPE_METHODS
        # Our own session never sends aiohttp's User-Agent; a borrowed one keeps its settings.
        skip_agent = self._owns_session and "User-Agent" not in headers and "user-agent" not in headers
        if skip_type:
            return _SKIP_BOTH if skip_agent else _SKIP_CONTENT_TYPE
        return _SKIP_USER_AGENT if skip_agent else None

    def _timeout(self, read: float | None) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(read)
        if timeout is None:
            # sock_connect, not connect: it bounds opening a connection (TCP + TLS) and arms no
            # timer when the pool hands out a kept-alive one, which is nearly every request.
            seconds = read if read is not None else self._read_timeout
            # sock_read bounds each gap between bytes; total bounds the whole attempt, so a
            # server that drip-feeds one byte per gap still cannot hold it forever.
            timeout = aiohttp.ClientTimeout(
                total=self._connect_timeout + seconds,
                sock_connect=self._connect_timeout,
                sock_read=seconds,
            )
            self._timeouts[read] = timeout  # under the key looked up: None too (~2 us a build)
        return timeout

    async def send(self, request: HttpRequest, *, timeout: float | None = None) -> HttpResponse:
        """Send one request; see :class:`aiosls.transport.Transport`."""
        session = self._session_for_send()
        what = request.operation or request.method
        error: SlsError
        try:
            async with session.request(
                request.method,
                URL(request.url, encoded=True),
                headers=request.headers,
                data=request.body or None,
                skip_auto_headers=self._skip_auto_headers(request),
                allow_redirects=False,
                # A borrowed session may raise on 4xx/5xx; we read every answer ourselves.
                raise_for_status=False,
                timeout=self._timeout(timeout),
                ssl=self._request_ssl,
            ) as resp:
                length = resp.content_length
                if length is not None and length > self._max_response_bytes:
                    raise self._too_large(request, resp, f"Content-Length {length}")
                if length is not None and "Content-Encoding" not in resp.headers:
                    body = await resp.read()
                else:
                    # Unknown length, or compressed: count the bytes as they are decoded, so a
                    # small gzip bomb cannot grow past the limit.
                    body = await self._read_capped(request, resp)
                return HttpResponse(resp.status, resp.headers, body)
        except aiohttp.ClientConnectorCertificateError as exc:
            error = CertificateError(f"{what}: TLS certificate verification failed: {_said(exc)}")
            cause: BaseException | None = exc
        except (ConnectionRefusedError, aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            error, cause = ConnectError(f"{what}: cannot connect: {_said(exc)}"), exc
        except (TimeoutError, aiohttp.SocketTimeoutError) as exc:
            error, cause = ReadTimeout(f"{what}: no complete response within the read timeout"), exc
        except aiohttp.ClientResponseError as exc:
            # Its request_info holds our request headers (signature, STS token): kept off the
            # exception chain, where error reporters would render it.
            error, cause = (
                TransportError(
                    f"{what}: bad response: {type(exc).__name__}: {exc.status} {_said(exc.message)}"
                ),
                None,
            )
        except (aiohttp.ClientError, OSError) as exc:
            # Reset, disconnect, truncated body: the request may have been applied.
            error, cause = (
                TransportError(f"{what}: connection failed: {type(exc).__name__}: {_said(exc)}"),
                exc,
            )
        except ValueError:
            # aiohttp refuses header values with control characters before sending anything;
            # retrying cannot help. Unchained: the cause may quote the value (a token).
            error, cause = ValidationError(f"{what}: request refused by the HTTP client"), None
        # Raised here, outside the handlers, so nothing lands on __context__ implicitly: the
        # chain holds only the cause named above, whose own chain aiohttp built from sockets
        # and parsers (never from our request headers; tests walk it).
        error.__cause__ = cause
        error.__suppress_context__ = True
        raise error

    async def _read_capped(self, request: HttpRequest, resp: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(65536):
            size += len(chunk)
            if size > self._max_response_bytes:
                raise self._too_large(request, resp, f"more than {self._max_response_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, request: HttpRequest, resp: aiohttp.ClientResponse, what: str) -> ResponseParseError:
        return response_too_large(
            request.operation or request.method,
            what,
            self._max_response_bytes,
            resp.status,
            _request_id(resp),
        )

    async def aclose(self) -> None:
        """Close the session if we created it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self._closed and self._owns_session and self._session is not None and not sys.is_finalizing():
            _warn(f"unclosed {self!r}: use 'async with' or await aclose()", ResourceWarning, source=self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<AiohttpTransport {state}>"
