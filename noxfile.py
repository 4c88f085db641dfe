"""Developer tasks. ``python3 -m nox`` runs tests, lint and typecheck (the README's test command)."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

# The official SDKs are test-only peers: independent clients of our emulator, never runtime deps.
TEST_DEPS = [
    "pytest>=8",
    "pytest-asyncio>=1.4",  # pytest_asyncio_loop_factories: every loopback test under asyncio and uvloop
    "pytest-cov>=5",
    "hypothesis>=6.100",
    "aliyun-log-python-sdk>=0.9.50",
    "alibabacloud-sls20201230>=5.0",
    "psutil>=5.9",
    "trustme>=1.1",  # a throwaway CA for the TLS tests of the transports
]


# The pure core (no I/O): every line and branch is tested, and CI keeps it that way.
PURE_CORE = [
    "_http",
    "_sansio",
    "signing",
    "_serde",
    "names",
    "endpoint",
    "models",
    "errors",
    "retry",
    "credentials",
    "_text",
    "health",
    "transport.http11._request",
    "transport.http11._response",
]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole pytest suite, warnings as errors; fails below 100% coverage of the pure core."""
    session.install("-e", ".[speedups,cli,exporter,credentials]", *TEST_DEPS)
    coverage = [f"--cov=aiosls.{module}" for module in PURE_CORE]
    coverage += ["--cov-report=term-missing:skip-covered", "--cov-fail-under=100"]
    session.run("pytest", *coverage, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    # pytest too: aiosls.testing (the emulator as pytest fixtures) is typed against it.
    session.install(
        "-e", ".[speedups,cli,exporter,credentials]", "mypy>=1.11", "pytest>=8", "pytest-asyncio>=1.4"
    )
    session.run("mypy", "--strict", "aiosls")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (not tests): fan-out vs bare aiohttp, emulator throughput, structuring."""
    session.install(
        "-e", ".[speedups,cli,exporter,credentials]", "psutil>=5.9", "aliyun-log-python-sdk>=0.9.50"
    )
    session.run("python", "benchmarks/fanout.py", *session.posargs)
