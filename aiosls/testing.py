"""pytest fixtures: the aiosls emulator (and a service connected to it) in your own tests.

Installed aiosls registers this module as a pytest plugin (the ``pytest11`` entry point), so the
fixtures are simply there; from a checkout, add ``pytest_plugins = ["aiosls.testing"]`` to
your ``conftest.py``. The fixtures are async: they need pytest-asyncio (auto mode, or mark
the tests ``@pytest.mark.asyncio``).

- ``sls_emulator``: a running :class:`~aiosls.emulator.Emulator` on 127.0.0.1 (a free port),
  accepting the emulator's demo key, seeded from ``@pytest.mark.sls_seed({...})`` or from an
  ``sls_seed`` fixture you define. Inject faults with ``sls_emulator.faults``.
- ``sls_credentials``: the :class:`~aiosls.Credentials` the emulator accepts.
- ``sls_service``: a :class:`~aiosls.CheckpointService` on the emulator, with
  the :func:`fast_retry` policy so injected throttling costs milliseconds, not seconds.

Example::

    @pytest.mark.sls_seed({"projects": {"p1": {"logstores": {"app-log": {"shards": 2}}}}})
    async def test_reads(sls_service, sls_emulator):
        sls_emulator.faults.fail_next(1, "throttle")
        assert await sls_service.list_shards("p1", "app-log")

Loading this plugin imports neither aiohttp nor the emulator: a fixture imports them when a
test first asks for it, so a test run that uses none of them pays nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    from .credentials import Credentials
    from .emulator import Emulator
    from .retry import RetryPolicy
    from .service import CheckpointService

__all__ = [
    "fast_retry",
    "sls_credentials",
    "sls_emulator",
    "sls_seed",
    "sls_service",
]

_MARKER: Final = "sls_seed"


def fast_retry() -> RetryPolicy:
    """The default policy's attempts with backoff in milliseconds (for tests: injected
    throttling then costs no real seconds). A function: the plugin imports nothing heavy."""
    from .retry import Backoff, RetryPolicy

    return RetryPolicy(throttling=Backoff(initial=0.01, cap=0.05), transient=Backoff(initial=0.01, cap=0.05))


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``sls_seed`` marker (runs with ``--strict-markers`` too)."""
    config.addinivalue_line(
        "markers", f"{_MARKER}(seed): seed the sls_emulator fixture (the emulator's seed format, a dict)"
    )


def _async_fixture(function: Callable[..., Any]) -> Any:
    """An async fixture through pytest-asyncio; without it, a fixture that says what is missing."""
    try:
        import pytest_asyncio
    except ImportError:

        def missing() -> None:
            pytest.fail(f"the {function.__name__} fixture (aiosls.testing) needs pytest-asyncio")

        missing.__doc__ = function.__doc__
        return pytest.fixture(name=function.__name__)(missing)
    return pytest_asyncio.fixture(function)


@pytest.fixture
def sls_seed(request: pytest.FixtureRequest) -> dict[str, Any] | None:
    """The seed of ``sls_emulator``: the test's ``sls_seed`` marker, else none (empty state).

    Override this fixture (same name) in a ``conftest.py`` to seed every test of a directory.
    """
    marker = request.node.get_closest_marker(_MARKER)
    if marker is None:
        return None
    if len(marker.args) != 1 or marker.kwargs:
        raise pytest.UsageError(f"@pytest.mark.{_MARKER} takes one argument: the seed dict")
    seed: dict[str, Any] = marker.args[0]
    return seed


@pytest.fixture
def sls_credentials() -> Credentials:
    """The access key the ``sls_emulator`` fixture accepts (the emulator's demo key)."""
    from .credentials import Credentials
    from .emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET

    return Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET)


@_async_fixture
async def sls_emulator(sls_seed: dict[str, Any] | None) -> AsyncIterator[Emulator]:
    """A running emulator on 127.0.0.1 (ephemeral port), demo key, seeded by ``sls_seed``."""
    from .emulator import Emulator

    async with Emulator(seed=sls_seed) as emulator:
        yield emulator


@_async_fixture
async def sls_service(
    sls_emulator: Emulator, sls_credentials: Credentials
) -> AsyncIterator[CheckpointService]:
    """A :class:`CheckpointService` on ``sls_emulator`` (V4, region cn-hangzhou, :func:`fast_retry`)."""
    from .service import CheckpointService

    async with CheckpointService(
        sls_emulator.endpoint, sls_credentials, region="cn-hangzhou", retry=fast_retry()
    ) as service:
        yield service
