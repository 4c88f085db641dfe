"""Pure HTTP value types: one request exactly as it goes on the wire, one whole response.

No I/O and no HTTP library: the sans-I/O core builds :class:`HttpRequest` and parses
:class:`HttpResponse`; transports (:mod:`aiosls.transport`) only move their bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

__all__ = ["HttpRequest", "HttpResponse", "LowerCaseHeaders"]

_REDACTED: Final = frozenset({"authorization", "x-acs-security-token"})


class LowerCaseHeaders(dict[str, str]):
    """Response headers whose names a transport already lower-cased (kept as they are)."""


@attrs.frozen(repr=False)
class HttpRequest:
    """One request exactly as it goes on the wire.

    ``url`` is absolute and already percent-encoded; transports must send it verbatim,
    because the signature covers these exact path and query bytes. ``body`` is the exact
    payload (``b""`` for none).
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
    # A case-insensitive mapping (multidict's, recognised by its ``getall`` without importing
    # it) or LowerCaseHeaders is used as given; anything else is lower-cased once here.
    if isinstance(headers, LowerCaseHeaders) or hasattr(headers, "getall"):
        return headers
    return LowerCaseHeaders({k.lower(): v for k, v in headers.items()})


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
