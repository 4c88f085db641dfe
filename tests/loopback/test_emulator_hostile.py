"""The emulator against hostile clients over raw sockets (aiohttp clients refuse such bytes).

Nothing a client sends may make a handler raise (no 500 without an injected fault), an
unauthenticated client cannot make it buffer a body, slow and idle clients are disconnected,
and a bad request costs one bounded log line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from urllib.parse import urlsplit

import psutil
import pytest

from aiosls import _sansio
from aiosls.credentials import Credentials
from aiosls.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, Emulator
from aiosls.endpoint import parse_endpoint

P, L = "demo-project", "app-log"
SEED = {"projects": {P: {"logstores": {L: {"shards": 2, "consumer_groups": {"cg": {}}}}}}}
CREDS = Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, security_token="tok-1")
EOF_WAIT = 10.0  # generous upper bound for a close the server does within 0.2 s


def _signed(
    endpoint: str, version: str, op: _sansio.Operation | None = None
) -> tuple[str, dict[str, str], bytes]:
    """(request target, headers, body) of a correctly signed request."""
    req = _sansio.build_request(
        op or _sansio.update_checkpoint(P, L, "cg", 0, "MTA=", consumer="c-1", force_success=True),
        endpoint=parse_endpoint(endpoint),
        credentials=CREDS,
        now=datetime.now(UTC),
        signature_version=version,  # type: ignore[arg-type]
        region="cn-hangzhou",
        user_agent="hostile",
    )
    url = urlsplit(req.url)
    target = url.path + (f"?{url.query}" if url.query else "")
    return target, dict(req.headers), req.body


def _raw(method: str, target: str, headers: dict[str, str | bytes], body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1".encode()]
    for name, value in headers.items():
        raw = value if isinstance(value, bytes) else value.encode()
        lines.append(name.encode() + b": " + raw)
    if body and "Content-Length" not in headers:
        lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def _exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(_read_response(reader), EOF_WAIT)
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    match = re.search(rb"(?i)content-length: *(\d+)", head)
    body = await reader.readexactly(int(match.group(1))) if match else b""
    return head + body


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.fixture
async def emu():
    async with Emulator(
        seed=SEED,
        sts_tokens={DEMO_ACCESS_KEY_ID: "tok-1"},
        idle_timeout=0.2,
        header_timeout=0.2,
        tick_interval=None,
    ) as emulator:
        yield emulator


async def test_a_correctly_signed_raw_request_is_accepted(emu) -> None:
    for version in ("v1", "v4"):
        target, headers, body = _signed(emu.endpoint, version)
        assert _status(await _exchange(emu.port, _raw("POST", target, headers, body))) == 200


def _poisoned(endpoint: str, version: str) -> list[tuple[str, bytes, str, dict[str, str | bytes], bytes]]:
    """One request per signed header (and the signature) with a non-UTF-8 byte in its value."""
    target, headers, body = _signed(endpoint, version)
    cases = []
    for name, value in headers.items():
        if name.lower() in ("host", "content-length", "user-agent"):
            continue
        for poison in (b"\xff", b"\xc3\x28", b"\xed\xa0\x80"):
            bad: dict[str, str | bytes] = dict(headers)
            bad[name] = value.encode() + poison
            cases.append((name, poison, target, bad, body))
    auth = headers["Authorization"]
    for poison in (b"\xff", b"\x80abc"):
        bad = dict(headers)
        bad["Authorization"] = auth.encode()[:-4] + poison  # inside the signature
        cases.append(("Authorization(signature)", poison, target, bad, body))
        bad = dict(headers)
        bad["Authorization"] = auth.encode().replace(
            DEMO_ACCESS_KEY_ID.encode(), DEMO_ACCESS_KEY_ID.encode() + poison
        )
        cases.append(("Authorization(key id)", poison, target, bad, body))
    return cases


@pytest.mark.parametrize("version", ["v1", "v4"])
async def test_non_utf8_bytes_in_signed_headers_answer_4xx_never_500(emu, version, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="aiosls.emulator")
    cases = _poisoned(emu.endpoint, version)
    assert len(cases) >= 20
    for name, poison, target, headers, body in cases:
        response = await _exchange(emu.port, _raw("POST", target, headers, body))
        assert _status(response) in (400, 401), (name, poison, response[:300])
    assert emu.counters.errors["InternalServerError"] == 0
    assert not [r for r in caplog.records if r.exc_info or "bug" in r.getMessage()]


async def test_non_utf8_bytes_in_the_path_query_and_host_answer_4xx(emu) -> None:
    target, headers, body = _signed(emu.endpoint, "v4")
    variants: list[tuple[bytes, dict[str, str | bytes]]] = [
        (target.replace("cg", "cg\udcff", 1).encode("utf-8", "surrogateescape"), dict(headers)),
        ((target + "&x=\xff").encode("latin-1"), dict(headers)),
        (target.encode(), {**headers, "Host": headers["Host"].encode() + b"\xff"}),
        (target.encode(), {**headers, "Host": b"proj\xff." + headers["Host"].encode()}),
    ]
    for raw_target, hdrs in variants:
        data = _raw("POST", "TARGET", hdrs, body).replace(b"TARGET", raw_target, 1)
        assert _status(await _exchange(emu.port, data)) in (400, 401, 404), raw_target
    assert emu.counters.errors["InternalServerError"] == 0


async def test_an_unknown_key_is_refused_before_the_body_is_read(emu) -> None:
    target, headers, _ = _signed(emu.endpoint, "v1")
    headers["Authorization"] = "LOG LTAIunknown:c2lnbmF0dXJl"
    headers["Content-Length"] = str(10 * 1024 * 1024)
    reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
    try:
        writer.write(_raw("POST", target, headers))  # the head only: no body is ever sent
        await writer.drain()
        response = await asyncio.wait_for(_read_response(reader), EOF_WAIT)
        assert _status(response) == 401
        assert b"Unauthorized" in response
        # And the server does not wait for the body: it closes the connection.
        assert await asyncio.wait_for(reader.read(), EOF_WAIT) == b""
    finally:
        writer.close()


async def test_a_slow_request_head_is_disconnected(caplog) -> None:
    caplog.set_level(logging.INFO, logger="aiosls.emulator")
    # A long idle timeout: the head timeout alone must close the connection.
    async with Emulator(idle_timeout=60, header_timeout=0.2, tick_interval=None) as emu:
        reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        try:
            writer.write(b"GET /logstores HTTP/1.1\r\nHost: demo-project.127.0.0.1\r\n")  # never ends
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), EOF_WAIT) == b""
        finally:
            writer.close()
    assert any("no complete request head" in r.getMessage() for r in caplog.records)


async def test_an_idle_connection_is_closed_before_and_after_a_request(emu) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
    try:
        assert await asyncio.wait_for(reader.read(), EOF_WAIT) == b""  # never sent a byte
    finally:
        writer.close()
    target, headers, body = _signed(emu.endpoint, "v4")
    reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
    try:
        writer.write(_raw("POST", target, headers, body))
        await writer.drain()
        assert _status(await asyncio.wait_for(_read_response(reader), EOF_WAIT)) == 200
        assert await asyncio.wait_for(reader.read(), EOF_WAIT) == b""  # kept alive, then idle
    finally:
        writer.close()


async def test_a_slow_body_is_disconnected(emu, caplog) -> None:
    caplog.set_level(logging.INFO, logger="aiosls.emulator")
    target, headers, body = _signed(emu.endpoint, "v4")
    reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
    try:
        data = _raw("POST", target, headers, body)
        writer.write(data[: len(data) - len(body) + 3])  # authenticated head, 3 body bytes
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), EOF_WAIT) == b""
    finally:
        writer.close()
    assert any("request body not received" in r.getMessage() for r in caplog.records)
    assert emu.counters.served["ConsumerGroupUpdateCheckPoint"] == 0


async def test_a_malformed_request_logs_one_bounded_line(emu, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    garbage = [
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x1b[31mFAKE\r\nLOG LINE\x00 \xff\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\x01: v\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 100_000 + b"\r\n\r\n",
    ]
    for data in garbage:
        caplog.clear()
        response = await _exchange(emu.port, data)
        assert 400 <= _status(response) < 500
        lines = [r for r in caplog.records if r.name.startswith(("aiosls", "aiohttp"))]
        assert len(lines) == 1, [r.getMessage()[:200] for r in lines]
        message = lines[0].getMessage()
        assert lines[0].exc_info is None
        assert len(message) < 600
        assert "\n" not in message
        assert "\x1b" not in message
    assert emu.counters.errors["InternalServerError"] == 0


def _rss_mib(proc: psutil.Process) -> float:
    return float(proc.memory_info().rss) / 2**20


async def _unknown_key_with_big_body(port: int, body: bytes) -> int:
    head = (
        "POST /logstores/app-log/consumergroups/cg?type=checkpoint HTTP/1.1\r\n"
        "Host: demo-project.127.0.0.1\r\n"
        "Authorization: LOG LTAIunknown:c2lnbmF0dXJl\r\n"
        f"Date: {datetime.now(UTC):%a, %d %b %Y %H:%M:%S GMT}\r\n"
        "x-log-signaturemethod: hmac-sha1\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        send = asyncio.ensure_future(_send_ignoring_reset(writer, body))
        response = await asyncio.wait_for(_read_response(reader), EOF_WAIT)
        await send
        return _status(response)
    finally:
        writer.close()


async def _send_ignoring_reset(writer: asyncio.StreamWriter, body: bytes) -> None:
    try:
        writer.write(body)
        await asyncio.wait_for(writer.drain(), EOF_WAIT)
    except (ConnectionError, TimeoutError):
        pass  # the server answered and closed without reading the body: expected


def _start_server() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aiosls.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


async def test_unknown_keys_with_10_mib_bodies_do_not_grow_the_server() -> None:
    proc = _start_server()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(line.rsplit(":", 1)[1])
        server = psutil.Process(proc.pid)
        body = b"x" * (10 * 1024 * 1024)
        assert await _unknown_key_with_big_body(port, body) == 401  # warm up
        before = _rss_mib(server)
        statuses = await asyncio.gather(*(_unknown_key_with_big_body(port, body) for _ in range(16)))
        after = _rss_mib(server)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert statuses == [401] * 16
    # Buffering the bodies took 42 -> 207 MB before; a read buffer or two per connection remains.
    assert after - before < 16, (before, after)
