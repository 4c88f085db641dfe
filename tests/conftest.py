"""Shared fixtures. Emulator fixtures are named ``emulator*``."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import yarl

from aiosls import _sansio
from aiosls.credentials import Credentials
from aiosls.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, Emulator
from aiosls.endpoint import parse_endpoint

EMULATOR_CREDS = Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """A running emulator on 127.0.0.1 (ephemeral port), demo key, empty state."""
    async with Emulator() as emu:
        yield emu


EmulatorCall = Callable[..., Awaitable[tuple[int, dict[str, str], bytes]]]


@pytest.fixture
async def emulator_call(emulator: Emulator) -> AsyncIterator[EmulatorCall]:
    """``await emulator_call(op, version="v1", creds=..., now=...)`` -> (status, headers, body).

    Signs ``op`` (an ``aiosls._sansio`` builder result) exactly as aiosls does and sends it
    with a plain aiohttp session; headers come back lower-cased.
    """
    endpoint = parse_endpoint(emulator.endpoint)
    async with aiohttp.ClientSession() as session:

        async def call(
            op: _sansio.Operation,
            version: str = "v1",
            *,
            creds: Credentials = EMULATOR_CREDS,
            now: datetime | None = None,
            extra_headers: dict[str, str] | None = None,
        ) -> tuple[int, dict[str, str], bytes]:
            req = _sansio.build_request(
                op,
                endpoint=endpoint,
                credentials=creds,
                now=now or datetime.now(UTC),
                signature_version=version,  # type: ignore[arg-type]
                region="cn-hangzhou",
                user_agent="aiosls-tests",
            )
            headers: dict[str, Any] = {**req.headers, **(extra_headers or {})}
            async with session.request(
                req.method,
                yarl.URL(req.url, encoded=True),
                headers=headers,
                data=req.body or None,
                skip_auto_headers=("Content-Type",),
            ) as resp:
                body = await resp.read()
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, body

        yield call


@pytest.fixture
def emulator_localhost_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve ``*.localhost`` to 127.0.0.1, as the official SDKs put the project in the host."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class EmulatorThread:
    """An :class:`Emulator` running on its own event loop in a daemon thread (for sync clients)."""

    def __init__(self, **kwargs: Any) -> None:
        import asyncio
        import threading

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.emulator = Emulator(**kwargs)
        asyncio.run_coroutine_threadsafe(self.emulator.start(), self.loop).result(10)

    def run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` on the emulator's loop (to touch its state without races)."""
        import asyncio

        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def close(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.emulator.aclose(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def emulator_thread() -> Any:
    """A demo-key emulator on a background thread; sync tests and sync SDKs talk to it."""
    et = EmulatorThread()
    try:
        yield et
    finally:
        et.close()
