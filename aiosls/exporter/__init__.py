"""``aiosls exporter``: consumer-group lag and health as Prometheus metrics (extra ``exporter``).

Background sweeps (:mod:`.sweeper`) read every configured project's lag on an interval, judge it
with :class:`~aiosls.health.HealthEvaluator` and render it once (:mod:`.metrics`, with
prometheus-client); the aiohttp server (:mod:`.server`) serves the cached bytes on ``/metrics``.
"""

from __future__ import annotations

from .config import ConfigError, ExporterConfig, TargetConfig, load_config
from .sweeper import Exporter, Source, SweepStats

__all__ = ["ConfigError", "Exporter", "ExporterConfig", "Source", "SweepStats", "TargetConfig", "load_config"]
