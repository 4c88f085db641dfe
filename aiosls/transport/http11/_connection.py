"""One pooled socket of :class:`~aiosls.transport.http11.Http11Transport`: an asyncio protocol.

Only ``asyncio.BaseTransport`` protocol methods are used on the socket's transport (``write``,
``abort``, ``get_extra_info``), never an ``isinstance`` check: uvloop's transports are not
subclasses of ``asyncio.Transport``.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol, cast

from ._response import ResponseReader

__all__ = ["Connection", "Disconnected", "Origin", "TimedOut"]

Origin = tuple[str, str, int]  # scheme, host (no brackets), port


class Disconnected(Exception):
    """The connection ended before any byte of the response arrived."""


class TimedOut(Exception):
    """No response byte within the read timeout."""


class _Pool(Protocol):
    def _forget(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """One socket: at most one request in flight; the reader of that request's response."""

    def __init__(self, pool: _Pool, origin: Origin, loop: asyncio.AbstractEventLoop) -> None:
        # Weak: the event loop holds every open connection, and an unclosed pool must still be
        # collectable (so that it warns and drops its sockets, see Http11Transport.__del__).
        self.pool = weakref.ref(pool)
        self.origin = origin
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.reader: ResponseReader | None = None
        self.waiter: asyncio.Future[ResponseReader] | None = None
        self.closed = False
        self.counted = True  # holds one of the pool's max_connections slots
        self.requests = 0
        self.idle_since = 0.0
        self.expires = 0.0  # when idle: not reused from then on (ours or the server's limit)
        self.read_timeout: float | None = None
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_when = 0.0
        self.lost: asyncio.Future[None] | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Duck-typed: any transport with write() and abort() will do (uvloop's included).
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        reader, waiter = self.reader, self.waiter
        if reader is None or waiter is None or waiter.done():
            # Bytes nobody asked for (e.g. a 408 on an idle socket): the stream is out of step.
            self.close()
            return
        if self.read_timeout is not None:
            self.deadline = self.loop.time() + self.read_timeout
        try:
            done = reader.feed(data)
        except Exception as exc:  # a ProtocolError; or a bug, handed to the send all the same
            waiter.set_exception(exc)
            self.close()
            return
        if done:
            waiter.set_result(reader)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        reader, waiter = self.reader, self.waiter
        if reader is not None and waiter is not None and not waiter.done():
            if not reader.started:
                waiter.set_exception(Disconnected(exc))
            elif exc is not None:
                waiter.set_exception(exc)
            else:
                try:
                    reader.feed_eof()
                except Exception as error:
                    waiter.set_exception(error)
                else:
                    waiter.set_result(reader)
        pool = self.pool()
        if pool is not None:
            pool._forget(self)
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)

    # --- one exchange -------------------------------------------------------------------------

    async def exchange(
        self, data: bytes, method: str, max_body: int, read_timeout: float | None
    ) -> ResponseReader:
        """Write one request and wait for its whole response."""
        transport = self.transport
        if transport is None or self.closed:  # pragma: no cover - the pool hands out open ones
            raise Disconnected(None)
        self.reader = ResponseReader(method=method, max_body=max_body)
        waiter: asyncio.Future[ResponseReader] = self.loop.create_future()
        self.waiter = waiter
        self.requests += 1
        self.read_timeout = read_timeout
        if read_timeout is not None:
            self.deadline = deadline = self.loop.time() + read_timeout
            if self.timer is None or self.timer_when > deadline:
                self._arm(deadline)
        transport.write(data)
        try:
            return await waiter
        finally:
            self.reader = self.waiter = None
            self.read_timeout = None

    def _arm(self, when: float) -> None:
        self._cancel_timer()
        self.timer = self.loop.call_at(when, self._on_timer)
        self.timer_when = when

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _on_timer(self) -> None:
        self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done() or self.read_timeout is None:
            return  # idle, or the request that armed it is over: nothing to time
        if self.loop.time() >= self.deadline:
            waiter.set_exception(TimedOut())
            self.close()
        else:
            self._arm(self.deadline)

    def close(self) -> None:
        """Drop the socket now (a half-read or unwanted stream is never reused)."""
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()  # connection_lost follows on the next loop iteration
        self._cancel_timer()
