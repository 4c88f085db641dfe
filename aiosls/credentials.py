"""Access keys and where they come from: a secret-safe snapshot and async providers.

Signing always takes a :class:`Credentials` snapshot, never a provider, so a refresh in the
middle of a fan-out can never mix a new key id with an old secret.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

import attrs

from .errors import AuthError

__all__ = [
    "Credentials",
    "CredentialsProvider",
    "EnvironmentCredentialsProvider",
    "RefreshingCredentialsProvider",
    "StaticCredentialsProvider",
]

logger = logging.getLogger("aiosls.credentials")

ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
            if value is not None and (not isinstance(value, str) or not value.isprintable()):
                # Typically a newline pasted from a file. The value itself is never quoted.
                raise ValueError(
                    f"Credentials.{name} must be printable text (no newline or control character)"
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


class RefreshingCredentialsProvider:
    """Wraps an async ``fetch`` (e.g. an STS AssumeRole call) and refreshes ahead of expiry.

    Within ``advisory`` of expiry one caller refreshes while the others keep using the current
    token; if that refresh fails it is logged and the old token kept. Within ``mandatory`` of
    expiry (or with no token yet) every caller waits for the refresh, and a failure raises.
    Only one refresh runs at a time, however many requests ask (one ``asyncio.Lock``).
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Credentials]],
        *,
        advisory: timedelta = timedelta(minutes=5),
        mandatory: timedelta = timedelta(minutes=1),
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if mandatory > advisory:
            raise ValueError("the mandatory refresh window must not exceed the advisory one")
        self._fetch = fetch
        self._advisory = advisory
        self._mandatory = mandatory
        self._clock = clock
        self._current: Credentials | None = None
        self._lock = asyncio.Lock()
        #: How many times ``fetch`` has been awaited (for monitoring and tests).
        self.refresh_count = 0

    async def get_credentials(self) -> Credentials:
        current = self._current
        now = self._clock()
        if current is not None and not current.expires_within(self._advisory, now):
            return current
        if current is not None and not current.expires_within(self._mandatory, now):
            # Advisory window: refresh if nobody else is, but never make this caller wait.
            if self._lock.locked():
                return current
            return await self._refresh(current, required=False)
        return await self._refresh(current, required=True)

    async def invalidate(self, stale: Credentials) -> Credentials:
        """Force a refresh after the server rejected ``stale`` (e.g. an expired token).

        Concurrent callers holding the same stale snapshot cause one refresh between them.
        """
        async with self._lock:
            if self._current is not None and self._current != stale:
                return self._current
            self._current = None
        return await self._refresh(None, required=True)

    async def _refresh(self, seen: Credentials | None, *, required: bool) -> Credentials:
        """Fetch under the lock, unless someone else did while we waited for it.

        ``seen`` is the snapshot that made the caller refresh. A different one found under the
        lock was fetched meanwhile: use it unless it is already in the mandatory window, or a
        token shorter-lived than the advisory window would make every waiter fetch again.
        """
        async with self._lock:
            current = self._current
            now = self._clock()
            if current is not None and (
                not current.expires_within(self._advisory, now)
                or (current is not seen and not current.expires_within(self._mandatory, now))
            ):
                return current
            try:
                self.refresh_count += 1
                fresh = await self._fetch()
            except Exception as exc:
                mandatory = current is None or current.expires_within(self._mandatory, now)
                if required or mandatory or current is None:
                    raise
                logger.warning(
                    "credential refresh failed (%s); keeping the current token until it is due",
                    type(exc).__name__,
                )
                return current
            self._current = fresh
            return fresh

    def __repr__(self) -> str:
        return f"RefreshingCredentialsProvider(current={self._current!r})"
