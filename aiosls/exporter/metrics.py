"""What one completed sweep exposes, and its rendering into every exposition format.

A :class:`Snapshot` is plain data built by the sweeper. :func:`render` turns it into bytes with
prometheus-client's own renderers (``generate_latest`` for the text format and
``openmetrics.exposition.generate_latest`` for OpenMetrics), a few hundred series at a time with
the event loop given back between chunks: ~150k series take seconds of CPU, which must never be
one stretch the scrapes (or the sweep) wait behind. Scrapes then serve the cached bytes.
"""

from __future__ import annotations

import asyncio
import html
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import attrs
from prometheus_client import exposition
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics

__all__ = [
    "DURATION_BUCKETS",
    "FORMATS",
    "GroupRow",
    "Rendered",
    "ShardRow",
    "Snapshot",
    "choose_format",
    "render",
]

#: Exposition formats rendered once per sweep: name -> (renderer, content type).
FORMATS: Final[Mapping[str, tuple[Callable[[Any], bytes], str]]] = {
    "text": (exposition.generate_latest, exposition.CONTENT_TYPE_PLAIN_0_0_4),
    "openmetrics": (openmetrics.generate_latest, openmetrics.CONTENT_TYPE_LATEST),
}
#: Buckets of ``aiosls_exporter_sweep_duration_seconds``: from a small fleet to a slow big one.
DURATION_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: Most series rendered in one call of the library's renderer.
CHUNK: Final = 250
#: Longest stretch of CPU work between two yields to the event loop: a scrape (or a response
#: the sweep awaits) waits at most about this long behind the rendering or the judging.
SLICE: Final = 0.004


class Slicer:
    """Cuts long CPU work into slices: ``await slicer.tick()`` yields to the loop once the
    current slice has run for ``SLICE`` seconds (time-based, so slow machines stay responsive)."""

    def __init__(self, budget: float = SLICE) -> None:
        self._budget = budget
        self._start = time.perf_counter()

    def due(self) -> bool:
        """True once the current slice has used its budget."""
        return time.perf_counter() - self._start >= self._budget

    async def tick(self) -> None:
        """Yield to the event loop if the current slice is used up."""
        if self.due():
            await asyncio.sleep(0)
            self._start = time.perf_counter()


_EOF: Final = b"# EOF\n"
#: Rows of the HTML status page (worst first); the rest is counted, not listed.
HTML_ROWS: Final = 500


@attrs.frozen
class ShardRow:
    """One shard's series."""

    shard: int
    status: int
    lag_seconds: float | None
    commit_age_seconds: float | None


@attrs.frozen
class GroupRow:
    """One consumer group's series; ``labels`` holds project, logstore, consumer_group and extras."""

    labels: Mapping[str, str]
    status: int
    max_lag_seconds: float | None
    unassigned_shards: int | None
    shards: tuple[ShardRow, ...] = ()
    reason: str = ""


@attrs.frozen
class Snapshot:
    """Everything one completed sweep exposes (plus the exporter's cumulative counters)."""

    groups: Sequence[GroupRow]
    #: ``aiosls_exporter_up``: label set (project + the target's extra labels) -> 0 or 1.
    up: Sequence[tuple[Mapping[str, str], int]]
    #: ``aiosls_exporter_requests_total``: (operation, outcome) -> count since start.
    requests: Mapping[tuple[str, str], int]
    #: ``aiosls_exporter_errors_total``: label set (project, error_code, extras) -> count since start.
    errors: Sequence[tuple[Mapping[str, str], int]]
    #: Cumulative counts per bucket of :data:`DURATION_BUCKETS` (then +Inf), sum, count.
    duration_buckets: Sequence[int]
    duration_sum: float
    #: None before the first sweep (no sample is served then).
    last_sweep_timestamp: float | None
    granularity: str = "shard"
    names: Sequence[str] = ("OK", "WARN", "STALL", "STOP", "REWIND", "ERR")


