"""The byte-moving layer: the ``Transport`` protocol (request/response types live in :mod:`aiosls._http`).

A transport sends one already-signed :class:`HttpRequest` and returns the whole
:class:`HttpResponse`. It never signs, retries or parses JSON; it only translates its
backend's exceptions into :class:`aiosls.errors.TransportError` subclasses.
"""

from __future__ import annotations

from typing import Final, Protocol, Self, runtime_checkable

from .._http import HttpRequest, HttpResponse
from ..errors import ResponseParseError

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "ClosingContext",
    "HttpRequest",
    "HttpResponse",
    "Transport",
    "response_too_large",
]

#: GetCheckPoint for a 512-shard logstore is ~70 KiB; anything near this is not SLS talking.
DEFAULT_MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024


class ClosingContext:
    """``async with transport as t:`` closes it on the way out (for a transport of one's own)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release what the transport holds. Idempotent."""
        raise NotImplementedError


@runtime_checkable
class Transport(Protocol):
    """Moves one request to the server and its response back."""

    async def send(self, request: HttpRequest, *, timeout: float | None = None) -> HttpResponse:
        """Send ``request``; ``timeout`` bounds this attempt's read (seconds), if given.

        :raises aiosls.ConnectError: the request never reached the server.
        :raises aiosls.ReadTimeout: no complete response within the timeout.
        :raises aiosls.TransportError: the connection failed mid-exchange.
        """
        ...

    async def aclose(self) -> None:
        """Release connections. Idempotent."""
        ...


def response_too_large(
    what: str, detail: str, limit: int, status: int, request_id: str | None
) -> ResponseParseError:
    """The error every transport raises for a body over its ``max_response_bytes``."""
    return ResponseParseError(
        f"{what}: response body too large ({detail}; limit {limit})",
        error_code="ResponseTooLarge",
        status=status,
        request_id=request_id,
    )
