"""The exporter against the emulator, scraped over HTTP and parsed by prometheus-client's parser:
values against the seed's truth, a missing project beside healthy ones, a deleted group, verdicts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiosls import CheckpointService, Credentials
from aiosls.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, Emulator
from aiosls.exporter.cli import service_source
from aiosls.exporter.config import TargetConfig
from aiosls.exporter.server import start_server
from aiosls.exporter.sweeper import Exporter

CREDS = Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET)
OK, STALL, STOP, ERR = 0, 2, 3, 5

SEED = {
    "projects": {
        "lag-prod": {
            "logstores": {
                "app-log": {
                    "shards": 2,
                    "history_seconds": 3600,
                    "history_rate": 1,
                    "consumer_groups": {
                        "cg-caught-up": {"checkpoints": {"0": {"lag_seconds": 0}, "1": {"lag_seconds": 0}}},
                        "cg-behind": {
                            "checkpoints": {
                                "0": {"lag_seconds": 120, "consumer": "c-1"},
                                "1": {"lag_seconds": 600, "consumer": "c-1"},
                            }
                        },
                        "cg-doomed": {"checkpoints": {"0": {"lag_seconds": 30}}},
                        "cg-test": {"checkpoints": {"0": {"lag_seconds": 30}}},
                    },
                },
                "tmp-log": {"shards": 1, "consumer_groups": {"cg-tmp": {}}},
            }
        },
        "lag-live": {
            "logstores": {
                "app-log": {
                    "shards": 2,
                    "write_rate": 5,
                    "history_seconds": 3600,
                    "consumer_groups": {
                        "cg-healthy": {"simulate": "healthy", "checkpoints": {"0": {"lag_seconds": 0}}},
                        "cg-stalled": {
                            "simulate": "stalled",
                            "checkpoints": {"0": {"lag_seconds": 900}, "1": {"lag_seconds": 900}},
                        },
                        "cg-stopped": {
                            "simulate": "stopped",
                            "checkpoints": {"0": {"lag_seconds": 1800}, "1": {"lag_seconds": 1800}},
                        },
                    },
                }
            }
        },
    }
}


Scrape = dict[str, dict[tuple[tuple[str, str], ...], float]]


class Running:
    def __init__(
        self, emulator: Emulator, exporter: Exporter, url: str, session: aiohttp.ClientSession
    ) -> None:
        self.emulator, self.exporter, self.url, self.session = emulator, exporter, url, session

    async def scrape(self) -> Scrape:
        async with self.session.get(self.url) as resp:
            assert resp.status == 200
            text = await resp.text()
        out: Scrape = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
        return out


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    async with Emulator(seed=SEED) as emu:
        target = TargetConfig(
            emu.endpoint,
            ("lag-prod", "lag-live", "no-such-project"),
            region="cn-hangzhou",
            labels={"env": "test"},
            logstore_exclude=re.compile("^tmp-"),
            consumer_group_exclude=re.compile("-test$"),
        )
        async with CheckpointService(emu.endpoint, CREDS, region="cn-hangzhou") as svc:
            exporter = Exporter([service_source(svc, target)], allowed_lag=60, window=5, stop_after=300)
            runner, port = await start_server(exporter, "127.0.0.1", 0)
            try:
                async with aiohttp.ClientSession() as session:
                    yield Running(emu, exporter, f"http://127.0.0.1:{port}/metrics", session)
            finally:
                await runner.cleanup()


def labels(project: str, logstore: str, group: str, **more: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted(
            {"env": "test", "project": project, "logstore": logstore, "consumer_group": group, **more}.items()
        )
    )


async def test_seeded_lag_missing_project_and_filters(running: Running) -> None:
    await running.exporter.sweep_once()
    m = await running.scrape()
    lag = m["sls_consumer_group_lag_seconds"]
    assert lag[labels("lag-prod", "app-log", "cg-behind", shard="0")] == pytest.approx(120, abs=1)
    assert lag[labels("lag-prod", "app-log", "cg-behind", shard="1")] == pytest.approx(600, abs=1)
    assert lag[labels("lag-prod", "app-log", "cg-caught-up", shard="0")] == 0
    assert m["sls_consumer_group_max_lag_seconds"][
        labels("lag-prod", "app-log", "cg-behind")
    ] == pytest.approx(600, abs=1)
    assert m["sls_consumer_group_unassigned_shards"][labels("lag-prod", "app-log", "cg-caught-up")] == 2
    assert m["sls_consumer_group_unassigned_shards"][labels("lag-prod", "app-log", "cg-behind")] == 0
    assert m["sls_consumer_group_status"][labels("lag-prod", "app-log", "cg-caught-up")] == OK
    # The missing project: down and ERR; the others up.
    up = m["aiosls_exporter_up"]
    assert up[(("env", "test"), ("project", "no-such-project"))] == 0
    assert up[(("env", "test"), ("project", "lag-prod"))] == 1
    assert up[(("env", "test"), ("project", "lag-live"))] == 1
    assert m["sls_consumer_group_status"][labels("no-such-project", "", "")] == ERR
    assert (
        m["aiosls_exporter_errors_total"][
            (("env", "test"), ("error_code", "ProjectNotExist"), ("project", "no-such-project"))
        ]
        == 1
    )
    # Filters: no tmp-* logstore, no *-test group.
    groups = {dict(k)["consumer_group"] for k in m["sls_consumer_group_status"]}
    assert "cg-tmp" not in groups
    assert "cg-test" not in groups
    assert sum(m["aiosls_exporter_requests_total"].values()) > 0


async def test_a_deleted_group_disappears(running: Running) -> None:
    await running.exporter.sweep_once()
    assert labels("lag-prod", "app-log", "cg-doomed") in (await running.scrape())["sls_consumer_group_status"]
    async with CheckpointService(running.emulator.endpoint, CREDS, region="cn-hangzhou") as svc:
        await svc.delete_consumer_group("lag-prod", "app-log", "cg-doomed")
    await running.exporter.sweep_once()
    m = await running.scrape()
    for name, series in m.items():
        assert not any(dict(k).get("consumer_group") == "cg-doomed" for k in series), name


async def test_verdicts_of_simulated_consumers_after_a_few_sweeps(running: Running) -> None:
    for _ in range(5):
        await running.exporter.sweep_once()
        running.emulator.advance(10)
    await running.exporter.sweep_once()
    status = (await running.scrape())["sls_consumer_group_status"]
    assert status[labels("lag-live", "app-log", "cg-healthy")] == OK
    assert status[labels("lag-live", "app-log", "cg-stopped")] == STOP
    assert status[labels("lag-live", "app-log", "cg-stalled")] == STALL
