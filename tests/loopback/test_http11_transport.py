"""Http11Transport over real loopback sockets: the pool, keep-alive, framing, errors, timeouts, TLS.

Every async test here runs twice, on asyncio's event loop and on uvloop's
(``tests/loopback/conftest.py``); the sync ones that start their own loops take both runners.

Servers are real: scripted ``asyncio.start_server`` peers (a script per accepted connection, so a
test says exactly what the server does on the wire), ``aiohttp.web`` for what aiohttp frames for
us (chunked, gzip), and the emulator behind a ``CheckpointService``. Tests wait for what a server
observed (a request, a close) through :meth:`ScriptedServer.until`, never through a fixed sleep;
every wait is bounded, so a regression fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import socket
import ssl
import struct
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, NamedTuple

import pytest
import trustme
import uvloop
from aiohttp import web

from aiosls import (
    NO_RETRY,
    CertificateError,
    CheckpointService,
    ClientError,
    ConnectError,
    Credentials,
    HttpRequest,
    ReadTimeout,
    ResponseParseError,
    ServiceClosedError,
    Timeouts,
    TransportError,
    ValidationError,
)
from aiosls.emulator import Emulator
from aiosls.transport.http11 import Http11Transport

AK, SK = "LTAIh11Key", "h11-secret-value"
STS_AK, STS_SK, STS_TOKEN = "STS.h11Key", "h11-sts-secret", "CAIS-h11-token/abc+def=="
SEED = {
    "projects": {
        "demo-project": {
            "logstores": {"app-log": {"shards": 2, "consumer_groups": {"cg-0": {"timeout": 60}}}}
        }
    }
}


# --- a scripted server ----------------------------------------------------------------------------


class Received(NamedTuple):
    method: str
    target: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


class Peer:
    """One connection as the server sees it."""

    def __init__(self, server: ScriptedServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.requests: list[Received] = []
        #: The connection is over: the client closed it (or the script did).
        self.closed = asyncio.Event()

    async def receive(self) -> Received | None:
        """The next request, or None once the client has closed the connection."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ")
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        request = Received(method, target, headers, body)
        self.requests.append(request)
        self.server.requests.append(request)
        self.server.changed()
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def hold(self, gate: asyncio.Event) -> bool:
        """Wait for ``gate``; False if the client closes the connection first."""
        opened = asyncio.ensure_future(gate.wait())
        eof = asyncio.ensure_future(self.reader.read(1))
        try:
            await asyncio.wait([opened, eof], return_when=asyncio.FIRST_COMPLETED)
        finally:
            opened.cancel()
            eof.cancel()
            await asyncio.gather(opened, eof, return_exceptions=True)
        if not eof.cancelled():
            # One request at a time: a byte now would be a pipelined request, which we never send.
            self.server.unexpected += eof.result()
            return False
        return True


Script = Callable[[Peer], Awaitable[None]]


