"""Access keys: a secret-safe snapshot, the provider protocol, static and environment providers.

Signing always takes a :class:`Credentials` snapshot, never a provider, so a refresh in the
middle of a fan-out can never mix a new key id with an old secret. This module is part of the
pure core (no asyncio): the providers that need the event loop (refreshing, the official
default chain) live in :mod:`aiosls.providers` and are importable from here too (lazily).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import attrs

from .errors import AuthError

if TYPE_CHECKING:
    from .providers import DefaultCredentialsProvider, RefreshingCredentialsProvider

__all__ = [
    "Credentials",
    "CredentialsProvider",
    "DefaultCredentialsProvider",
    "EnvironmentCredentialsProvider",
    "RefreshingCredentialsProvider",
    "StaticCredentialsProvider",
]

ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"


@attrs.frozen(repr=False)
class Credentials:
    """An immutable AccessKey pair, optionally with an STS token and its expiry.

    ``repr``/``str`` show the key id only; the secret and the token are never rendered.
    """

    access_key_id: str
    access_key_secret: str
    security_token: str | None = None
    #: When an STS token stops working (aware datetime), if known.
    expiration: datetime | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not self.access_key_id or not self.access_key_secret:
            raise ValueError("Credentials need a non-empty access_key_id and access_key_secret")
        for name in ("access_key_id", "access_key_secret", "security_token"):
            value = getattr(self, name)
            # Printable ASCII only: typically a newline pasted from a file, or a non-ASCII
            # character that one HTTP client would send as Latin-1 and another as UTF-8.
            # The value itself is never quoted.
            if value is not None and (
                not isinstance(value, str) or not (value.isascii() and value.isprintable())
            ):
                raise ValueError(
                    f"Credentials.{name} must be printable ASCII (no newline, control or non-ASCII character)"
                )

    def __repr__(self) -> str:
        token = "None" if self.security_token is None else "'***'"
        exp = f", expiration={self.expiration.isoformat()}" if self.expiration else ""
        return (
            f"Credentials(access_key_id={self.access_key_id!r}, access_key_secret='***', "
            f"security_token={token}{exp})"
        )

    __str__ = __repr__

    def expires_within(self, delta: timedelta, now: datetime) -> bool:
        """True when an expiry is known and falls before ``now + delta``."""
        return self.expiration is not None and self.expiration - delta <= now


@runtime_checkable
class CredentialsProvider(Protocol):
    """Anything that can hand out a current credentials snapshot, asynchronously."""

    async def get_credentials(self) -> Credentials:
        """Return credentials valid for at least the next request."""
        ...


class StaticCredentialsProvider:
    """Always the same credentials."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    async def get_credentials(self) -> Credentials:
        return self._credentials

    def __repr__(self) -> str:
        return f"StaticCredentialsProvider({self._credentials!r})"


class EnvironmentCredentialsProvider:
    """Reads ``ALIBABA_CLOUD_ACCESS_KEY_ID``/``_SECRET`` (and ``_SECURITY_TOKEN``) on each call.

    Re-reading is cheap and lets a sidecar rotate the variables of a long-running process.
    """

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self._environ = environ

    async def get_credentials(self) -> Credentials:
        return self.load()

    def load(self) -> Credentials:
        """Read the variables now; :raises AuthError: when either key variable is unset."""
        env = os.environ if self._environ is None else self._environ
        # Surrounding whitespace is never part of a key (a trailing newline from `$(cat file)`).
        key_id = env.get(ENV_ACCESS_KEY_ID, "").strip()
        secret = env.get(ENV_ACCESS_KEY_SECRET, "").strip()
        if not key_id or not secret:
            raise AuthError(
                f"no credentials: set {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET}",
                error_code="MissingCredentials",
            )
        return Credentials(key_id, secret, env.get(ENV_SECURITY_TOKEN, "").strip() or None)

    def __repr__(self) -> str:
        return "EnvironmentCredentialsProvider()"


# The asyncio-using providers live in aiosls.providers; importing them here lazily (PEP 562)
# keeps `from aiosls.credentials import RefreshingCredentialsProvider` working while this module,
# which the signing core imports, never pulls in asyncio.
_LAZY: Final = frozenset({"DefaultCredentialsProvider", "RefreshingCredentialsProvider"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import providers

        return getattr(providers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
