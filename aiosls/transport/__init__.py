"""The byte-moving layer: request/response value types and the ``Transport`` protocol.

A transport sends one already-signed :class:`HttpRequest` and returns the whole
:class:`HttpResponse`. It never signs, retries or parses JSON; it only translates its
backend's exceptions into :class:`aiosls.errors.TransportError` subclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol, Self, runtime_checkable

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from .._http11 import Headers
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


_REDACTED: frozenset[str] = frozenset({"authorization", "x-acs-security-token"})


@attrs.frozen(repr=False)
class HttpRequest:
    """One request exactly as it goes on the wire.

    ``url`` is absolute and already percent-encoded; transports must send it verbatim,
    because the signature covers these exact path and query bytes. Header names are
    lower-case. ``body`` is the exact payload (``b""`` for none).
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes = b""
    #: SLS operation name, for logs and errors (never sent).
    operation: str = attrs.field(default="", kw_only=True)

    def __repr__(self) -> str:
        # The signature and the STS token stay out of reprs (test output, error reporters).
        shown = {k: "***" if k.lower() in _REDACTED else v for k, v in self.headers.items()}
        return (
            f"HttpRequest(method={self.method!r}, url={self.url!r}, headers={shown!r}, "
            f"body={self.body!r}, operation={self.operation!r})"
        )


def _lower_headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    # aiohttp's headers are case-insensitive, ours (Headers) lower-case; others are lower-cased here.
    if isinstance(headers, CIMultiDictProxy | CIMultiDict | Headers):
        return headers
    return {k.lower(): v for k, v in headers.items()}


@attrs.frozen
class HttpResponse:
    """A whole response: status, headers (look them up by lower-case name), and the body bytes."""

    status: int
    headers: Mapping[str, str] = attrs.field(converter=_lower_headers)
    body: bytes = b""

    @property
    def request_id(self) -> str | None:
        """The SLS request id (``x-log-requestid``), if the server sent one."""
        return self.headers.get("x-log-requestid")


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
