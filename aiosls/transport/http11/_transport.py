"""The pool of :class:`Http11Transport`: sockets, keep-alive, waiters, timeouts, lifecycle.

Framing lives in :mod:`._request` (request bytes) and :mod:`._response` (httptools); each socket
is a :class:`._connection.Connection`. Pool: at most ``max_connections`` sockets in all (idle +
busy + connecting), idle ones kept per origin for ``keepalive_timeout`` seconds (less if the
server's ``Keep-Alive: timeout`` says so) and reused most-recent-first. At the limit, sends wait
first come first served: a connection that comes back is handed to the first waiter (or, for
another origin, its slot). Timeouts cost no timer per request: each connection has one timer,
re-armed lazily when it fires early.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import ssl
import sys
import warnings
import weakref
from collections import deque
from contextlib import nullcontext
from typing import Any, Final
from urllib.parse import urlsplit

from ...errors import (
    CertificateError,
    ConnectError,
    ReadTimeout,
    ServiceClosedError,
    TransportError,
    ValidationError,
)
from .. import DEFAULT_MAX_RESPONSE_BYTES, ClosingContext, HttpRequest, HttpResponse, response_too_large
from ._connection import Connection, Disconnected, Origin, TimedOut
from ._request import serialize_request
from ._response import BodyTooLarge, ProtocolError, require_httptools

__all__ = ["Http11Transport"]

# Safe to resend on a fresh connection when a kept-alive one turns out closed (RFC 9110 §9.2.2).
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class Http11Transport(ClosingContext):
    """Sends requests over pooled keep-alive HTTP/1.1 connections (plain asyncio, no session).

    :param ssl_context: a custom TLS context; by default certificates are always verified.
    :param connect_timeout: seconds to establish a connection (TCP + TLS); None: no limit.
    :param read_timeout: default seconds to wait for the next response byte; None: no limit.
    :param max_connections: sockets open at once, all origins together (0 = unlimited).
    :param keepalive_timeout: seconds an idle connection is kept for reuse.
    :param max_response_bytes: larger bodies (also after gzip) raise :class:`ResponseParseError`.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float | None = 5.0,
        read_timeout: float | None = 30.0,
        max_connections: int = 100,
        keepalive_timeout: float = 30.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        require_httptools()
        import httptools

        #: The User-Agent word naming this transport (the service puts it after ``aiosls/x``).
        self.user_agent_token = f"httptools/{httptools.__version__}"
        if max_connections < 0:
            raise ValueError(f"max_connections must be >= 0, not {max_connections!r}")
        self._ssl_context = ssl_context
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_connections = max_connections
        self._keepalive_timeout = keepalive_timeout
        self._max_response_bytes = max_response_bytes
        self._origins: dict[str, tuple[Origin, str]] = {}
        self._idle: dict[Origin, list[Connection]] = {}
        self._connections: set[Connection] = set()
        self._open = 0  # slots taken: connecting + busy + idle
        # Sends waiting for a connection, first come first served, with the origin they want
        # (None: only a fresh one). What comes back is handed to the first one directly: a
        # connection of its origin, or else a slot (then the waiter's own to connect with).
        self._waiters: deque[tuple[asyncio.Future[Connection | None], Origin | None]] = deque()
        self._connecting: set[asyncio.Task[Any]] = set()  # tasks opening a connection now
        self._aborted: set[asyncio.Task[Any]] = set()  # of those, the ones aclose() cancelled
        self._cleanup: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Sockets open or being opened now (idle ones included)."""
        return self._open

    def _loop_for_connections(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("Http11Transport is bound to another event loop")
        return loop

    # --- send -----------------------------------------------------------------------------------

    async def send(self, request: HttpRequest, *, timeout: float | None = None) -> HttpResponse:
        """Send one request; see :class:`aiosls.transport.Transport`."""
        if self._closed:
            raise ServiceClosedError("transport is closed")
        what = request.operation or request.method
        origin, host, target = self._split(request.url)
        headers = request.headers
        if "Host" not in headers and "host" not in headers:
            headers = {"Host": host, **headers}
        refused: str | None = None
        try:
            data = serialize_request(request.method, target, headers, request.body)
        except ValueError as exc:
            refused = str(exc)  # our words, never the value (it may be a pasted token)
        if refused is not None:
            # Raised out here: no __cause__ or __context__ leads back to the request's headers.
            raise ValidationError(f"{what}: request refused: {refused}")
        read = timeout if timeout is not None else self._read_timeout
        resend = request.method in _IDEMPOTENT
        fresh = False
        while True:
            conn = await self._acquire(origin, what, fresh)
            reused = conn.requests > 0
            mapped: BaseException | None = None
            try:
                reader = await conn.exchange(data, request.method, self._max_response_bytes, read)
            except Disconnected as exc:
                self._release(conn, reusable=False)
                if reused and resend:
                    # The server closed a kept-alive socket as we reused it: once more, on a new
                    # one (not the next idle one: a request that makes the server hang up would
                    # otherwise go out once per idle connection).
                    fresh = True
                    continue
                reason = exc.args[0] if exc.args else None  # the reset, if there was one
                raise TransportError(f"{what}: server closed the connection without answering") from reason
            except BaseException as exc:
                self._release(conn, reusable=False)
                mapped = self._error(exc, what)
                if mapped is exc:
                    raise  # cancellation, or a bug: as it is
            if mapped is not None:
                # Our own words, raised out here with neither cause nor context: they add
                # nothing a caller needs.
                raise mapped
            self._release(conn, reusable=reader.keep_alive, hint=reader.headers.get("keep-alive"))
            return HttpResponse(reader.status, reader.headers, reader.body)

    def _error(self, exc: BaseException, what: str) -> BaseException:
        """The typed error for what ended an exchange (``exc`` itself if it is not ours)."""
        if isinstance(exc, TimedOut):
            return ReadTimeout(f"{what}: no response within the read timeout")
        if isinstance(exc, BodyTooLarge):
            request_id = exc.headers.get("x-log-requestid")
            return response_too_large(what, str(exc), self._max_response_bytes, exc.status, request_id)
        if isinstance(exc, ProtocolError):
            return TransportError(f"{what}: bad response: {exc}")
        if isinstance(exc, OSError):
            return TransportError(f"{what}: connection failed: {type(exc).__name__}: {exc}")
        return exc

    def _split(self, url: str) -> tuple[Origin, str, str]:
        """(origin, Host header, request target) of an absolute URL; origins are parsed once each."""
        slash = url.find("/", url.find("//") + 2)
        base, target = (url, "/") if slash < 0 else (url[:slash], url[slash:])
        known = self._origins.get(base)
        if known is None:
            try:
                parts = urlsplit(base)
                port = parts.port
            except ValueError:  # a bad port or bracket; not chained: the "port" may be a password
                port = -1
            if port == -1:
                raise ValidationError("cannot send to a URL that is not a valid URL")
            if parts.scheme not in ("http", "https") or not parts.hostname:
                where = f"{parts.scheme}://{parts.hostname or ''}"  # never the userinfo
                raise ValidationError(f"cannot send to {where!r}: not an http(s) URL")
            if parts.query or parts.fragment:
                raise ValidationError("cannot send to a URL with a query or fragment but no path")
            port = port or (443 if parts.scheme == "https" else 80)
            # The Host header never carries userinfo ("user:password@").
            known = ((parts.scheme, parts.hostname, port), parts.netloc.rpartition("@")[2])
            if len(self._origins) > 4096:
                self._origins.clear()
            self._origins[base] = known
        return known[0], known[1], target

    # --- the pool -------------------------------------------------------------------------------

    async def _acquire(self, origin: Origin, what: str, fresh: bool = False) -> Connection:
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            # Its sockets belong to the loop that opened them (e.g. a finished asyncio.run()).
            raise RuntimeError("Http11Transport is bound to another event loop; create one per loop")
        front = False
        while True:
            if self._closed:
                raise ServiceClosedError("transport is closed")
            # Only when nobody waits: what comes back is theirs first (a send in a loop would
            # otherwise take its connection back before the waiter it woke could run).
            if not self._waiters:
                idle = None if fresh else self._idle.get(origin)
                while idle:
                    conn = idle.pop()
                    if not conn.closed and conn.expires > conn.loop.time():
                        return conn
                    self._drop(conn)  # past its idle limit: the server may be closing it right now
                if not self._max_connections or self._open < self._max_connections:
                    self._open += 1
                    return await self._connect(origin, what)
                if self._evict_idle():
                    continue  # an idle socket of another origin gave up its slot
            waiter: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
            entry = (waiter, None if fresh else origin)
            if front:
                self._waiters.appendleft(entry)
            else:
                self._waiters.append(entry)
            try:
                handed = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._give_back(waiter.result())  # handed over, but we will not use it
                elif entry in self._waiters:  # aclose() or a hand-over may have dropped it
                    self._waiters.remove(entry)
                raise
            claimed = await self._claim(handed, origin, what)
            if claimed is not None:
                return claimed
            front = True  # the server closed it before we ran (its slot went on): wait again

    async def _claim(self, handed: Connection | None, origin: Origin, what: str) -> Connection | None:
        """What a waiter was handed: that connection, or a new one in the slot handed to it.
        None: the connection has closed since (its slot went on to the next waiter)."""
        if self._closed:
            self._give_back(handed)
            raise ServiceClosedError("transport is closed")
        if handed is None:
            return await self._connect(origin, what)
        return None if handed.closed else handed

    async def _connect(self, origin: Origin, what: str) -> Connection:
        """A new connection, in a slot the caller has taken (counted in ``_open``)."""
        scheme, host, port = origin
        loop = self._loop_for_connections()
        context: ssl.SSLContext | None = None
        if scheme == "https":
            context = self._ssl_context
            if context is None:
                context = self._ssl_context = ssl.create_default_context()
        limit = asyncio.timeout(self._connect_timeout) if self._connect_timeout else nullcontext()
        task = asyncio.current_task()
        if task is not None:
            self._connecting.add(task)  # aclose() cancels it
        made: list[Connection] = []

        def factory() -> Connection:
            made.append(Connection(self, origin, loop))
            return made[0]

        try:
            async with limit:
                _, conn = await loop.create_connection(
                    factory,
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except BaseException as exc:
            if made:
                # Cancelled (or timed out) once the socket was connected: create_connection() has
                # closed it, and its connection_lost() will find the slot already freed, here.
                self._forget(made[0])
            else:
                self._free_slot()
            # aclose() cancelled it: that cancellation is ours to take back, and unless the
            # caller cancelled the task too, the send fails as closed.
            if isinstance(exc, asyncio.CancelledError) and task in self._aborted and task.uncancel() == 0:
                raise ServiceClosedError("transport is closed") from None
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise CertificateError(f"{what}: TLS certificate verification failed: {exc}") from None
            if isinstance(exc, TimeoutError):
                raise ConnectError(
                    f"{what}: cannot connect to {host}:{port} within {self._connect_timeout} s"
                ) from None
            if isinstance(exc, OSError):
                raise ConnectError(f"{what}: cannot connect to {host}:{port}: {exc}") from exc
            raise
        finally:
            self._connecting.discard(task)
            self._aborted.discard(task)
        if self._closed:  # closed while we were connecting
            conn.close()
            raise ServiceClosedError("transport is closed")
        self._connections.add(conn)
        return conn

    def _release(self, conn: Connection, *, reusable: bool, hint: str | None = None) -> None:
        """Pool ``conn`` if it may serve another request, else close it. ``hint``: the
        response's ``Keep-Alive`` header, whose ``timeout`` caps how long it may idle."""
        idle_for = (
            self._keepalive_timeout if hint is None else min(self._keepalive_timeout, _server_idle(hint))
        )
        if reusable and idle_for > 0 and not conn.closed and not self._closed:
            conn.idle_since = conn.loop.time()
            conn.expires = conn.idle_since + idle_for
            self._pool(conn)
        else:
            self._drop(conn)

    def _pool(self, conn: Connection) -> None:
        """An open, reusable ``conn``: to the first waiter (itself, or its slot), else idle."""
        waiters = self._waiters
        while waiters and waiters[0][0].done():
            waiters.popleft()  # cancelled: its task removes it when it runs, or finds it gone
        if waiters:
            waiter, wanted = waiters[0]
            if wanted == conn.origin:
                waiters.popleft()
                waiter.set_result(conn)
            else:
                self._drop(conn)  # its slot goes to that waiter
            return
        self._idle.setdefault(conn.origin, []).append(conn)
        if self._cleanup is None:
            self._cleanup = conn.loop.call_at(conn.expires, _expire_idle, weakref.ref(self))

    def _give_back(self, handed: Connection | None) -> None:
        """What a waiter was handed but will not use: to the next waiter, or back to the pool."""
        if handed is None:
            self._free_slot()
        elif handed.closed or self._closed:
            self._drop(handed)
        else:
            self._pool(handed)

    def _drop(self, conn: Connection) -> None:
        """Close ``conn`` and free its slot now (not when ``connection_lost`` comes)."""
        conn.close()
        self._forget(conn)

    def _forget(self, conn: Connection) -> None:
        """``conn`` is closed (by us or the peer): free its slot, once."""
        if conn.counted:
            conn.counted = False
            self._connections.discard(conn)
            idle = self._idle.get(conn.origin)
            if idle and conn in idle:
                idle.remove(conn)
                if not idle:
                    del self._idle[conn.origin]
            self._free_slot()

    def _free_slot(self) -> None:
        """A slot is free: the first waiter's to connect with (it stays counted), else given up."""
        while self._waiters:
            waiter, _ = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._open -= 1

    def _evict_idle(self) -> bool:
        """Close the longest-idle connection (any origin); False if none is idle."""
        oldest: Connection | None = None
        for origin, idle in list(self._idle.items()):
            if not idle:
                del self._idle[origin]  # emptied by sends: an origin per project adds up
            elif oldest is None or idle[0].idle_since < oldest.idle_since:
                oldest = idle[0]
        if oldest is None:
            return False
        self._drop(oldest)
        return True

    def _expire_idle(self) -> None:
        self._cleanup = None
        if self._loop is None:
            return
        now = self._loop.time()
        next_due: float | None = None
        for origin, idle in list(self._idle.items()):
            for conn in list(idle):
                due = conn.expires
                if due <= now:
                    self._drop(conn)  # the origin's list goes with its last connection
                elif next_due is None or due < next_due:
                    next_due = due
            if not idle:
                self._idle.pop(origin, None)  # emptied by sends, not by _forget
        if next_due is not None and not self._closed:
            self._cleanup = self._loop.call_at(next_due, _expire_idle, weakref.ref(self))

    # --- lifecycle ------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close every connection (in-flight requests fail) and wait until they are. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._cleanup is not None:
            self._cleanup.cancel()
            self._cleanup = None
        for waiter, _ in self._waiters:
            if not waiter.done():
                waiter.set_exception(ServiceClosedError("transport is closed"))
        self._waiters.clear()
        for task in self._connecting:
            self._aborted.add(task)
            task.cancel()
        pending = []
        for conn in list(self._connections):
            if not conn.closed and conn.loop.is_closed() and conn.transport is not None:
                # Its loop ended with it open (e.g. an earlier asyncio.run()): nothing runs there
                # any more. The peer is told; the descriptor goes with the transport object.
                conn.closed = True
                sock = conn.transport.get_extra_info("socket")
                if sock is not None:  # None: uvloop closed it with its loop
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
            if not conn.closed:
                exchange = conn.waiter
                if exchange is not None and not exchange.done():
                    # Failed now: the close below would end a body framed by the connection's
                    # end as if it were complete.
                    exchange.set_exception(ServiceClosedError("transport is closed"))
                conn.lost = conn.loop.create_future()
                pending.append(conn.lost)
                conn.close()
            self._forget(conn)
        self._idle.clear()
        if pending:
            # connection_lost runs on the next loop iteration; wait so no socket outlives us.
            await asyncio.wait(pending, timeout=5)

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # getattr: __init__ may have raised before setting it.
        if getattr(self, "_closed", True) or not self._connections or sys.is_finalizing():
            return
        _warn(f"unclosed {self!r}: use 'async with' or await aclose()", ResourceWarning, source=self)
        for conn in self._connections:  # nobody can reuse them any more
            if not conn.loop.is_closed():
                conn.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"open, {self._open} connections"
        return f"<Http11Transport {state}>"


def _server_idle(hint: str) -> float:
    """Seconds an idle connection may be reused under a ``Keep-Alive: timeout=N`` header: N less
    one second, so that we never reuse a socket the server is closing (inf if not stated)."""
    for part in hint.split(","):
        key, _, value = part.partition("=")
        value = value.strip()
        if key.strip().lower() == "timeout" and value.isascii() and value.isdigit() and len(value) < 10:
            return max(int(value) - 1, 0)
    return math.inf


def _expire_idle(pool: weakref.ref[Http11Transport]) -> None:
    # The timer holds the pool weakly, like its connections do.
    transport = pool()
    if transport is not None:
        transport._expire_idle()
