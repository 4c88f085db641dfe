"""Seeded fault injection and the emulator's counters.

Faults are decided per request *after* routing and authentication, so a fault counter means
"a request a correctly signed client sent and did not get served". The decision uses one
``random.Random(fault_seed)``, so a run with the same seed and the same request order injects
the same faults. Scripted faults (:meth:`FaultInjector.fail_next`) come before random ones.
"""

from __future__ import annotations

import math
import numbers
import random
from collections import Counter, deque
from collections.abc import Iterable
from typing import Final, Literal, get_args

import attrs

__all__ = ["FAULT_KINDS", "Counters", "Fault", "FaultConfig", "FaultInjector", "FaultKind"]

FaultKind = Literal[
    "throttle",  # 403 ReadQuotaExceed
    "internal_error",  # 500 InternalServerError
    "server_busy",  # 503 ServerBusy
    "bad_gateway",  # 502 with a bare HTML page, as a proxy sends (no JSON, no request id)
    "reset",  # connection closed before any response byte
    "reset_mid_body",  # headers and part of the body sent, then the connection is reset
    "latency",  # the request is served normally, after a delay
]
FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)
_ERROR_KINDS: Final[tuple[FaultKind, ...]] = ("internal_error", "server_busy", "bad_gateway")
_RESET_KINDS: Final[tuple[FaultKind, ...]] = ("reset", "reset_mid_body")


def _rate(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a number in 0..1, got {value!r}")


def _latency(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    # NaN slips through "< 0" and makes asyncio.sleep wait forever; inf is a hang by request.
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _apis(value: Iterable[str] | None) -> frozenset[str] | None:
    if isinstance(value, str):
        return frozenset([value])
    return None if value is None else frozenset(value)


@attrs.frozen
class FaultConfig:
    """Random fault rates (each a probability per request) and added latency.

    ``error_rate`` splits evenly between 500, 503 and the HTML 502; ``reset_rate`` between a
    reset before the response and one in the middle of the body. ``apis`` restricts all of it
    to the named SLS operations (e.g. ``{"GetCheckPoint"}``); ``None`` means every API.
    The three rates together must not exceed 1.
    """

    throttle_rate: float = attrs.field(default=0.0, validator=_rate)
    error_rate: float = attrs.field(default=0.0, validator=_rate)
    reset_rate: float = attrs.field(default=0.0, validator=_rate)
    latency_ms: float = attrs.field(default=0.0, validator=_latency)
    apis: frozenset[str] | None = attrs.field(default=None, converter=_apis)

    def __attrs_post_init__(self) -> None:
        if self.throttle_rate + self.error_rate + self.reset_rate > 1.0 + 1e-9:
            raise ValueError("throttle_rate + error_rate + reset_rate must not exceed 1")

    @property
    def active(self) -> bool:
        return bool(self.throttle_rate or self.error_rate or self.reset_rate or self.latency_ms)


@attrs.frozen
class Fault:
    """What to do to one request: a fault ``kind`` (or None) and a delay before it (seconds)."""

    kind: FaultKind | None
    delay: float = 0.0


@attrs.define
class _Scripted:
    kind: FaultKind
    remaining: int
    api: frozenset[str] | None
    delay: float


class FaultInjector:
    """Decides, per request, whether and how to fail it. Change ``config`` at any time."""

    def __init__(self, config: FaultConfig | None = None, seed: int = 0) -> None:
        self.config = config or FaultConfig()
        self._rng = random.Random(seed)
        self._script: deque[_Scripted] = deque()
        #: Faults injected so far, by kind.
        self.injected: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"FaultInjector({self.config!r}, scripted={len(self._script)})"

    def configure(
        self,
        *,
        throttle_rate: float | None = None,
        error_rate: float | None = None,
        reset_rate: float | None = None,
        latency_ms: float | None = None,
        apis: Iterable[str] | Literal["keep"] | None = "keep",
    ) -> FaultConfig:
        """Change some rates at runtime (others keep their value); returns the new config."""
        c = self.config
        self.config = FaultConfig(
            c.throttle_rate if throttle_rate is None else throttle_rate,
            c.error_rate if error_rate is None else error_rate,
            c.reset_rate if reset_rate is None else reset_rate,
            c.latency_ms if latency_ms is None else latency_ms,
            c.apis if apis == "keep" else _apis(apis),
        )
        return self.config

    def clear(self) -> None:
        """No random faults, no scripted faults (counters are kept)."""
        self.config = FaultConfig()
        self._script.clear()

    def fail_next(
        self,
        n: int = 1,
        kind: FaultKind = "internal_error",
        *,
        api: str | Iterable[str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Fail the next ``n`` requests (to ``api`` only, if given) with ``kind``.

        ``delay`` (seconds) is waited before the fault; with ``kind="latency"`` the request is
        then served normally, which is how to push a client past its read timeout.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        # An int, not a bool: 1.5 would never count down to exactly 0 and so never run out.
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if not _is_number(delay) or not math.isfinite(delay) or delay < 0:
            raise ValueError(f"delay must be a finite number of seconds >= 0, got {delay!r}")
        apis = None if api is None else frozenset([api] if isinstance(api, str) else api)
        self._script.append(_Scripted(kind, n, apis, delay))

    @property
    def pending(self) -> int:
        """Scripted faults not yet injected."""
        return sum(s.remaining for s in self._script)

    def decide(self, api: str) -> Fault | None:
        """The fault for one request to ``api``, or None to serve it normally."""
        if self._script:
            for entry in self._script:
                if entry.api is None or api in entry.api:
                    entry.remaining -= 1
                    if entry.remaining == 0:
                        self._script.remove(entry)
                    self.injected[entry.kind] += 1
                    return Fault(entry.kind, entry.delay)
        c = self.config
        if not (c.throttle_rate or c.error_rate or c.reset_rate or c.latency_ms):
            return None
        if c.apis is not None and api not in c.apis:
            return None
        delay = c.latency_ms / 1000.0
        kind: FaultKind | None = None
        r = self._rng.random()
        if r < c.throttle_rate:
            kind = "throttle"
        elif r < c.throttle_rate + c.error_rate:
            kind = self._rng.choice(_ERROR_KINDS)
        elif r < c.throttle_rate + c.error_rate + c.reset_rate:
            kind = self._rng.choice(_RESET_KINDS)
        if kind is None:
            if not delay:
                return None
            kind = "latency"
        self.injected[kind] += 1
        return Fault(kind, delay)


@attrs.define
class Counters:
    """What the emulator has seen. Plain counters: read them, compare them, reset them.

    - ``connections``: TCP connections accepted (keep-alive reuse shows as few connections).
    - ``requests_total``: every HTTP request received, whatever became of it.
    - ``requests``: by API, requests routed to a known API (authenticated or not).
    - ``served``: by API, requests answered 200.
    - ``errors``: by ``errorCode``, SLS error answers (including injected ones).
    - ``faults`` lives on :class:`FaultInjector` (``emu.faults.injected``), by fault kind.
    """

    connections: int = 0
    requests_total: int = 0
    requests: Counter[str] = attrs.field(factory=Counter)
    served: Counter[str] = attrs.field(factory=Counter)
    errors: Counter[str] = attrs.field(factory=Counter)

    def reset(self) -> None:
        """Zero everything (e.g. between phases of a test)."""
        self.connections = 0
        self.requests_total = 0
        self.requests.clear()
        self.served.clear()
        self.errors.clear()
