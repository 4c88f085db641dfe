"""The chunked rendering is byte for byte prometheus-client's own rendering of the whole snapshot."""

from __future__ import annotations

import asyncio
import gzip

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import exposition
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from aiosls.exporter import metrics
from aiosls.exporter.metrics import GroupRow, ShardRow, Snapshot, choose_format, render

label_values = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
values = st.one_of(st.none(), st.floats(min_value=0, max_value=1e12, allow_nan=False))


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    groups = []
    for _ in range(draw(st.integers(0, 6))):
        shards = tuple(
            ShardRow(i, draw(st.integers(0, 5)), draw(values), draw(values))
            for i in range(draw(st.integers(0, 3)))
        )
        labels = {
            "project": draw(label_values),
            "logstore": draw(label_values),
            "consumer_group": draw(label_values),
            "env": draw(label_values),
        }
        groups.append(
            GroupRow(
                labels, draw(st.integers(0, 5)), draw(values), draw(st.none() | st.integers(0, 9)), shards
            )
        )
    return Snapshot(
        groups=groups,
        up=[({"project": draw(label_values)}, draw(st.integers(0, 1)))],
        requests={("GetCheckPoint", "ok"): draw(st.integers(0, 10**9))},
        errors=[({"project": "p", "error_code": draw(label_values)}, 3)],
        duration_buckets=[*range(12), 12],
        duration_sum=draw(st.floats(0, 1e6)),
        last_sweep_timestamp=1.7e9,
        granularity=draw(st.sampled_from(["group", "shard"])),
    )


class _All:
    def __init__(self, snap: Snapshot) -> None:
        self._snap = snap

    def collect(self) -> list[Metric]:
        out = []
        for fam in metrics._families(self._snap):
            m = Metric(fam.name, fam.documentation, fam.type, fam.unit)
            for suffix, labels, value in fam.samples():
                m.add_sample(fam.name + suffix, dict(labels), value)
            out.append(m)
        return out


@settings(max_examples=60, deadline=None)
@given(snapshots(), st.integers(1, 4))
def test_chunked_rendering_equals_the_librarys_whole_rendering(snap: Snapshot, chunk: int) -> None:
    rendered = asyncio.run(render(snap, chunk=chunk))
    assert rendered.bodies["text"] == exposition.generate_latest(_All(snap))
    assert rendered.bodies["openmetrics"] == openmetrics.generate_latest(_All(snap))  # type: ignore[no-untyped-call]
    for fmt in ("text", "openmetrics"):
        assert gzip.decompress(rendered.gzipped[fmt]) == rendered.bodies[fmt]


async def test_both_formats_parse_with_prometheus_clients_parsers() -> None:
    snap = Snapshot(
        groups=[
            GroupRow(
                {"project": "p", "logstore": 'a"b\\c\nd', "consumer_group": "cg"},
                3,
                12.5,
                1,
                (ShardRow(0, 3, 12.5, 99.0), ShardRow(1, 0, None, None)),
            )
        ],
        up=[({"project": "p"}, 1)],
        requests={},
        errors=[],
        duration_buckets=[0] * 13,
        duration_sum=0.0,
        last_sweep_timestamp=1.7e9,
    )
    rendered = await render(snap, chunk=1)
    text = {f.name: f for f in parse_text(rendered.bodies["text"].decode())}
    om = {f.name: f for f in parse_openmetrics(rendered.bodies["openmetrics"].decode())}
    assert set(text) == set(om)
    lag = text["sls_consumer_group_lag_seconds"].samples
    assert [(s.labels["logstore"], s.labels["shard"], s.value) for s in lag] == [('a"b\\c\nd', "0", 12.5)]
    assert om["sls_consumer_group_lag_seconds"].unit == "seconds"
    assert om["aiosls_exporter_requests"].type == "counter"
    assert b"<td>a&quot;b\\c\nd</td>" in rendered.html


def test_content_negotiation_follows_prometheus_client() -> None:
    assert choose_format(None) == ("text", exposition.CONTENT_TYPE_PLAIN_0_0_4)
    assert choose_format("text/html,*/*") == ("text", exposition.CONTENT_TYPE_PLAIN_0_0_4)
    fmt, ctype = choose_format(
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    )
    assert fmt == "openmetrics"
    assert ctype.startswith("application/openmetrics-text; version=1.0.0")
    assert choose_format("application/openmetrics-text")[0] == "openmetrics"
    # Asked for a version we do not render: served 1.0.0, labelled 1.0.0.
    assert choose_format("application/openmetrics-text; version=2.0.0") == (
        "openmetrics",
        openmetrics.CONTENT_TYPE_LATEST,
    )


async def test_html_page_lists_non_ok_groups_worst_first_and_escapes_names() -> None:
    rows = [
        GroupRow({"project": "p", "logstore": "l", "consumer_group": "ok"}, 0, 1.0, 0),
        GroupRow({"project": "p", "logstore": "l", "consumer_group": "warn"}, 1, 500.0, 0),
        GroupRow({"project": "p", "logstore": "l", "consumer_group": "<script>x</script>"}, 5, None, None),
        GroupRow({"project": "p", "logstore": "l", "consumer_group": "stop"}, 3, 10.0, 0),
    ]
    snap = Snapshot(rows, [({"project": "p"}, 0)], {}, [], [0] * 13, 0.0, 1.7e9)
    page = (await render(snap)).html.decode()
    assert "<script>" not in page
    order = [page.index(name) for name in ("&lt;script&gt;", ">stop<", ">warn<")]
    assert order == sorted(order)
    assert ">ok<" not in page
    assert "DOWN" in page
