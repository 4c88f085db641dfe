"""Credential providers that need the event loop: refreshing ahead of expiry, and the official
Alibaba Cloud default credential chain.

Kept apart from :mod:`aiosls.credentials` so the signing core never imports asyncio; both names
are importable from there too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ._text import safe_text
from .credentials import Credentials
from .errors import AuthError

__all__ = ["DefaultCredentialsProvider", "RefreshingCredentialsProvider"]

logger = logging.getLogger("aiosls.credentials")


def _utcnow() -> datetime:
    return datetime.now(UTC)


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


_EXTRA_MISSING: Final = (
    "DefaultCredentialsProvider needs the official credential chain: "
    "pip install 'aiosls[credentials]' (package alibabacloud-credentials)"
)


def _default_chain() -> Any:
    try:
        from alibabacloud_credentials.provider import (  # type: ignore[import-untyped]
            DefaultCredentialsProvider as Chain,
        )
    except ImportError as exc:
        raise ImportError(_EXTRA_MISSING) from exc
    return Chain()


class DefaultCredentialsProvider:
    """The official Alibaba Cloud default credential chain, as an aiosls provider.

    The chain (package ``alibabacloud-credentials``, extra ``aiosls[credentials]``) looks in turn
    at the ``ALIBABA_CLOUD_*`` environment variables, OIDC/RRSA, the CLI and credentials files and
    the ECS RAM role. Its calls are synchronous (files, the metadata service), so each one runs in
    a worker thread, never on the event loop. The snapshot is cached and refreshed ahead of its
    expiry by a :class:`RefreshingCredentialsProvider`: the STS expiry when the chain reports one,
    else ``cache_ttl`` after the fetch (the chain refreshes its own STS tokens; asking it again
    every few minutes picks up what it renewed).

    :param chain: any object with the chain's ``get_credentials()`` (default: the official
        ``DefaultCredentialsProvider()``, built here).
    """

    def __init__(
        self,
        chain: Any = None,
        *,
        cache_ttl: timedelta = timedelta(minutes=10),
        advisory: timedelta = timedelta(minutes=5),
        mandatory: timedelta = timedelta(minutes=1),
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if cache_ttl <= advisory:
            raise ValueError("cache_ttl must exceed the advisory refresh window")
        self._chain = _default_chain() if chain is None else chain
        self._cache_ttl = cache_ttl
        self._clock = clock
        self._refreshing = RefreshingCredentialsProvider(
            self._fetch, advisory=advisory, mandatory=mandatory, clock=clock
        )

    @property
    def refresh_count(self) -> int:
        """How many times the chain has been asked (for monitoring and tests)."""
        return self._refreshing.refresh_count

    async def get_credentials(self) -> Credentials:
        """The cached snapshot, refreshed from the chain ahead of expiry."""
        return await self._refreshing.get_credentials()

    async def invalidate(self, stale: Credentials) -> Credentials:
        """Ask the chain again after the server rejected ``stale``."""
        return await self._refreshing.invalidate(stale)

    async def _fetch(self) -> Credentials:
        try:
            found = await asyncio.to_thread(self._chain.get_credentials)
        except Exception as exc:
            # The chain's message lists what each source said (paths, reasons); capped and
            # escaped. Unchained: a provider's exception may hold its configuration.
            error = AuthError(
                f"the default credential chain found no credentials: {type(exc).__name__}: "
                f"{safe_text(exc, 500)}",
                error_code="MissingCredentials",
            )
        else:
            return self._snapshot(found)
        raise error

    def _snapshot(self, found: Any) -> Credentials:
        expiration = self._clock() + self._cache_ttl
        get_expiration = getattr(found, "get_expiration", None)
        seconds = get_expiration() if get_expiration is not None else None
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and 0 < seconds < 2**37:
            # The chain reports STS expiry as unix seconds; never cache past it.
            expiration = min(expiration, datetime.fromtimestamp(seconds, UTC))
        return Credentials(
            found.get_access_key_id(),
            found.get_access_key_secret(),
            found.get_security_token() or None,
            expiration=expiration,
        )

    def __repr__(self) -> str:
        return f"DefaultCredentialsProvider(chain={type(self._chain).__name__}, {self._refreshing!r})"
