"""The exporter's HTTP side (aiohttp.web): ``/metrics``, ``/healthz`` and ``/``.

Every handler only reads :attr:`Exporter.rendered` (bytes rendered once per sweep, per format
and gzipped), so a scrape costs a dictionary lookup and a socket write, whatever a sweep is doing.
"""

from __future__ import annotations

import time
from typing import Final

from aiohttp import web

from .metrics import choose_format
from .sweeper import Exporter

__all__ = ["EXPORTER_KEY", "make_app", "start_server"]

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