@attrs.frozen
class Rendered:
    """The cached responses of one snapshot."""

    bodies: Mapping[str, bytes]
    gzipped: Mapping[str, bytes]
    html: bytes
    series: int
    rendered_at: float


def choose_format(accept: str | None) -> tuple[str, str]:
    """The format key of :data:`FORMATS` and the content type for an ``Accept`` header.

    prometheus-client's own ``choose_encoder`` negotiates (OpenMetrics when asked for, the
    text format otherwise); every name we expose is a legacy name, so the bytes do not depend
    on the escaping scheme, only the content type it returns does.
    """
    encoder, content_type = exposition.choose_encoder(accept or "")
    func = getattr(encoder, "func", encoder)
    if func is openmetrics.generate_latest:
        version = getattr(encoder, "keywords", {}).get("version", "1.0.0")
        # Only the 1.0.0 rendering is cached: answer it, labelled as what it is.
        return "openmetrics", content_type if version == "1.0.0" else openmetrics.CONTENT_TYPE_LATEST
    return "text", content_type


# --- families -----------------------------------------------------------------------------------


@attrs.frozen
class _Family:
    name: str
    documentation: str
    type: str
    unit: str
    samples: Callable[[], Iterator[tuple[str, Mapping[str, str], float]]]


def _families(snap: Snapshot) -> list[_Family]:
    groups = snap.groups

    def per_group(attr: str) -> Callable[[], Iterator[tuple[str, Mapping[str, str], float]]]:
        def gen() -> Iterator[tuple[str, Mapping[str, str], float]]:
            for g in groups:
                value = getattr(g, attr)
                if value is not None:
                    yield "", g.labels, float(value)

        return gen

    def per_shard(attr: str) -> Callable[[], Iterator[tuple[str, Mapping[str, str], float]]]:
        def gen() -> Iterator[tuple[str, Mapping[str, str], float]]:
            for g in groups:
                for s in g.shards:
                    value = getattr(s, attr)
                    if value is not None:
                        yield "", {**g.labels, "shard": str(s.shard)}, float(value)

        return gen

    def rows(items: Iterable[tuple[Mapping[str, str], float]]) -> Callable[[], Iterator[Any]]:
        return lambda: (("", labels, float(v)) for labels, v in items)

    def histogram() -> Iterator[tuple[str, Mapping[str, str], float]]:
        bounds = [*(repr(float(b)) for b in DURATION_BUCKETS), "+Inf"]
        for bound, count in zip(bounds, snap.duration_buckets, strict=True):
            yield "_bucket", {"le": bound}, float(count)
        yield "_count", {}, float(snap.duration_buckets[-1])
        yield "_sum", {}, snap.duration_sum

    codes = ", ".join(f"{i} {n}" for i, n in enumerate(snap.names))
    families = [
        _Family(
            "sls_consumer_group_max_lag_seconds",
            "Consumer group lag: the largest consumption delay over its shards (newest data "
            "minus the last consumed data, by receive time).",
            "gauge",
            "seconds",
            per_group("max_lag_seconds"),
        ),
        _Family(
            "sls_consumer_group_status",
            f"Health verdict of the consumer group over the window of sweeps: {codes}.",
            "gauge",
            "",
            per_group("status"),
        ),
        _Family(
            "sls_consumer_group_unassigned_shards",
            "Shards of the consumer group that no consumer holds.",
            "gauge",
            "",
            per_group("unassigned_shards"),
        ),
    ]
    if snap.granularity == "shard":
        families += [
            _Family(
                "sls_consumer_group_lag_seconds",
                "Consumption delay of one shard: receive time of its newest data minus that of the "
                "last data the group consumed.",
                "gauge",
                "seconds",
                per_shard("lag_seconds"),
            ),
            _Family(
                "sls_consumer_group_commit_age_seconds",
                "Seconds since the consumer group last committed a checkpoint for the shard.",
                "gauge",
                "seconds",
                per_shard("commit_age_seconds"),
            ),
            _Family(
                "sls_consumer_group_shard_status",
                f"Health verdict of one shard over the window of sweeps: {codes}.",
                "gauge",
                "",
                per_shard("status"),
            ),
        ]
    families += [
        _Family(
            "aiosls_exporter_up",
            "1 when the last sweep of the project succeeded, 0 when it failed.",
            "gauge",
            "",
            rows(snap.up),
        ),
        _Family(
            "aiosls_exporter_sweep_duration_seconds",
            "Wall time of a sweep: reading every target's lag and judging it (rendering excluded).",
            "histogram",
            "seconds",
            histogram,
        ),
        _Family(
            "aiosls_exporter_last_sweep_timestamp_seconds",
            "Unix time at which the last sweep completed.",
            "gauge",
            "seconds",
            rows([] if snap.last_sweep_timestamp is None else [({}, snap.last_sweep_timestamp)]),
        ),
        _Family(
            "aiosls_exporter_requests",
            "SLS requests sent by the exporter (attempts, retries included), by API operation and outcome.",
            "counter",
            "",
            lambda: (
                ("_total", {"operation": op, "outcome": outcome}, float(n))
                for (op, outcome), n in sorted(snap.requests.items())
            ),
        ),
        _Family(
            "aiosls_exporter_errors",
            "Failed reads (a group, a logstore or a whole project) by project and SLS error code.",
            "counter",
            "",
            lambda: (("_total", labels, float(n)) for labels, n in snap.errors),
        ),
    ]
    return families


