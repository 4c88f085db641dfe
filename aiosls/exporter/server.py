"""The exporter's HTTP side (aiohttp.web): ``/metrics``, ``/healthz`` and ``/``.

Every handler only reads :attr:`Exporter.rendered` (bytes rendered once per sweep, per format
and gzipped), so a scrape costs a dictionary lookup and a socket write, whatever a sweep is doing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Final

from aiohttp import web

from .metrics import choose_format
from .sweeper import Exporter

__all__ = ["EXPORTER_KEY", "ThreadedServer", "make_app", "start_server"]

EXPORTER_KEY: Final = web.AppKey("exporter", Exporter)
#: How long a stopping server waits for scrapes in flight (the exporter must exit within 2 s).
SHUTDOWN_TIMEOUT: Final = 0.5
_WAITING: Final = "no sweep has completed yet\n"


def _accepts_gzip(header: str) -> bool:
    """``Accept-Encoding`` lists gzip with a non-zero quality."""
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().removeprefix("q=").strip()
            try:
                return not params or float(q) > 0
            except ValueError:
                return True
    return False


async def metrics(request: web.Request) -> web.Response:
    """The last completed sweep, in the exposition format the scraper asked for."""
    rendered = request.app[EXPORTER_KEY].rendered
    if rendered is None:
        return web.Response(status=503, text=_WAITING, headers={"Retry-After": "5"})
    fmt, content_type = choose_format(request.headers.get("Accept"))
    headers = {"Content-Type": content_type, "Vary": "Accept, Accept-Encoding", "Cache-Control": "no-store"}
    if _accepts_gzip(request.headers.get("Accept-Encoding", "")):
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=rendered.gzipped[fmt], headers=headers)
    return web.Response(body=rendered.bodies[fmt], headers=headers)


async def healthz(request: web.Request) -> web.Response:
    """200 once a first sweep has completed (the exporter serves data), 503 before."""
    exporter = request.app[EXPORTER_KEY]
    snap = exporter.snapshot
    if exporter.sweeps == 0 or snap is None or snap.last_sweep_timestamp is None:
        return web.Response(status=503, text=_WAITING)
    age = max(0.0, time.time() - snap.last_sweep_timestamp)
    return web.Response(text=f"ok: {exporter.sweeps} sweep(s), last completed {age:.0f} s ago\n")


async def index(request: web.Request) -> web.Response:
    """A small human status page: projects up or down, non-OK groups worst first."""
    rendered = request.app[EXPORTER_KEY].rendered
    if rendered is None:
        page = "<!doctype html><title>aiosls exporter</title><p>Waiting for the first sweep.</p>\n"
        return web.Response(text=page, content_type="text/html", charset="utf-8")
    return web.Response(body=rendered.html, content_type="text/html", charset="utf-8")


def make_app(exporter: Exporter) -> web.Application:
    """The aiohttp application serving ``exporter``'s last sweep."""
    app = web.Application()
    app[EXPORTER_KEY] = exporter
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", index)
    return app


async def start_server(exporter: Exporter, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``exporter`` on ``host:port`` (port 0: any free port); returns the runner and port.

    ``/metrics`` answers 200 from the start (the exporter's own families; lag once a sweep
    completed), as Prometheus expects of a live target; ``/healthz`` waits for a sweep.

    No access log: a scrape every 15 s is noise, not news.
    """
    await exporter.prime()
    runner = web.AppRunner(
        make_app(exporter), access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = port
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            bound = int(addr[1])
            break
    return runner, bound


class ThreadedServer:
    """The HTTP side on its own thread and event loop, so a scrape never queues behind the
    sweep's callbacks on the main loop.

    A scrape is a few microseconds of Python (the bodies are rendered by the sweep), so this
    thread needs the GIL only briefly, and gets it within the interpreter's switch interval
    (``sys.getswitchinterval()``, 5 ms by default; the command sets 1 ms) however busy the
    sweeping thread is. The handlers only read the exporter's published attributes (one
    reference each, swapped whole by the sweep).
    """

    def __init__(self, exporter: Exporter, host: str, port: int) -> None:
        self._exporter, self._host, self._port = exporter, host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        #: The bound port (after :meth:`start`).
        self.port = port

    async def start(self, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None) -> int:
        """Prime the exporter, bind and serve; returns the bound port.

        :raises OSError: the address cannot be bound.
        """
        await self._exporter.prime()
        self._loop = (loop_factory or asyncio.new_event_loop)()
        ready = threading.Event()

        def serve() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._runner, self.port = self._loop.run_until_complete(
                    start_server(self._exporter, self._host, self._port)
                )
            except BaseException as exc:
                self._error = exc
                ready.set()
                self._loop.close()
                return
            ready.set()
            try:
                self._loop.run_forever()
            finally:
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
                self._loop.close()

        self._thread = threading.Thread(target=serve, name="aiosls-exporter-http", daemon=True)
        self._thread.start()
        await asyncio.to_thread(ready.wait)
        if self._error is not None:
            raise self._error
        return self.port

    async def aclose(self) -> None:
        """Stop serving (scrapes in flight get :data:`SHUTDOWN_TIMEOUT`) and join the thread."""
        loop, runner, thread = self._loop, self._runner, self._thread
        if loop is None or runner is None or thread is None or not thread.is_alive():
            return
        done = asyncio.run_coroutine_threadsafe(runner.cleanup(), loop)
        await asyncio.wrap_future(done)
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)
