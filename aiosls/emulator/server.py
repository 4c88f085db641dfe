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
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from .app import MAX_BODY, EmulatorHandler
from .auth import Verifier
from .faults import Counters, FaultConfig, FaultInjector
from .seed import apply_seed, load_seed
from .state import EmulatorState

__all__ = ["DEMO_ACCESS_KEY_ID", "DEMO_ACCESS_KEY_SECRET", "Emulator"]

#: The well-known demo key pair, accepted when no ``access_keys`` are given. Not a secret.
DEMO_ACCESS_KEY_ID: Final = "LTAIaioslsEmulatorDemo"
DEMO_ACCESS_KEY_SECRET: Final = "aiosls-emulator-demo-secret"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _CountingServer(web.Server):
    """aiohttp's low-level server, counting accepted TCP connections."""

    def __init__(self, counters: Counters, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._counters = counters

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
    ) -> None:
        self.host = host
        self._requested_port = port
        self._clock = clock or _utcnow
        #: Added to the clock: set e.g. ``timedelta(minutes=20)`` to make clients' dates expire.
        self.clock_offset = timedelta(0)
        self.state = EmulatorState(self.now)
        keys = dict(access_keys) if access_keys is not None else {DEMO_ACCESS_KEY_ID: DEMO_ACCESS_KEY_SECRET}
        if seed is not None:
            keys.update(apply_seed(self.state, load_seed(seed)))
        self.verifier = Verifier(keys, sts_tokens or {})
        self.verify_signatures = verify_signatures
        self.faults = FaultInjector(faults, fault_seed)
        self.counters = Counters()
        self._max_body = max_body_size
        self._runner: web.BaseRunner | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        where = self.endpoint if self._port is not None else "not started"
        return f"Emulator({where}, access_key_ids={self.verifier.access_key_ids!r})"

    def now(self) -> datetime:
        """The emulator's current time: the clock plus :attr:`clock_offset`."""
        return self._clock() + self.clock_offset

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
        )
        server = _CountingServer(self.counters, handler, access_log=None)
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

    async def aclose(self) -> None:
        """Stop serving and close every connection. Idempotent."""
        runner, self._runner = self._runner, None
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