class _One:
    """A collector of one metric family, as the renderers take a registry."""

    def __init__(self, metric: Metric) -> None:
        self._metric = metric

    def collect(self) -> list[Metric]:
        return [self._metric]


def _strip_header(body: bytes) -> bytes:
    """A later chunk of a family repeats HELP/TYPE/UNIT: keep only its sample lines."""
    start = 0
    while body.startswith(b"#", start):
        start = body.index(b"\n", start) + 1
    return body[start:]


async def render(
    snap: Snapshot, *, chunk: int = CHUNK, gzip_level: int = 1, slicer: Slicer | None = None
) -> Rendered:
    """Render ``snap`` into every format of :data:`FORMATS` (and gzip), at most ``chunk``
    series per renderer call, yielding to the loop every :data:`SLICE` seconds of work."""
    slicer = slicer or Slicer()
    parts: dict[str, list[bytes]] = {fmt: [] for fmt in FORMATS}
    zips = {fmt: zlib.compressobj(gzip_level, zlib.DEFLATED, 31) for fmt in FORMATS}
    zipped: dict[str, list[bytes]] = {fmt: [] for fmt in FORMATS}
    series = 0

    def add(fmt: str, body: bytes) -> None:
        parts[fmt].append(body)
        zipped[fmt].append(zips[fmt].compress(body))

    def emit(metric: Metric, first: bool) -> None:
        if metric.type == "gauge":
            # A gauge's sample lines are the same bytes in both formats (same label escaping,
            # same float formatting; test_exporter_metrics pins it): render them once.
            text = exposition.generate_latest(_One(metric))
            lines = _strip_header(text)
            add("text", text if first else lines)
            if first:
                empty = Metric(metric.name, metric.documentation, metric.type, metric.unit)
                header: bytes = openmetrics.generate_latest(_One(empty))  # type: ignore[no-untyped-call]
                add("openmetrics", header[: -len(_EOF)])
            add("openmetrics", lines)
            return
        for fmt, (renderer, _) in FORMATS.items():
            body = renderer(_One(metric))
            if body.endswith(_EOF):
                body = body[: -len(_EOF)]
            add(fmt, body if first else _strip_header(body))

    for fam in _families(snap):
        metric = Metric(fam.name, fam.documentation, fam.type, fam.unit)
        first = True
        step = max(1, min(chunk, 25))
        for suffix, labels, value in fam.samples():
            metric.add_sample(fam.name + suffix, dict(labels), value)
            series += 1
            if len(metric.samples) % step == 0 and (len(metric.samples) >= chunk or slicer.due()):
                emit(metric, first)
                first = False
                metric = Metric(fam.name, fam.documentation, fam.type, fam.unit)
                await slicer.tick()
        if first or metric.samples:
            emit(metric, first)
        await slicer.tick()
    parts["openmetrics"].append(_EOF)
    zipped["openmetrics"].append(zips["openmetrics"].compress(_EOF))
    for fmt in FORMATS:
        zipped[fmt].append(zips[fmt].flush())
    await slicer.tick()
    page = _html(snap)
    return Rendered(
        bodies={fmt: b"".join(p) for fmt, p in parts.items()},
        gzipped={fmt: b"".join(z) for fmt, z in zipped.items()},
        html=page,
        series=series,
        rendered_at=time.time(),
    )


