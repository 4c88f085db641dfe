"""One HttpRequest puts the same header bytes on the wire through both transports (issue 10).

A raw asyncio server records each request's head exactly as received; the same request goes
through ``AiohttpTransport`` (the reference) and ``Http11Transport``. The request lines and
header blocks must be byte for byte equal, except for headers a transport adds of its own
accord, which the request did not carry:

- aiohttp adds ``Accept: */*`` and ``Accept-Encoding: gzip, deflate`` (plus ``br``/``zstd`` when
  their libraries are installed); Http11Transport adds neither (it decodes gzip and deflate
  when a request asks for them itself);
- both add ``Content-Length`` to a request with a body (and to an empty POST/PUT/PATCH) and
  ``Host`` when the request has none; those must then agree too.

Non-ASCII values go out as UTF-8 through both (what aiohttp's writer does); HTAB inside a value
is sent as is by both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from aiosls import HttpRequest, _sansio
from aiosls.credentials import Credentials
from aiosls.endpoint import parse_endpoint
from aiosls.transport import Transport
from aiosls.transport.aiohttp import AiohttpTransport
from aiosls.transport.http11 import Http11Transport

#: Added by one transport of its own accord (see the module docstring), never by the other.
TRANSPORT_ONLY = {b"accept", b"accept-encoding"}


class RecordingServer:
    """Answers every request with an empty 200 and keeps its raw head."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []

    async def __aenter__(self) -> RecordingServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.endpoint = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def fields(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The request line and the header fields as raw (name, value) bytes, in order."""
    request_line, *lines = head[: -len(b"\r\n\r\n")].split(b"\r\n")
    out = []
    for line in lines:
        name, sep, value = line.partition(b": ")
        assert sep, line
        out.append((name, value))
    return request_line, out


@pytest.fixture
async def server() -> AsyncIterator[RecordingServer]:
    async with RecordingServer() as recording:
        yield recording


def signed(endpoint: str, op: _sansio.Operation, user_agent: str) -> HttpRequest:
    return _sansio.build_request(
        op,
        endpoint=parse_endpoint(endpoint),
        credentials=Credentials("LTAIheaderBytes", "header-bytes-secret", "CAIS-token/+=="),
        now=datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC),
        signature_version="v4",
        region="cn-hangzhou",
        user_agent=user_agent,
    )


def requests(endpoint: str) -> list[HttpRequest]:
    commit = signed(
        endpoint,
        _sansio.update_checkpoint("demo-project", "app-log", "cg-0", 1, "MTUy", consumer="c-1"),
        "aiosls-tests (caf\u00e9 \u2603 \u4e2d\u6587)",
    )
    read = signed(endpoint, _sansio.get_checkpoint("demo-project", "app-log", "cg-0"), "aiosls-tests")
    extra = {
        "x-note": "caf\u00e9 \u20ac \U0001f600 \u00ff",
        "X-Mixed-Case": "tab\tinside, trailing space ",
        "x-latin1": "\u00e9\u00e8\u00ea",
    }
    without_host = {k: v for k, v in read.headers.items() if k != "Host"}
    return [
        commit,
        HttpRequest(read.method, read.url, {**read.headers, **extra}, operation="GetCheckPoint"),
        HttpRequest("GET", read.url, without_host, operation="NoHost"),
        HttpRequest("POST", endpoint + "/empty", {"x-note": "empty body \u2603"}, operation="EmptyPost"),
    ]


async def capture(transport: Transport, server: RecordingServer, request: HttpRequest) -> bytes:
    before = len(server.heads)
    async with asyncio.timeout(10):
        response = await transport.send(request)
    assert response.status == 200
    assert len(server.heads) == before + 1
    return server.heads[-1]


@pytest.mark.parametrize("which", range(4), ids=["signed-post", "non-ascii", "no-host", "empty-post"])
async def test_both_transports_send_the_same_header_bytes(server: RecordingServer, which: int) -> None:
    request = requests(server.endpoint)[which]
    async with AiohttpTransport() as reference, Http11Transport() as lean:
        expected = await capture(reference, server, request)
        got = await capture(lean, server, request)

    expected_line, expected_fields = fields(expected)
    got_line, got_fields = fields(got)
    assert got_line == expected_line
    added = [name for name, _ in expected_fields if name.lower() in TRANSPORT_ONLY]
    assert {name.lower() for name in added} == TRANSPORT_ONLY  # aiohttp did add them, here
    assert got_fields == [(n, v) for n, v in expected_fields if n.lower() not in TRANSPORT_ONLY]
    # Every value the request carried went out as its UTF-8 bytes, through both.
    for name, value in request.headers.items():
        assert (name.encode(), value.encode()) in got_fields
