"""``Emulator``: the SLS emulator as an async context manager listening on loopback.

Example (also a pytest fixture body)::

    async with Emulator(seed={"projects": {"demo": {"logstores": {"app-log": {"shards": 2}}}}}) as emu:
        emu.state.create_consumer_group("demo", "app-log", "cg", timeout=60)
        emu.faults.fail_next(2, "throttle", api="GetCheckPoint")
        ...  # point a client at emu.endpoint with DEMO_ACCESS_KEY_ID / DEMO_ACCESS_KEY_SECRET
        assert emu.counters.served["GetCheckPoint"] == 1
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from .._text import safe_text
from .app import MAX_BODY, EmulatorHandler
from .auth import Verifier
from .faults import Counters, FaultConfig, FaultInjector
from .seed import apply_seed, load_seed
from .simulate import Simulator
from .state import EmulatorState

__all__ = ["DEMO_ACCESS_KEY_ID", "DEMO_ACCESS_KEY_SECRET", "Emulator"]

logger = logging.getLogger("aiosls.emulator")

#: Seconds an idle keep-alive connection stays open.
DEFAULT_IDLE_TIMEOUT: Final = 30.0
#: Seconds a client has to finish a request head (and then its body) once it started it.
DEFAULT_HEADER_TIMEOUT: Final = 20.0

#: The well-known demo key pair, accepted when no ``access_keys`` are given. Not a secret.
DEMO_ACCESS_KEY_ID: Final = "LTAIaioslsEmulatorDemo"
DEMO_ACCESS_KEY_SECRET: Final = "aiosls-emulator-demo-secret"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Protocol(RequestHandler):
    """aiohttp's connection handler with a header timeout and one bounded line per bad request.

    aiohttp closes a connection idle for ``keepalive_timeout`` (which also bounds a request
    head dripped after a response); this adds ``header_timeout`` from the first byte of a
    request head to the call of the request handler, which marks the head complete.
    """

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._busy = False

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and not self._busy and data:
            loop = asyncio.get_running_loop()
            self._head_timer = loop.call_later(self._header_timeout, self._head_too_slow)
        super().data_received(data)

    def request_started(self) -> None:
        """The head arrived whole: stop its timer (called by the request handler)."""
        self._busy = True
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def request_finished(self) -> None:
        self._busy = False

    def _head_too_slow(self) -> None:
        self._head_timer = None
        logger.info(
            "closing the connection from %s: no complete request head within %ss",
            safe_text(self.peername),
            self._header_timeout,
        )
        self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def log_exception(self, *args: Any, **kw: Any) -> None:
        # aiohttp logs a traceback (and the whole request line) per unhandled error: one line.
        exc = kw.get("exc_info")
        try:
            what = str(args[0]) % args[1:] if args else "error"
        except (TypeError, ValueError):
            what = str(args[0])
        detail = f": {type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else ""
        logger.warning("%s", safe_text(f"{what}{detail}"))

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request aiohttp could not parse (or a handler error): one line, a short answer."""
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else (message or "")
        logger.info("bad request from %s: %s %s", safe_text(request.remote), status, safe_text(reason))
        if request.writer.output_size > 0:
            raise ConnectionError("the response was already started")
        resp = web.Response(status=status, text=f"{status}\n")
        resp.force_close()
        return resp