# --- the status page ----------------------------------------------------------------------------


def _html(snap: Snapshot) -> bytes:
    """A small status page: per-project ``up``, status counts, non-OK groups worst first."""
    e = html.escape
    names = snap.names
    counts = [0] * len(names)
    bad: list[GroupRow] = []
    for g in snap.groups:
        if 0 <= g.status < len(counts):
            counts[g.status] += 1
        if g.status != 0:
            bad.append(g)
    bad.sort(key=lambda g: (-g.status, -(g.max_lag_seconds or 0.0), sorted(g.labels.items())))
    if snap.last_sweep_timestamp is None:
        return b"<!doctype html><title>aiosls exporter</title><p>Waiting for the first sweep.</p>\n"
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(snap.last_sweep_timestamp))
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>aiosls exporter</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}"
        ".s1{color:#b80}.s2,.s3,.s4,.s5{color:#c00}</style></head><body>",
        f"<h1>aiosls exporter</h1><p>Last sweep completed {e(when)}; "
        f"<a href='/metrics'>/metrics</a>, <a href='/healthz'>/healthz</a>.</p>",
        "<h2>Projects</h2><table><tr><th>project</th><th>labels</th><th>up</th></tr>",
    ]
    for labels, value in snap.up:
        extra = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "project")
        out.append(
            f"<tr><td>{e(labels.get('project', ''))}</td><td>{e(extra)}</td>"
            f"<td class='s{0 if value else 5}'>{'up' if value else 'DOWN'}</td></tr>"
        )
    out.append("</table><h2>Consumer groups</h2><p>")
    out.append(", ".join(f"{e(n)}: {c}" for n, c in zip(names, counts, strict=True)))
    out.append("</p>")
    if bad:
        out.append(
            "<table><tr><th>status</th><th>project</th><th>logstore</th><th>consumer group</th>"
            "<th>max lag (s)</th><th>reason</th></tr>"
        )
        for g in bad[:HTML_ROWS]:
            name = names[g.status] if 0 <= g.status < len(names) else str(g.status)
            lag = "" if g.max_lag_seconds is None else f"{g.max_lag_seconds:.1f}"
            out.append(
                f"<tr class='s{g.status}'><td>{e(name)}</td><td>{e(g.labels.get('project', ''))}</td>"
                f"<td>{e(g.labels.get('logstore', ''))}</td><td>{e(g.labels.get('consumer_group', ''))}</td>"
                f"<td>{lag}</td><td>{e(g.reason)}</td></tr>"
            )
        out.append("</table>")
        if len(bad) > HTML_ROWS:
            out.append(f"<p>... and {len(bad) - HTML_ROWS} more.</p>")
    else:
        out.append("<p>Every consumer group is OK.</p>")
    out.append("</body></html>\n")
    return "".join(out).encode("utf-8")
