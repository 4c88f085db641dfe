"""``InMemoryTransport``: routes each request to a handler function; no sockets.

For unit tests of everything above the transport (ours and our users'): a handler maps an
``HttpRequest`` to an ``HttpResponse`` (sync or async) or raises a ``TransportError`` to play
a failed connection, like ``httpx.MockTransport``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from ..errors import ServiceClosedError
from . import ClosingContext, HttpRequest, HttpResponse

__all__ = ["Handler", "InMemoryTransport"]

Handler = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]


class InMemoryTransport(ClosingContext):
    """Calls ``handler(request)`` for every request and records what was sent.

    :param record: keep every request in :attr:`requests` (turn off for long runs).
    """

    def __init__(self, handler: Handler, *, record: bool = True) -> None:
        self._handler = handler
        self._record = record
        self._closed = False
        #: Every request sent, in order (when ``record`` is on).
        self.requests: list[HttpRequest] = []

    async def send(self, request: HttpRequest, *, timeout: float | None = None) -> HttpResponse:
        """Hand ``request`` to the handler; ``timeout`` is ignored."""
        if self._closed:
            raise ServiceClosedError("transport is closed")
        if self._record:
            self.requests.append(request)
        result = self._handler(request)
        if inspect.isawaitable(result):
            return await result
        return result

    async def aclose(self) -> None:
        """Mark closed; later sends raise ``ServiceClosedError``."""
        self._closed = True

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._closed
