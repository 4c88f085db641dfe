"""Every call is bounded with the default settings, whatever a hostile server does.

A call's total bound defaults to the retry deadline plus one connect timeout; these tests
shrink the deadline (not the mechanism) so they finish quickly, and never assert on time.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from aiosls import (
    Backoff,
    CheckpointService,
    ConnectError,
    Credentials,
    ReadTimeout,
    RetryPolicy,
    Timeouts,
)

CREDS = Credentials("AKID", "secret")
# The default policy's shape with a 0.5 s deadline; the default Timeouts but a 0.5 s connect.
SHORT = RetryPolicy(deadline=0.5, throttling=Backoff(0.01, 0.05), transient=Backoff(0.01, 0.05))
TIMEOUTS = Timeouts(connect=0.5)

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _drain_head(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


async def drip_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Headers, then one body byte every 50 ms, forever: no read ever times out."""
    await _drain_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n")
    while True:
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(0.05)


async def drip_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An endless header block, one short header every 50 ms."""
    await _drain_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\n")
    n = 0
    while True:
        n += 1
        writer.write(f"x-h{n % 50}: {n}\r\n".encode())
        await writer.drain()
        await asyncio.sleep(0.05)


async def endless_interim(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One interim ``100 Continue`` after another, never a final answer."""
    await _drain_head(reader)
    while True:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)


@pytest.fixture
async def hostile(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    serve: Serve = request.param
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@pytest.mark.parametrize("hostile", [drip_body, drip_headers, endless_interim], indirect=True)
async def test_a_hostile_server_cannot_hold_a_call_past_its_bound(hostile: str) -> None:
    async with CheckpointService(hostile, CREDS, region="cn-hangzhou", retry=SHORT, timeouts=TIMEOUTS) as svc:
        assert svc._pipeline.total_timeout(SHORT, None) == 1.0  # deadline + connect
        # A safety net only: the call must end by itself, within its 1 s bound.
        async with asyncio.timeout(30):
            with pytest.raises(ReadTimeout, match="no result within the total timeout of 1s"):
                await svc.get_checkpoints("demo-project", "app-log", "cg-main")


async def test_the_default_bound_is_the_retry_deadline_plus_one_connect_timeout() -> None:
    async with CheckpointService("http://127.0.0.1:1", CREDS, region="cn-hangzhou") as svc:
        assert svc._pipeline.total_timeout(svc._pipeline.retry, None) == 60.0 + 5.0
        assert svc._pipeline.total_timeout(svc._pipeline.retry, 3.0) == 3.0


def _refusing_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: connecting to it is refused


async def test_a_refused_connection_is_retried_twice_not_eleven_times() -> None:
    policy = RetryPolicy(transient=Backoff(0.01, 0.02))
    endpoint = f"http://127.0.0.1:{_refusing_port()}"
    async with CheckpointService(endpoint, CREDS, region="cn-hangzhou", retry=policy) as svc:
        with pytest.raises(ConnectError) as info:
            await svc.get_checkpoints("demo-project", "app-log", "cg-main")
        assert svc.requests_sent == 3
    assert info.value.attempts == 3