class ScriptedServer:
    """``asyncio.start_server`` on 127.0.0.1 running ``script`` for each accepted connection.

    When the script returns, the connection stays open (unanswered) until the client closes it.
    ``open``/``peak`` count simultaneous connections as the server sees them.
    """

    def __init__(self, script: Script, *, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.peers: list[Peer] = []
        self.requests: list[Received] = []
        self.open = 0
        self.peak = 0
        self.unexpected = b""  # bytes the client sent while its request was being held
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tcp_accepts = 0

    async def __aenter__(self) -> ScriptedServer:
        if self.tls is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        else:
            # TLS from the first byte (ssl= here, not start_tls() once accepted: by then uvloop may
            # have read the ClientHello into the stream, and the handshake never completes).
            # Connections count when TCP accepts them, whatever their handshake does later.
            def accept() -> asyncio.StreamReaderProtocol:
                self._tcp_accepts += 1
                self.changed()
                return asyncio.StreamReaderProtocol(asyncio.StreamReader(), self._serve)

            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(accept, "127.0.0.1", 0, ssl=self.tls)
        self.port: int = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._server.close()
        for peer in self.peers:
            peer.writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        assert self.unexpected == b""

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    @property
    def accepted(self) -> int:
        return len(self.peers) if self.tls is None else self._tcp_accepts

    def changed(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until the server has observed ``predicate`` (bounded: a hang fails the test)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._changed.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = Peer(self, reader, writer)
        self.peers.append(peer)
        self.open += 1
        self.peak = max(self.peak, self.open)
        self.changed()
        try:
            await self.script(peer)
            if not writer.is_closing():
                while await reader.read(65536):
                    pass  # never answered
        except (OSError, asyncio.CancelledError):  # resets, failed TLS handshakes; teardown
            pass
        finally:
            self.open -= 1
            writer.close()
            peer.closed.set()
            self.changed()
            # Bounded: after a TLS handshake cut short, the stream never learns it is closed.
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1)
            self._tasks.discard(task)


def response(
    body: bytes = b"ok", *, status: str = "200 OK", version: str = "HTTP/1.1", headers: str = ""
) -> bytes:
    """A response with Content-Length; ``headers`` are extra lines, each ending in CRLF."""
    return f"{version} {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


async def keep_alive(peer: Peer) -> None:
    """Answers every request on the connection; the body names it."""
    while (request := await peer.receive()) is not None:
        await peer.send(response(f"{request.method} {request.target} #{len(peer.requests)}".encode()))


def gated(gate: asyncio.Event) -> Script:
    """Like :func:`keep_alive`, but holds every answer until ``gate`` is set."""

    async def script(peer: Peer) -> None:
        while (request := await peer.receive()) is not None:
            if not await peer.hold(gate):
                return
            await peer.send(response(request.target.encode()))

    return script


async def answer_once_then_drop_on_reuse(peer: Peer) -> None:
    """The first request is answered (keep-alive); the next one is read, then the socket closed."""
    if await peer.receive() is not None:
        await peer.send(response(b"first"))
        await peer.receive()
    peer.writer.close()


async def never_answer(peer: Peer) -> None:
    await peer.receive()


def get(url: str, **headers: str) -> HttpRequest:
    return HttpRequest("GET", url, headers, operation="TestGet")


def transport(**kwargs: Any) -> aclosing[Http11Transport]:
    return aclosing(Http11Transport(**kwargs))


@contextlib.asynccontextmanager
async def web_server(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> AsyncIterator[str]:
    """An aiohttp.web server answering every path with ``handler``; yields its base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(access_keys={AK: SK}, seed=SEED) as emulator:
        yield emulator


@contextlib.asynccontextmanager
async def service(
    endpoint: str,
    transport: Http11Transport | None = None,
    *,
    ssl_context: ssl.SSLContext | None = None,
    **kw: Any,
) -> AsyncIterator[CheckpointService]:
    """A service over ``transport``, or over an Http11Transport of its own (closed afterwards)."""
    kw.setdefault("credentials", Credentials(AK, SK))
    async with contextlib.AsyncExitStack() as stack:
        if transport is None:
            transport = await stack.enter_async_context(Http11Transport(ssl_context=ssl_context))
        yield await stack.enter_async_context(
            CheckpointService(endpoint, region="cn-hangzhou", transport=transport, **kw)
        )


async def no_sleep(_seconds: float) -> None:
    await asyncio.sleep(0)


# --- keep-alive and the pool ----------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection() -> None:
    async with ScriptedServer(keep_alive) as server, transport() as t:
        for i in range(20):
            method = "POST" if i % 2 else "GET"
            resp = await t.send(HttpRequest(method, server.url(f"/r{i}"), {}, b"x" * i))
            assert resp.status == 200
            assert resp.body == f"{method} /r{i} #{i + 1}".encode()
        assert t.open_connections == 1
    assert server.accepted == 1
    assert [r.body for r in server.requests] == [b"x" * i for i in range(20)]
    assert all(r.headers["host"] == f"127.0.0.1:{server.port}" for r in server.requests)


async def test_the_service_keeps_one_connection_alive_for_sequential_calls(emu: Emulator) -> None:
    async with service(emu.endpoint) as svc:
        for _ in range(10):
            assert [c.shard for c in await svc.get_checkpoints("demo-project", "app-log", "cg-0")] == [0, 1]
        await svc.update_checkpoint("demo-project", "app-log", "cg-0", 1, "MTUy", consumer="c-1")
        assert (await svc.get_checkpoints("demo-project", "app-log", "cg-0", shard=1))[0].checkpoint == "MTUy"
    assert emu.counters.connections == 1
    assert emu.counters.requests_total == 12


async def test_concurrent_calls_through_the_service_use_at_most_one_connection_each(emu: Emulator) -> None:
    emu.faults.configure(latency_ms=20)
    async with transport() as t, service(emu.endpoint, t) as svc:
        for _ in range(3):
            results = await asyncio.gather(
                *(svc.get_checkpoints("demo-project", "app-log", "cg-0") for _ in range(8))
            )
            assert all(len(r) == 2 for r in results)
    assert emu.counters.requests_total == 24
    assert 1 <= emu.counters.connections <= 8


async def test_concurrent_requests_open_one_connection_each_then_reuse_them() -> None:
    gate = asyncio.Event()
    async with ScriptedServer(gated(gate)) as server, transport() as t:
        first = [asyncio.create_task(t.send(get(server.url(f"/a{i}")))) for i in range(5)]
        await server.until(lambda: len(server.requests) == 5)
        assert server.accepted == 5
        gate.set()
        assert sorted(r.body for r in await asyncio.gather(*first)) == [b"/a%d" % i for i in range(5)]
        again = await asyncio.gather(*(t.send(get(server.url(f"/b{i}"))) for i in range(5)))
        assert all(r.status == 200 for r in again)
        assert t.open_connections == 5
    assert server.accepted == 5
    assert server.peak == 5


async def test_max_connections_bounds_many_more_concurrent_sends() -> None:
    gate = asyncio.Event()
    async with ScriptedServer(gated(gate)) as server, transport(max_connections=3) as t:
        tasks = [asyncio.create_task(t.send(get(server.url(f"/{i}")))) for i in range(50)]
        await server.until(lambda: len(server.requests) == 3)
        assert server.open == 3
        assert t.open_connections == 3
        gate.set()  # the 47 waiters get served as connections come back
        async with asyncio.timeout(10):
            results = await asyncio.gather(*tasks)
        assert sorted(r.body for r in results) == sorted(b"/%d" % i for i in range(50))
        assert t.open_connections == 3
    assert server.peak == 3
    assert server.accepted == 3  # the waiters reused the three connections


async def test_a_waiting_send_is_not_starved_by_a_busy_loop_of_sends() -> None:
    """Regression: a connection coming back woke the first waiter, but the task that gave it back
    sent again at once and took it before the waiter ran; the waiter queued again at the back.
    A task sending in a loop kept the connection until its loop ended."""
    async with ScriptedServer(keep_alive) as server, transport(max_connections=1) as t:

        async def busy() -> None:
            for i in range(30):
                await t.send(get(server.url(f"/busy{i}")))

        looping = asyncio.create_task(busy())
        await server.until(lambda: len(server.requests) == 1)
        waiting = asyncio.create_task(t.send(get(server.url("/waiting"))))
        async with asyncio.timeout(10):
            await asyncio.gather(looping, waiting)
    targets = [r.target for r in server.requests]
    assert targets.index("/waiting") <= 2  # served as soon as the connection came back


async def test_waiters_are_served_in_order_across_origins() -> None:
    """What comes back goes to the first waiter: the connection itself if it is for that origin,
    else its slot (the connection is closed, and the waiter opens its own)."""
    gate = asyncio.Event()
    async with ScriptedServer(gated(gate)) as server, transport(max_connections=1) as t:
        other = f"http://localhost:{server.port}"
        busy = asyncio.create_task(t.send(get(server.url("/busy"))))
        await server.until(lambda: len(server.requests) == 1)
        queued = []
        for i, base in enumerate([other, server.url(""), other, other, server.url("")]):
            queued.append(asyncio.create_task(t.send(get(f"{base}/w{i}"))))
            await asyncio.sleep(0)  # one turn: it queues (FIFO) behind the one before
        gate.set()
        async with asyncio.timeout(10):
            await asyncio.gather(busy, *queued)
        assert t.open_connections == 1
    assert [r.target for r in server.requests] == ["/busy", "/w0", "/w1", "/w2", "/w3", "/w4"]
    assert server.accepted == 5  # a new connection at each change of origin; w3 reused w2's


async def test_a_waiter_cancelled_while_waiting_leaks_no_slot() -> None:
    gate = asyncio.Event()
    async with ScriptedServer(gated(gate)) as server, transport(max_connections=1) as t:
        busy = asyncio.create_task(t.send(get(server.url("/a"))))
        await server.until(lambda: len(server.requests) == 1)
        waiting = asyncio.create_task(t.send(get(server.url("/b"))))
        await asyncio.sleep(0)  # one turn: it runs, without I/O, up to the wait for a slot
        assert not waiting.done()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gate.set()
        assert (await busy).body == b"/a"
        assert t.open_connections == 1  # the idle connection, nothing else
        async with asyncio.timeout(5):  # a leaked slot would make this wait forever
            assert (await t.send(get(server.url("/c")))).body == b"/c"
        assert t.open_connections == 1
    assert [r.target for r in server.requests] == ["/a", "/c"]
    assert server.accepted == 1


async def test_a_waiter_handed_a_slot_then_cancelled_passes_it_on() -> None:
    gate = asyncio.Event()
    async with ScriptedServer(gated(gate)) as server, transport(max_connections=1) as t:
        second: asyncio.Task[Any] | None = None

        async def first_then_cancel_second() -> bytes:
            body = (await t.send(get(server.url("/a")))).body
            # The connection went back and woke `second`, which has not run yet: cancel it now.
            assert second is not None
            second.cancel()
            return body

        first = asyncio.create_task(first_then_cancel_second())
        await server.until(lambda: len(server.requests) == 1)
        second = asyncio.create_task(t.send(get(server.url("/b"))))
        third = asyncio.create_task(t.send(get(server.url("/c"))))
        await asyncio.sleep(0)  # both queue for the one slot
        gate.set()
        assert await first == b"/a"
        with pytest.raises(asyncio.CancelledError):
            await second
        async with asyncio.timeout(5):
            assert (await third).body == b"/c"
        assert t.open_connections == 1
    assert [r.target for r in server.requests] == ["/a", "/c"]


async def test_a_cancelled_waiter_stays_cancelled_when_the_transport_closes() -> None:
    """Regression: the waiter was already gone from the queue (aclose cleared it), and removing it
    again raised ValueError out of the cancelled send instead of CancelledError."""
    gate = asyncio.Event()
    async with ScriptedServer(gated(gate)) as server:
        t = Http11Transport(max_connections=1)
        busy = asyncio.create_task(t.send(get(server.url("/a"))))
        await server.until(lambda: len(server.requests) == 1)
        waiting = asyncio.create_task(t.send(get(server.url("/b"))))
        await asyncio.sleep(0)
        waiting.cancel()
        await t.aclose()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        with pytest.raises((TransportError, ServiceClosedError)):
            await busy
        assert t.open_connections == 0


async def test_at_the_limit_an_idle_connection_of_another_origin_is_evicted() -> None:
    async with (
        ScriptedServer(keep_alive) as one,
        ScriptedServer(keep_alive) as two,
        transport(max_connections=1) as t,
    ):
        async with asyncio.timeout(5):  # without eviction: waits for the idle one to expire
            assert (await t.send(get(one.url()))).status == 200
            assert (await t.send(get(f"http://localhost:{two.port}/"))).status == 200
            await one.until(lambda: one.peers[0].closed.is_set())  # evicted to make room
            assert t.open_connections == 1
            assert (await t.send(get(two.url()))).status == 200  # 127.0.0.1 is not localhost:
            await two.until(lambda: two.peers[0].closed.is_set())  # another origin, evicted too
            assert (await t.send(get(two.url("/again")))).body == b"GET /again #2"
        assert t.open_connections == 1
    assert one.accepted == 1
    assert two.accepted == 2


async def test_idle_connections_expire_after_keepalive_timeout() -> None:
    # The read-timeout timer of each request also fires while the connection idles: a no-op.
    async with (
        ScriptedServer(keep_alive) as server,
        transport(keepalive_timeout=0.3, read_timeout=0.1) as t,
    ):
        await t.send(get(server.url()))
        await t.send(get(server.url()))  # reused: its idle time starts again
        assert server.accepted == 1
        await server.until(lambda: server.peers[0].closed.is_set())
        assert t.open_connections == 0
        assert (await t.send(get(server.url()))).body == b"GET / #1"  # a new connection
        assert server.accepted == 2
        await server.until(lambda: server.peers[1].closed.is_set())
        assert t.open_connections == 0


async def test_idle_connections_expire_one_by_one() -> None:
    async def script(peer: Peer) -> None:
        while (request := await peer.receive()) is not None:
            if request.target == "/later":
                await asyncio.sleep(0.1)  # latency: this connection goes idle 0.1 s after the other
            await peer.send(response(b"ok"))

    async with ScriptedServer(script) as server, transport(keepalive_timeout=0.3) as t:
        await t.send(get(server.url("/now")))
        await t.send(get(f"http://localhost:{server.port}/later"))  # another origin: a second socket
        assert t.open_connections == 2
        await server.until(lambda: server.accepted == 2 and all(p.closed.is_set() for p in server.peers))
        assert t.open_connections == 0


SPELLINGS_OF_LOOPBACK = ["127.0.0.1", "127.1", "127.0.1", "2130706433", "0x7f000001", "0177.0.0.1"]


async def test_the_pool_keeps_nothing_for_origins_whose_connections_are_gone() -> None:
    """Regression: every origin ever used kept an (empty) idle list, and the eviction scan at the
    limit walked them all: with a host per project, both grew with every project ever called."""
    async with ScriptedServer(keep_alive) as server, transport(keepalive_timeout=0.2) as t:
        for host in SPELLINGS_OF_LOOPBACK:
            await t.send(get(f"http://{host}:{server.port}/"))
        assert t.open_connections == len(SPELLINGS_OF_LOOPBACK)  # one origin each
        await server.until(lambda: server.open == 0)  # every idle one expired
        assert t.open_connections == 0
        assert t._idle == {}
    async with ScriptedServer(keep_alive) as server, transport(max_connections=1) as t:
        for host in SPELLINGS_OF_LOOPBACK * 2:  # each evicts the one before
            await t.send(get(f"http://{host}:{server.port}/"))
        assert t.open_connections == 1
        assert len(t._idle) == 1


# --- a server that closes kept-alive connections ----------------------------------------------------


async def test_a_get_is_resent_once_on_a_fresh_connection_when_a_kept_alive_one_closes() -> None:
    async with ScriptedServer(answer_once_then_drop_on_reuse) as server, transport() as t:
        assert (await t.send(get(server.url("/1")))).body == b"first"
        assert (await t.send(get(server.url("/2")))).body == b"first"  # transparently resent
        assert t.open_connections == 1
    assert [r.target for r in server.requests] == ["/1", "/2", "/2"]
    assert server.accepted == 2


async def test_the_resend_takes_a_fresh_connection_not_another_idle_one() -> None:
    """Regression: the resend took the next idle connection, and the next, so a request that
    makes the server drop its connection went out once per idle connection plus once more."""
    gate = asyncio.Event()

    async def first_gated_then_drop(peer: Peer) -> None:
        if await peer.receive() is not None and await peer.hold(gate):
            await peer.send(response(b"first"))
            await peer.receive()
        peer.writer.close()

    async with ScriptedServer(first_gated_then_drop) as server, transport() as t:
        warm = [asyncio.create_task(t.send(get(server.url(f"/warm{i}")))) for i in range(3)]
        await server.until(lambda: server.accepted == 3 and len(server.requests) == 3)
        gate.set()
        await asyncio.gather(*warm)
        assert t.open_connections == 3  # three idle connections the server will drop on reuse
        assert (await t.send(get(server.url("/x")))).body == b"first"
    assert [r.target for r in server.requests].count("/x") == 2
    assert server.accepted == 4


async def test_a_post_is_not_resent_when_a_kept_alive_connection_closes() -> None:
    async with ScriptedServer(answer_once_then_drop_on_reuse) as server, transport() as t:
        assert (await t.send(HttpRequest("POST", server.url("/1"), {}, b"a"))).body == b"first"
        with pytest.raises(TransportError, match="closed the connection without answering") as info:
            await t.send(HttpRequest("POST", server.url("/2"), {}, b"b", operation="Commit"))
        assert type(info.value) is TransportError
        assert "Commit" in str(info.value)
        assert t.open_connections == 0
        # The transport is fine afterwards.
        assert (await t.send(HttpRequest("POST", server.url("/3"), {}, b"c"))).body == b"first"
    assert [r.target for r in server.requests] == ["/1", "/2", "/3"]


async def test_a_fresh_connection_closed_without_an_answer_is_not_resent() -> None:
    async def drop(peer: Peer) -> None:
        await peer.receive()
        peer.writer.close()

    async with ScriptedServer(drop) as server, transport() as t:
        with pytest.raises(TransportError, match="without answering"):
            await t.send(get(server.url()))
        assert t.open_connections == 0
    assert len(server.requests) == 1


async def test_a_server_closing_right_after_each_answer_costs_no_error() -> None:
    async def answer_and_close(peer: Peer) -> None:
        if await peer.receive() is not None:
            await peer.send(response(b"bye"))  # no Connection: close, just the FIN
        peer.writer.close()

    async with ScriptedServer(answer_and_close) as server, transport() as t:
        for _ in range(5):
            assert (await t.send(get(server.url()))).body == b"bye"
        await server.until(lambda: server.open == 0)
    assert server.accepted == 5
    # Each GET went out once, or twice when it met the previous socket's close: never failed.
    assert 5 <= len(server.requests) <= 10


async def test_a_reset_on_a_reused_connection_is_absorbed_for_gets(emu: Emulator) -> None:
    async with transport() as t, service(emu.endpoint, t, retry=NO_RETRY) as svc:
        await svc.get_checkpoints("demo-project", "app-log", "cg-0")
        emu.faults.fail_next(1, "reset")
        assert len(await svc.get_checkpoints("demo-project", "app-log", "cg-0")) == 2
        assert svc.requests_sent == 2  # one attempt for the service; the transport resent it
        emu.faults.fail_next(1, "reset")
        with pytest.raises(TransportError):  # a POST is not resent
            await svc.update_checkpoint(
                "demo-project", "app-log", "cg-0", 0, "MTUy", consumer="c", retry=NO_RETRY
            )
    assert emu.faults.injected["reset"] == 2
    assert emu.counters.connections == 2  # the first, and the one the GET was resent on


async def test_a_reset_in_the_middle_of_a_body_is_a_transport_error(emu: Emulator) -> None:
    async with transport() as t, service(emu.endpoint, t, retry=NO_RETRY) as svc:
        emu.faults.fail_next(1, "reset_mid_body")
        with pytest.raises(TransportError) as info:
            await svc.get_checkpoints("demo-project", "app-log", "cg-0")
        assert info.value.status is None
        assert len(await svc.get_checkpoints("demo-project", "app-log", "cg-0")) == 2
    assert emu.faults.injected["reset_mid_body"] == 1


async def test_a_truncated_body_then_eof_is_a_transport_error() -> None:
    async def truncated(peer: Peer) -> None:
        await peer.receive()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        peer.writer.close()

    async with ScriptedServer(truncated) as server, transport() as t:
        with pytest.raises(TransportError, match="bad response") as info:
            await t.send(get(server.url()))
        assert type(info.value) is TransportError
        assert t.open_connections == 0


async def test_a_reset_in_the_middle_of_a_body_from_a_scripted_server() -> None:
    async def reset_mid_body(peer: Peer) -> None:
        await peer.receive()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        sock = peer.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        peer.writer.transport.abort()

    async with ScriptedServer(reset_mid_body) as server, transport(read_timeout=None) as t:
        with pytest.raises(TransportError, match="connection failed: ConnectionResetError") as info:
            await t.send(get(server.url()))
        assert type(info.value) is TransportError
        assert t.open_connections == 0


# --- framing: what may and may not be reused ----------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        response(b"ok", headers="Connection: close\r\n"),
        response(b"ok", version="HTTP/1.0"),
        response(b"ok") + b"EXTRA",  # more bytes than the response: the stream is out of step
    ],
    ids=["connection-close", "http-1.0", "excess-bytes"],
)
async def test_responses_that_end_the_connection_are_not_reused(answer: bytes) -> None:
    async def script(peer: Peer) -> None:
        while await peer.receive() is not None:
            await peer.send(answer)  # and keeps the socket open: the client must close it

    async with ScriptedServer(script) as server, transport() as t:
        for _ in range(3):
            resp = await t.send(get(server.url()))
            assert (resp.status, resp.body) == (200, b"ok")
        await server.until(lambda: server.open == 0)
        assert t.open_connections == 0
    assert server.accepted == 3


@pytest.mark.parametrize(
    ("hint", "accepted"),
    [
        ("timeout=1", 3),  # 1 s less the 1 s margin: never idle, so never reused
        ("timeout=0, max=5", 3),
        ("timeout=3600, max=100", 1),  # longer than ours: our keepalive_timeout rules
        ("max=100", 1),  # no timeout stated
        ("timeout=soon", 1),  # not a number: ignored
        ("timeout=\u0661\u0662", 1),  # Arabic-Indic digits: not a number either
        ("timeout=99999999999999999999", 1),  # absurd: ignored, not an overflow
    ],
)
async def test_the_servers_keep_alive_timeout_caps_reuse(hint: str, accepted: int) -> None:
    async def script(peer: Peer) -> None:
        while await peer.receive() is not None:
            await peer.send(response(b"ok", headers=f"Keep-Alive: {hint}\r\n"))

    async with ScriptedServer(script) as server, transport() as t:
        for _ in range(3):
            assert (await t.send(get(server.url()))).body == b"ok"
        await server.until(lambda: server.open == (1 if accepted == 1 else 0))
    assert server.accepted == accepted


async def test_an_idle_connection_past_its_limit_is_not_reused_even_before_the_sweep() -> None:
    # The idle sweep runs on a timer; a send that comes first must not take the stale socket.
    if isinstance(asyncio.get_running_loop(), uvloop.Loop):
        # libuv caches the loop's time per iteration (1 ms resolution): without a loop turn no
        # time passes, and with one the sweep's timer runs first. There is no stale socket to take.
        pytest.skip("uvloop's clock does not advance between two sends without a loop turn")
    async with ScriptedServer(keep_alive) as server, transport(keepalive_timeout=1e-9) as t:
        await t.send(get(server.url()))
        await t.send(get(server.url()))  # no loop turn in between: the sweep has not run
        await server.until(lambda: server.open == 1)
        assert t.open_connections == 1
    assert server.accepted == 2


async def test_an_http_1_0_keep_alive_response_is_reused() -> None:
    async def script(peer: Peer) -> None:
        while await peer.receive() is not None:
            await peer.send(response(b"ok", version="HTTP/1.0", headers="Connection: keep-alive\r\n"))

    async with ScriptedServer(script) as server, transport() as t:
        for _ in range(3):
            assert (await t.send(get(server.url()))).body == b"ok"
    assert server.accepted == 1


async def test_a_chunked_response_from_aiohttp_web() -> None:
    connections: list[object] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        connections.append(request.transport)
        resp = web.StreamResponse(headers={"x-log-requestid": "RIDCHUNK"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(5):
            await resp.write(b"part-%d;" % i)
        await resp.write_eof()
        return resp

    async with web_server(handler) as url, transport() as t:
        for _ in range(3):
            resp = await t.send(get(url + "/chunked"))
            assert resp.status == 200
            assert resp.headers["transfer-encoding"] == "chunked"
            assert resp.request_id == "RIDCHUNK"
            assert resp.body == b"".join(b"part-%d;" % i for i in range(5))
    assert len(connections) == 3
    assert all(c is connections[0] for c in connections)  # chunked framing keeps the connection


async def test_a_gzip_response_is_decoded() -> None:
    payload = b'[{"shard": 0}]' * 1000

    async def handler(_request: web.Request) -> web.StreamResponse:
        resp = web.Response(body=payload)
        resp.enable_compression(web.ContentCoding.gzip)
        return resp

    async with web_server(handler) as url, transport() as t:
        resp = await t.send(get(url + "/", **{"accept-encoding": "gzip"}))
    assert resp.headers["content-encoding"] == "gzip"
    assert resp.body == payload


async def test_a_response_read_until_eof() -> None:
    async def until_eof(peer: Peer) -> None:
        await peer.receive()
        await peer.send(b"HTTP/1.1 200 OK\r\nx-log-requestid: RIDEOF\r\n\r\n")
        for i in range(4):
            await peer.send(b"piece-%d;" % i)
        peer.writer.close()

    async with ScriptedServer(until_eof) as server, transport() as t:
        for _ in range(2):
            resp = await t.send(get(server.url()))
            assert resp.body == b"piece-0;piece-1;piece-2;piece-3;"
            assert resp.request_id == "RIDEOF"
        assert t.open_connections == 0
    assert server.accepted == 2


async def test_head_and_no_content_answers_have_no_body() -> None:
    async def script(peer: Peer) -> None:
        while (request := await peer.receive()) is not None:
            if request.method == "HEAD":
                await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
            else:
                await peer.send(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")

    async with ScriptedServer(script) as server, transport() as t:
        head = await t.send(HttpRequest("HEAD", server.url(), {}))
        assert (head.status, head.body, head.headers["content-length"]) == (200, b"", "1234")
        deleted = await t.send(HttpRequest("DELETE", server.url("/x"), {}))
        assert (deleted.status, deleted.body) == (204, b"")
        again = await t.send(HttpRequest("DELETE", server.url("/y"), {}))
        assert (again.status, again.body) == (204, b"")
    # httptools cannot be told that a HEAD answer has no body, so the transport stops reading at
    # its head and never reuses that connection; the 204s share the second one.
    assert server.accepted == 2


async def test_unsolicited_bytes_on_an_idle_connection_drop_it() -> None:
    idle = asyncio.Event()

    async def answer_then_408(peer: Peer) -> None:
        await peer.receive()
        await peer.send(response(b"ok"))
        if await peer.hold(idle):  # the connection is back in the pool: now a stray answer
            await peer.send(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")

    async with ScriptedServer(answer_then_408) as server, transport() as t:
        assert (await t.send(get(server.url()))).body == b"ok"
        assert t.open_connections == 1
        idle.set()
        await server.until(lambda: server.peers[0].closed.is_set())
        assert t.open_connections == 0
        assert (await t.send(get(server.url()))).body == b"ok"
    assert server.accepted == 2


async def test_a_url_without_a_path_goes_to_the_root() -> None:
    """Regression: ``http://host:port`` (no path) looked up the Host header under a key cut one
    character short, and raised KeyError."""
    async with ScriptedServer(keep_alive) as server, transport() as t:
        resp = await t.send(get(f"http://127.0.0.1:{server.port}"))
        assert resp.body == b"GET / #1"
        with pytest.raises(ValidationError):  # a query with no path before it: not guessed at
            await t.send(get(f"http://127.0.0.1:{server.port}?a=/b"))
        with pytest.raises(ValidationError, match="not an http"):
            await t.send(get("ftp://127.0.0.1/x"))
    assert server.requests[0].headers["host"] == f"127.0.0.1:{server.port}"
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pa55/w0rd@127.0.0.1/x",
        "http://127.0.0.1:99999/",
        "http://[::1/",
        "http://127.0.0.1:-1/",
        "ftp://user:pa55@127.0.0.1/",
        "http://user:pa55@/x",
    ],
    ids=["slash-in-password", "port-out-of-range", "unclosed-bracket", "negative-port", "ftp", "no-host"],
)
async def test_a_malformed_url_is_a_validation_error_without_its_userinfo(url: str) -> None:
    """Regression: urlsplit()'s ValueError escaped as is, quoting the "port" (here a password),
    and a URL that is not http(s) was quoted whole, userinfo included."""
    async with transport() as t:
        with pytest.raises(ValidationError, match="cannot send to") as info:
            await t.send(get(url))
        for error in (info.value, info.value.__cause__, info.value.__context__):
            assert "pa55" not in f"{error} {error!r}"
        assert t.open_connections == 0


async def test_userinfo_in_a_url_never_reaches_the_host_header() -> None:
    async with ScriptedServer(keep_alive) as server, transport() as t:
        # Thousands of spellings of one origin: the parsed-origin cache stays bounded.
        for i in range(4200):
            await t.send(get(f"http://user{i}:secret@127.0.0.1:{server.port}/"))
        assert t.open_connections == 1
    assert server.accepted == 1
    assert {r.headers["host"] for r in server.requests} == {f"127.0.0.1:{server.port}"}


async def test_a_host_header_given_is_sent_as_is() -> None:
    async with ScriptedServer(keep_alive) as server, transport() as t:
        await t.send(get(server.url(), host="demo-project.localhost"))
    assert server.requests[0].headers["host"] == "demo-project.localhost"


# --- timeouts ---------------------------------------------------------------------------------------


async def test_a_server_that_never_answers_is_a_read_timeout_and_the_connection_is_dropped() -> None:
    async with ScriptedServer(never_answer) as server, transport(read_timeout=0.05) as t:
        async with asyncio.timeout(5):
            with pytest.raises(ReadTimeout, match="no response within the read timeout") as info:
                await t.send(get(server.url()))
        assert info.value.__cause__ is None
        await server.until(lambda: server.peers[0].closed.is_set())
        assert t.open_connections == 0


async def test_the_per_call_timeout_overrides_the_default() -> None:
    async with ScriptedServer(never_answer) as server, transport(read_timeout=None) as t:
        async with asyncio.timeout(5):  # would raise a plain TimeoutError, not ReadTimeout
            with pytest.raises(ReadTimeout):
                await t.send(get(server.url()), timeout=0.05)

    async def slow(peer: Peer) -> None:
        await peer.receive()
        await asyncio.sleep(0.3)  # latency, longer than the default read timeout
        await peer.send(response(b"late"))

    async with ScriptedServer(slow) as server, transport(read_timeout=0.05) as t:
        assert (await t.send(get(server.url()), timeout=10)).body == b"late"


async def test_the_read_timeout_counts_from_the_last_byte_not_the_request() -> None:
    async def drip(peer: Peer) -> None:
        await peer.receive()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        for byte in b"drip-drops":
            await asyncio.sleep(0.05)  # latency: 0.5 s in all, never 0.3 s without a byte
            await peer.send(bytes([byte]))

    async with ScriptedServer(drip) as server, transport(read_timeout=0.3) as t:
        assert (await t.send(get(server.url()))).body == b"drip-drops"


async def test_a_shorter_timeout_on_a_reused_connection_is_honoured() -> None:
    async def answer_once(peer: Peer) -> None:
        await peer.receive()
        await peer.send(response(b"ok"))
        await peer.receive()

    async with ScriptedServer(answer_once) as server, transport() as t:
        assert (await t.send(get(server.url()), timeout=60)).body == b"ok"
        async with asyncio.timeout(5):  # the 60 s timer of the first request must not decide
            with pytest.raises(ReadTimeout):
                await t.send(get(server.url()), timeout=0.05)
    assert server.accepted == 1


async def test_a_read_timeout_through_the_service(emu: Emulator) -> None:
    async with service(emu.endpoint, timeouts=Timeouts(read=0.05), retry=NO_RETRY) as svc:
        emu.faults.fail_next(1, "latency", delay=5.0)
        async with asyncio.timeout(5):
            with pytest.raises(ReadTimeout):
                await svc.get_checkpoints("demo-project", "app-log", "cg-0")
        assert len(await svc.get_checkpoints("demo-project", "app-log", "cg-0")) == 2


async def test_a_connect_timeout_is_a_connect_error() -> None:
    # A TCP peer that never speaks TLS: the handshake (part of connecting) never completes.
    async with ScriptedServer(never_answer) as server, transport(connect_timeout=0.05) as t:
        async with asyncio.timeout(5):
            with pytest.raises(ConnectError, match=r"within 0\.05 s"):
                await t.send(get(server.url(scheme="https")))
        assert t.open_connections == 0
        await server.until(lambda: server.peers[0].closed.is_set())


# --- errors -----------------------------------------------------------------------------------------


async def test_connection_refused_is_a_connect_error(unused_tcp_port: int) -> None:
    async with transport() as t:
        with pytest.raises(ConnectError, match=f"cannot connect to 127.0.0.1:{unused_tcp_port}"):
            await t.send(get(f"http://127.0.0.1:{unused_tcp_port}/"))
        assert t.open_connections == 0
    async with service(f"http://127.0.0.1:{unused_tcp_port}", sleep=no_sleep) as svc:
        with pytest.raises(ConnectError) as info:
            await svc.get_checkpoints("demo-project", "app-log", "cg-0")
    assert info.value.attempts > 1  # safe to retry, and retried


async def test_a_content_length_over_the_limit_is_a_response_parse_error() -> None:
    async def big(peer: Peer) -> None:
        while await peer.receive() is not None:
            await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2048\r\nx-log-requestid: RIDBIG\r\n\r\n")
            await peer.send(b"[" + b" " * 2046 + b"]")

    async with ScriptedServer(big) as server, transport(max_response_bytes=1024) as t:
        with pytest.raises(ResponseParseError, match="too large") as info:
            await t.send(get(server.url()))
        await server.until(lambda: server.peers[0].closed.is_set())  # not read to the end: dropped
        assert t.open_connections == 0
    assert info.value.status == 200
    assert info.value.request_id == "RIDBIG"
    assert info.value.error_code == "ResponseTooLarge"


async def test_a_gzip_bomb_is_a_response_parse_error() -> None:
    bomb = gzip.compress(b"[" + b" " * (8 * 1024 * 1024) + b"]")  # 8 MiB of JSON in ~8 KiB

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "x-log-requestid": "RIDGZ"})

    async with web_server(handler) as url, transport(max_response_bytes=1024 * 1024) as t:
        with pytest.raises(ResponseParseError, match="too large") as direct:
            await t.send(get(url + "/"))
        async with service(url, t) as svc:
            with pytest.raises(ResponseParseError, match="too large") as info:
                await svc.get_checkpoints("demo-project", "app-log", "cg-0")
    assert (direct.value.status, direct.value.request_id) == (200, "RIDGZ")
    assert (info.value.status, info.value.request_id) == (200, "RIDGZ")


@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTP/1.1 9999 Not A Status\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ],
    ids=["status-code", "not-http", "header-line", "http-2", "brotli", "two-lengths"],
)
async def test_a_garbage_response_is_a_transport_error_without_secrets(garbage: bytes) -> None:
    seen: list[str] = []

    async def script(peer: Peer) -> None:
        request = await peer.receive()
        assert request is not None
        seen.append(request.headers["authorization"])
        await peer.send(garbage)

    creds = Credentials(STS_AK, STS_SK, STS_TOKEN)
    async with ScriptedServer(script) as server:
        async with service(server.url(""), credentials=creds, retry=NO_RETRY) as svc:
            with pytest.raises(TransportError, match="bad response") as info:
                await svc.get_checkpoints("demo-project", "app-log", "cg-0")
        assert server.requests[0].headers["x-acs-security-token"] == STS_TOKEN  # it was sent
    assert type(info.value) is TransportError
    [authorization] = seen
    for error in chain(info.value):
        for text in (str(error), repr(error), repr(error.args)):
            assert STS_TOKEN not in text
            assert authorization not in text
            assert STS_SK not in text


def chain(error: BaseException) -> list[BaseException]:
    """``error`` and everything reachable from it through ``__cause__`` and ``__context__``."""
    seen: list[BaseException] = []
    todo = [error]
    while todo:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return seen


@pytest.mark.parametrize(
    "headers",
    [
        {"x-note": "a\r\nX-Injected: 1"},
        {"x-note": "a\nX-Injected: 1"},
        {"x-note": "a\rb"},
        {"x-note": "a\x00b"},
        {"x-acs-security-token": "token\r\n\r\nGET /smuggled HTTP/1.1"},
        {"bad name": "v"},
        {"x-note": "a\x7fb"},
        {"x-note": "a\x1bb"},
        {"x-note": "lone surrogate \udcff"},
        {"Content-Length": "0"},
        {"transfer-encoding": "chunked"},
    ],
    ids=["crlf", "lf", "cr", "nul", "smuggle", "name", "del", "esc", "surrogate", "length", "te"],
)
async def test_header_injection_is_refused_before_anything_is_sent(headers: dict[str, str]) -> None:
    async with ScriptedServer(keep_alive) as server, transport() as t:
        with pytest.raises(ValidationError, match="request refused") as info:
            await t.send(get(server.url(), **headers))
        assert "X-Injected" not in str(info.value)
        assert "token" not in str(info.value)
        # Nothing on the chain leads back to the request's headers (a token, a signature).
        assert info.value.__cause__ is None
        assert info.value.__context__ is None
        assert t.open_connections == 0
        assert (await t.send(get(server.url("/after")))).status == 200
    assert [r.target for r in server.requests] == ["/after"]  # the first byte on the wire
    assert all("x-injected" not in r.headers for r in server.requests)


async def test_cancelling_a_send_mid_request_drops_that_connection() -> None:
    async def first_never_answered(peer: Peer) -> None:
        if len(peer.server.peers) == 1:
            await peer.receive()
        else:
            await keep_alive(peer)

    async with ScriptedServer(first_never_answered) as server, transport() as t:
        task = asyncio.create_task(t.send(get(server.url("/slow"))))
        await server.until(lambda: len(server.requests) == 1)  # on the wire, never answered
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await server.until(lambda: server.peers[0].closed.is_set())  # dropped, not pooled
        assert t.open_connections == 0
        assert (await t.send(get(server.url("/next")))).body == b"GET /next #1"
        assert t.open_connections == 1
    assert server.accepted == 2


async def test_cancelling_a_call_through_the_service_mid_request(emu: Emulator) -> None:
    async with service(emu.endpoint) as svc:
        await svc.get_checkpoints("demo-project", "app-log", "cg-0")
        emu.faults.fail_next(1, "latency", delay=30.0)
        task = asyncio.create_task(svc.get_checkpoints("demo-project", "app-log", "cg-0"))
        async with asyncio.timeout(5):
            while emu.faults.injected["latency"] == 0:  # noqa: ASYNC110 (the emulator has no hook)
                await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert svc._transport.open_connections == 0  # type: ignore[attr-defined]
        assert len(await svc.get_checkpoints("demo-project", "app-log", "cg-0")) == 2
    assert emu.counters.connections == 2


# --- lifecycle --------------------------------------------------------------------------------------


async def test_aclose_fails_requests_in_flight_and_closes_every_socket() -> None:
    gate = asyncio.Event()  # never set: nothing is ever answered
    async with ScriptedServer(gated(gate)) as server:
        t = Http11Transport(max_connections=2)
        tasks = [asyncio.create_task(t.send(get(server.url(f"/{i}")))) for i in range(5)]
        await server.until(lambda: len(server.requests) == 2)  # two in flight, three waiting
        await t.aclose()
        assert t.open_connections == 0
        assert "closed" in repr(t)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, TransportError | ServiceClosedError) for r in results), results
        assert sum(isinstance(r, ServiceClosedError) for r in results) >= 3  # the waiters
        await server.until(lambda: server.open == 0)
        await t.aclose()  # idempotent
        with pytest.raises(ServiceClosedError):
            await t.send(get(server.url()))
    assert server.accepted == 2


async def test_aclose_closes_idle_connections() -> None:
    gate = asyncio.Event()
    async with ScriptedServer(gated(gate)) as server:
        t = Http11Transport()
        tasks = [asyncio.create_task(t.send(get(server.url(f"/{i}")))) for i in range(3)]
        await server.until(lambda: len(server.requests) == 3)
        gate.set()
        await asyncio.gather(*tasks)
        assert t.open_connections == 3
        await t.aclose()
        assert t.open_connections == 0
        await server.until(lambda: server.open == 0)  # the server saw every socket close


async def test_aclose_while_a_body_is_read_until_eof_is_not_a_success() -> None:
    """Regression: aclose() closed the socket under a response framed by the connection's end,
    and the transport took that close for the end of the body: a truncated success."""
    started = asyncio.Event()

    async def partial(peer: Peer) -> None:
        await peer.receive()
        await peer.send(b"HTTP/1.1 200 OK\r\n\r\nthe first half")
        started.set()

    async with ScriptedServer(partial) as server:
        t = Http11Transport()
        task = asyncio.create_task(t.send(get(server.url())))
        await started.wait()
        async with asyncio.timeout(5):  # until the client has read those bytes
            while not any(c.reader is not None and c.reader.started for c in t._connections):  # noqa: ASYNC110
                await asyncio.sleep(0)
        await t.aclose()
        with pytest.raises((TransportError, ServiceClosedError)):
            await task
        await server.until(lambda: server.open == 0)


async def test_aclose_while_connecting_fails_the_request_and_closes_the_socket() -> None:
    """Regression: aclose() did not touch a connection still being opened (here: a TLS handshake
    the server never answers), so its send outlived aclose() by up to connect_timeout, or forever
    without one."""
    async with ScriptedServer(never_answer) as server:
        t = Http11Transport(connect_timeout=None)
        task = asyncio.create_task(t.send(get(server.url(scheme="https"))))
        await server.until(lambda: server.accepted == 1)
        await t.aclose()
        async with asyncio.timeout(5):
            with pytest.raises(ServiceClosedError):
                await task
            await server.until(lambda: server.open == 0)
        assert t.open_connections == 0


async def test_cancelling_a_send_while_it_connects() -> None:
    async with ScriptedServer(never_answer) as server, transport(connect_timeout=None) as t:
        task = asyncio.create_task(t.send(get(server.url(scheme="https"))))
        await server.until(lambda: server.accepted == 1)  # the TLS handshake never completes
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert t.open_connections == 0
        await server.until(lambda: server.open == 0)


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_cancelling_a_send_at_every_step_of_connecting_frees_its_slot_once(
    scheme: str, server_tls: ssl.SSLContext, trusting: ssl.SSLContext
) -> None:
    """Regression: cancelled after the socket was connected (connection_made) but before
    create_connection() returned, the send freed its slot, and the closed socket freed it again:
    open_connections went negative, and max_connections was exceeded by as much from then on."""
    gate = asyncio.Event()  # never set: every send is cancelled, wherever it has got to
    tls = server_tls if scheme == "https" else None
    async with (
        ScriptedServer(gated(gate), tls=tls) as server,
        transport(max_connections=1, ssl_context=trusting, connect_timeout=None) as t,
    ):
        for turns in range(40):  # connect, handshake, write: cancelled after each loop turn
            task = asyncio.create_task(t.send(get(server.url(f"/{turns}", scheme=scheme))))
            for _ in range(turns):
                await asyncio.sleep(0)  # a cancellation point, not a synchronisation
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert t.open_connections >= 0
        await server.until(lambda: server.open == 0)  # every socket was dropped
        assert t.open_connections == 0


async def test_a_caller_cancelling_as_aclose_runs_still_gets_cancelled_error() -> None:
    async with ScriptedServer(never_answer) as server:
        t = Http11Transport(connect_timeout=None)
        task = asyncio.create_task(t.send(get(server.url(scheme="https"))))
        await server.until(lambda: server.accepted == 1)
        task.cancel()
        await t.aclose()
        with pytest.raises(asyncio.CancelledError):
            await task
        await server.until(lambda: server.open == 0)


async def test_a_waiter_woken_just_before_aclose_gets_service_closed_error() -> None:
    gate = asyncio.Event()
    async with ScriptedServer(gated(gate)) as server:
        t = Http11Transport(max_connections=1)

        async def first_then_close() -> None:
            await t.send(get(server.url("/a")))  # its connection goes back and wakes the waiter
            await t.aclose()  # before the waiter runs

        first = asyncio.create_task(first_then_close())
        await server.until(lambda: len(server.requests) == 1)
        waiting = asyncio.create_task(t.send(get(server.url("/b"))))
        await asyncio.sleep(0)
        gate.set()
        await first
        with pytest.raises(ServiceClosedError):
            await waiting
        await server.until(lambda: server.open == 0)
    assert [r.target for r in server.requests] == ["/a"]


async def test_send_after_aclose_raises_and_sends_nothing() -> None:
    async with ScriptedServer(keep_alive) as server:
        t = Http11Transport()
        await t.aclose()
        with pytest.raises(ServiceClosedError):
            await t.send(get(server.url()))
    assert server.accepted == 0


async def test_an_unclosed_transport_with_open_connections_warns_and_drops_them() -> None:
    """Regression: each connection referred to the transport (and so did the idle-expiry timer),
    and the event loop refers to each connection: the transport was never collected, so it never
    warned, and its sockets stayed open."""
    async with ScriptedServer(keep_alive) as server:
        t = Http11Transport()
        await t.send(get(server.url()))
        with pytest.warns(ResourceWarning, match="unclosed"):  # noqa: PT031
            del t
            gc.collect()
        await server.until(lambda: server.peers[0].closed.is_set())


async def test_a_transport_without_connections_does_not_warn(unused_tcp_port: int) -> None:
    t = Http11Transport()
    with pytest.raises(ConnectError):
        await t.send(get(f"http://127.0.0.1:{unused_tcp_port}/"))
    del t  # nothing open: no warning (warnings are errors here)
    gc.collect()


RUNNERS = [pytest.param(asyncio.run, id="asyncio"), pytest.param(uvloop.run, id="uvloop")]


@pytest.mark.parametrize("run", RUNNERS)
def test_aclose_after_the_event_loop_closed_with_connections_open(run: Callable[[Any], Any]) -> None:
    """Regression: aclose() in a new loop (after asyncio.run() ended with a connection idle)
    raised RuntimeError('Event loop is closed') from the socket's old loop, and left the transport
    closed but still counting the connection, which the server never saw end."""
    listener = socket.create_server(("127.0.0.1", 0))
    ended = threading.Event()

    def serve() -> None:  # a thread, so that the server outlives both event loops
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(response(b"ok"))
            conn.settimeout(10)
            if conn.recv(1) == b"":
                ended.set()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    port = listener.getsockname()[1]
    t = Http11Transport()

    async def send(t: Http11Transport) -> bytes:
        return (await t.send(get(f"http://127.0.0.1:{port}/"))).body

    with listener, warnings.catch_warnings():
        # The socket's own, when its transport object is collected: its loop closed with it open.
        warnings.simplefilter("ignore", ResourceWarning)
        assert run(send(t)) == b"ok"
        assert t.open_connections == 1
        run(t.aclose())
        assert t.open_connections == 0
        assert ended.wait(10)  # the server saw the connection end
        server.join(10)
        del t
        gc.collect()


async def test_the_transport_is_bound_to_one_event_loop() -> None:
    async with ScriptedServer(keep_alive) as server, transport() as t:
        await t.send(get(server.url()))

        def in_another_loop() -> None:
            asyncio.run(t.send(get(server.url())))

        with pytest.raises(RuntimeError, match="another event loop"):
            await asyncio.to_thread(in_another_loop)
        assert (await t.send(get(server.url()))).status == 200  # still fine in its own
    assert len(server.requests) == 2


def test_max_connections_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        Http11Transport(max_connections=-1)


async def test_zero_max_connections_means_unlimited() -> None:
    gate = asyncio.Event()
    async with ScriptedServer(gated(gate)) as server, transport(max_connections=0) as t:
        tasks = [asyncio.create_task(t.send(get(server.url(f"/{i}")))) for i in range(20)]
        await server.until(lambda: server.accepted == 20 and len(server.requests) == 20)
        gate.set()
        await asyncio.gather(*tasks)
        assert t.open_connections == 20


# --- TLS --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_https_with_a_context_trusting_the_ca(
    server_tls: ssl.SSLContext, trusting: ssl.SSLContext
) -> None:
    async with ScriptedServer(keep_alive, tls=server_tls) as server, transport(ssl_context=trusting) as t:
        for i in range(3):
            resp = await t.send(get(server.url(f"/{i}", scheme="https")))
            assert resp.body == b"GET /%d #%d" % (i, i + 1)
        assert (await t.send(get(f"https://localhost:{server.port}/host"))).status == 200
    assert server.accepted == 2  # keep-alive over TLS; localhost is another origin


async def test_https_through_the_service_with_its_ssl_context(
    server_tls: ssl.SSLContext, trusting: ssl.SSLContext
) -> None:
    async def sls(peer: Peer) -> None:
        while await peer.receive() is not None:
            await peer.send(response(b"[]", headers="x-log-requestid: RIDTLS\r\n"))

    async with (
        ScriptedServer(sls, tls=server_tls) as server,
        service(server.url("", scheme="https"), ssl_context=trusting) as svc,
    ):
        assert await svc.get_checkpoints("demo-project", "app-log", "cg-0") == []
        assert await svc.get_checkpoints("demo-project", "app-log", "cg-0") == []
    assert server.accepted == 1


async def test_an_untrusted_certificate_is_a_certificate_error_never_retried(
    server_tls: ssl.SSLContext,
) -> None:
    async with ScriptedServer(keep_alive, tls=server_tls) as server:
        async with transport() as t:  # the system CAs do not know trustme's
            with pytest.raises(CertificateError, match="certificate verification failed") as direct:
                await t.send(get(server.url(scheme="https")))
            assert t.open_connections == 0
        assert isinstance(direct.value, ClientError)
        await server.until(lambda: server.accepted == 1 and server.open == 0)
        async with service(server.url("", scheme="https"), sleep=no_sleep) as svc:
            with pytest.raises(CertificateError) as info:
                await svc.get_checkpoints("demo-project", "app-log", "cg-0")
        await server.until(lambda: server.open == 0)
    assert info.value.attempts == 1
    assert server.accepted == 2  # exactly one connection attempt through the service
    assert server.requests == []


# --- limits a hostile server meets ---------------------------------------------------------------


@pytest.mark.parametrize(("interim", "ok"), [(10, True), (11, False)])
async def test_interim_answers_are_capped(interim: int, ok: bool) -> None:
    """Regression: any number of 1xx answers was skipped, so a server sending them slowly held a
    call forever (each one reset the read timeout)."""

    async def script(peer: Peer) -> None:
        while await peer.receive() is not None:
            await peer.send(b"HTTP/1.1 100 Continue\r\n\r\n" * interim + response(b"final"))

    async with ScriptedServer(script) as server, transport() as t:
        if ok:
            assert (await t.send(get(server.url()))).body == b"final"
        else:
            with pytest.raises(TransportError, match="too many interim"):
                await t.send(get(server.url()))
            await server.until(lambda: server.open == 0)
            assert t.open_connections == 0


async def test_a_head_that_never_ends_is_refused_at_the_limit() -> None:
    """One endless header value, trickled: httptools buffers it whole, so the transport counts."""
    refused = asyncio.Event()

    async def endless(peer: Peer) -> None:
        await peer.receive()
        await peer.send(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        with contextlib.suppress(ConnectionError):
            for _ in range(200):  # 200 KiB, if nobody stops reading
                await peer.send(b"a" * 1024)
                if peer.writer.is_closing():
                    break
        refused.set()

    async with ScriptedServer(endless) as server, transport() as t:
        with pytest.raises(TransportError, match="head too large"):
            await t.send(get(server.url()))
        await server.until(lambda: server.open == 0)
    assert refused.is_set()


async def test_a_deflate_response_is_decoded() -> None:
    payload = b'[{"shard": 1}]' * 500

    async def handler(_request: web.Request) -> web.StreamResponse:
        resp = web.Response(body=payload)
        resp.enable_compression(web.ContentCoding.deflate)
        return resp

    async with web_server(handler) as url, transport() as t:
        for _ in range(2):
            resp = await t.send(get(url + "/", **{"accept-encoding": "deflate"}))
            assert (resp.headers["content-encoding"], resp.body) == ("deflate", payload)


async def test_a_chunked_gzip_bomb_stops_at_the_cap_while_it_is_read() -> None:
    """Decoded as it arrives: the transport refuses the body long before the server has sent it."""
    bomb = gzip.compress(b"\x00" * (64 << 20))  # 64 MiB in ~64 KiB
    sent: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Encoding": "gzip", "x-log-requestid": "RIDBOMB"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):
            for i in range(0, len(bomb), 1024):
                await resp.write(bomb[i : i + 1024])
                sent.append(i)
        return resp

    async with web_server(handler) as url, transport(max_response_bytes=1 << 20) as t:
        with pytest.raises(ResponseParseError, match="decoded") as info:
            await t.send(get(url + "/"))
        assert t.open_connections == 0
    assert (info.value.status, info.value.request_id) == (200, "RIDBOMB")


def test_without_httptools_the_transport_names_the_extra() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["httptools"] = None  # as on an install without the extra
        from aiosls.transport.http11 import Http11Transport
        try:
            Http11Transport()
        except ImportError as exc:
            print(exc)
        else:
            raise SystemExit("constructed without httptools")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Http11Transport needs httptools: pip install 'aiosls[speedups]'\n"
