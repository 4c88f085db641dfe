"""A local SLS consumer-group server for tests, demos and benchmarks (what moto is for AWS).

It speaks the SLS wire protocol for the consumer-group APIs on loopback, verifies V1 and V4
signatures with :mod:`aiosls.signing`, and injects faults on demand. Seeded history, writers
and simulated consumers (:mod:`.seed`, :mod:`.simulate`) make consumer lag real and moving;
``emu.advance(seconds)`` moves its clock deterministically in tests. Start it from Python with
``async with Emulator() as emu`` or from a shell with ``aiosls emulator`` /
``python -m aiosls.emulator``.
"""

from __future__ import annotations

from .auth import MAX_SKEW, Verifier
from .faults import FAULT_KINDS, Counters, Fault, FaultConfig, FaultInjector, FaultKind
from .seed import SeedError, apply_seed, load_seed, validate_seed
from .server import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, Emulator
from .simulate import SIMULATIONS, Simulator
from .state import ApiError, EmulatorState, decode_cursor, encode_cursor

__all__ = [
    "DEMO_ACCESS_KEY_ID",
    "DEMO_ACCESS_KEY_SECRET",
    "FAULT_KINDS",
    "MAX_SKEW",
    "SIMULATIONS",
    "ApiError",
    "Counters",
    "Emulator",
    "EmulatorState",
    "Fault",
    "FaultConfig",
    "FaultInjector",
    "FaultKind",
    "SeedError",
    "Simulator",
    "Verifier",
    "apply_seed",
    "decode_cursor",
    "encode_cursor",
    "load_seed",
    "validate_seed",
]
