"""Small test helpers: canned SLS responses, a fake clock and a recording sleep."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aiosls import HttpRequest, HttpResponse
from aiosls.credentials import Credentials
from aiosls.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, Emulator

T0 = datetime(2024, 9, 5, 8, 30, 15, tzinfo=UTC)
_rid = iter(range(1, 10**9))


def request_id() -> str:
    return f"{next(_rid):024X}"


def ok(body: Any, **headers: str) -> HttpResponse:
    return HttpResponse(200, {"x-log-requestid": request_id(), **headers}, json.dumps(body).encode())


def sls_error(status: int, code: str, message: str = "", **headers: str) -> HttpResponse:
    body = json.dumps({"errorCode": code, "errorMessage": message or code}).encode()
    return HttpResponse(status, {"x-log-requestid": request_id(), **headers}, body)


def checkpoints_body(shards: int = 2, *, committed: bool = True) -> list[dict[str, Any]]:
    return [
        {
            "shard": i,
            "checkpoint": f"MTUy{i}==" if committed else "",
            "updateTime": 1524224984800922 + i,
            "consumer": f"c-{i}",
        }
        for i in range(shards)
    ]


def split(request: HttpRequest) -> tuple[str, dict[str, str]]:
    """(path, decoded query) of a request URL."""
    parts = urlsplit(request.url)
    return parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))


class FakeTime:
    """A wall clock and a monotonic clock that only move when ``sleep`` is awaited."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self.mono = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.mono += seconds
        self.now += timedelta(seconds=seconds)


def scripted(*responses: HttpResponse | BaseException) -> Callable[[HttpRequest], HttpResponse]:
    """A handler answering with ``responses`` in order (exceptions are raised)."""
    it: Iterator[HttpResponse | BaseException] = iter(responses)

    def handler(request: HttpRequest) -> HttpResponse:
        item = next(it)
        if isinstance(item, BaseException):
            raise item
        return item

    return handler


#: The emulator's well-known demo key pair as client credentials.
EMULATOR_CREDS = Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET)


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