class _EmulatorServer(web.Server):
    """aiohttp's low-level server with :class:`_Protocol`, counting accepted TCP connections."""

    def __init__(self, counters: Counters, header_timeout: float, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._counters = counters
        self._header_timeout = header_timeout

    def __call__(self) -> RequestHandler:
        return _Protocol(self, loop=self._loop, header_timeout=self._header_timeout, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        self._counters.connections += 1
        super().connection_made(handler, transport)


class Emulator:
    """A local SLS consumer-group server on ``host:port`` (127.0.0.1, ephemeral port by default).

    :param access_keys: AccessKeyId -> secret accepted by signature checks; default the demo pair
        (:data:`DEMO_ACCESS_KEY_ID`/:data:`DEMO_ACCESS_KEY_SECRET`). Seed-file keys are added.
    :param sts_tokens: AccessKeyId -> STS token for keys that are temporary: their requests
        must carry that ``x-acs-security-token`` (401 ``Unauthorized`` otherwise).
    :param seed: initial state, a seed dict or a path to a seed JSON file (see :mod:`.seed`).
    :param faults: random fault rates; change them later through :attr:`faults`.
    :param fault_seed: seeds the fault RNG, for repeatable runs.
    :param clock: server time (aware datetimes); :attr:`clock_offset` shifts it at runtime.
    :param verify_signatures: False accepts any request (benchmarks, quick experiments).
    :param region: when set, V4 signatures must name this region in their credential scope
        (401 ``SignatureNotMatch`` otherwise); None accepts any region.
    :param idle_timeout: seconds a keep-alive connection may sit idle before it is closed.
    :param header_timeout: seconds a client has to send a request head once it started it,
        and then its body; slower clients are disconnected.
    :param tick_interval: seconds between two :meth:`tick` calls of the background task that
        drives seeded writers and simulated consumers; None runs no task (call :meth:`tick`
        or :meth:`advance` yourself).

    Simulated time: :meth:`advance` moves the clock (through :attr:`clock_offset`) and applies
    the writes, commits and expiry due meanwhile; :meth:`tick` applies them up to the clock as
    it is (for tests with their own fake ``clock``). See :mod:`aiosls.emulator.simulate`.

    Attributes: :attr:`endpoint`, :attr:`port`, :attr:`state` (:class:`EmulatorState`),
    :attr:`faults` (:class:`FaultInjector`), :attr:`counters` (:class:`Counters`).
    """

    def __init__(
        self,
        *,
        access_keys: Mapping[str, str] | None = None,
        seed: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultConfig | None = None,
        fault_seed: int = 0,
        sts_tokens: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
        verify_signatures: bool = True,
        max_body_size: int = MAX_BODY,
        region: str | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        tick_interval: float | None = 0.5,
    ) -> None:
        if idle_timeout <= 0 or header_timeout <= 0 or (tick_interval is not None and tick_interval <= 0):
            raise ValueError("idle_timeout, header_timeout and tick_interval must be > 0")
        self.host = host
        self._requested_port = port
        self._clock = clock or _utcnow
        #: Added to the clock: set e.g. ``timedelta(minutes=20)`` to make clients' dates expire.
        self.clock_offset = timedelta(0)
        self.state = EmulatorState(self.now)
        keys = dict(access_keys) if access_keys is not None else {DEMO_ACCESS_KEY_ID: DEMO_ACCESS_KEY_SECRET}
        started = self.now()
        if seed is not None:
            keys.update(apply_seed(self.state, load_seed(seed), now=started))
        #: Drives seeded writers, simulated consumers and retention (see :meth:`tick`).
        self.simulator = Simulator(self.state, started)
        self.verifier = Verifier(keys, sts_tokens or {}, region=region)
        self.verify_signatures = verify_signatures
        self.faults = FaultInjector(faults, fault_seed)
        self.counters = Counters()
        self._max_body = max_body_size
        self._idle_timeout = idle_timeout
        self._header_timeout = header_timeout
        self._tick_interval = tick_interval
        self._ticker: asyncio.Task[None] | None = None
        self._runner: web.BaseRunner | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        where = self.endpoint if self._port is not None else "not started"
        return f"Emulator({where}, access_key_ids={self.verifier.access_key_ids!r})"

    def now(self) -> datetime:
        """The emulator's current time: the clock plus :attr:`clock_offset`."""
        return self._clock() + self.clock_offset

    def tick(self) -> None:
        """Apply the seeded writes, simulated commits and expiry due up to :meth:`now`."""
        self.simulator.tick()

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock ``seconds`` forward and :meth:`tick`: the deterministic way
        for a test to let simulated time pass (clients' request dates must stay within 15 min
        of the emulator's clock, so a signed request after a long advance needs skew learning)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.clock_offset += timedelta(seconds=seconds)
        self.tick()

    async def _tick_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.tick()
            except Exception:  # a simulation bug must not stop the server
                logger.exception("emulator simulation tick failed")

    @property
    def port(self) -> int:
        """The bound port (after start)."""
        if self._port is None:
            raise RuntimeError("the emulator is not running")
        return self._port

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: give this to a client as its endpoint."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def add_access_key(self, access_key_id: str, secret: str, *, security_token: str | None = None) -> None:
        """Accept another key at runtime (an STS key if ``security_token`` is given)."""
        self.verifier.add_key(access_key_id, secret, security_token)

    def remove_access_key(self, access_key_id: str) -> None:
        """Stop accepting a key: its requests get 401 ``Unauthorized`` from now on."""
        self.verifier.remove_key(access_key_id)

    async def start(self) -> None:
        """Bind and start serving."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        handler = EmulatorHandler(
            self.state,
            self.verifier if self.verify_signatures else None,
            self.faults,
            self.counters,
            self.now,
            max_body=self._max_body,
            body_timeout=self._header_timeout,
        )
        server = _EmulatorServer(
            self.counters,
            self._header_timeout,
            handler,
            access_log=None,
            keepalive_timeout=self._idle_timeout,
            lingering_time=0,
        )
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = site.port
        self.tick()
        if self._tick_interval is not None:
            self._ticker = asyncio.create_task(self._tick_forever(self._tick_interval))

    async def aclose(self) -> None:
        """Stop serving and close every connection. Idempotent."""
        runner, self._runner = self._runner, None
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
