"""``aiosls exporter``: consumer-group lag and health as Prometheus metrics (extra ``exporter``).

Background sweeps (:mod:`.sweeper`) read every configured project's lag on an interval, judge it
with :class:`~aiosls.health.HealthEvaluator` and render it once (:mod:`.metrics`, with
prometheus-client); the aiohttp server (:mod:`.server`) serves the cached bytes on ``/metrics``.
The sweeper's names load on first use, so the command can say which extra is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import ConfigError, ExporterConfig, TargetConfig, load_config

if TYPE_CHECKING:
    from .sweeper import Exporter, Source, SweepStats

__all__ = ["ConfigError", "Exporter", "ExporterConfig", "Source", "SweepStats", "TargetConfig", "load_config"]


def __getattr__(name: str) -> Any:
    if name in ("Exporter", "Source", "SweepStats"):
        from . import sweeper

        return getattr(sweeper, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
