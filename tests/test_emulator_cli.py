"""The emulator command, run as a real subprocess (``python -m aiosls.emulator``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime

import aiohttp
import pytest
import yarl

from aiosls import _sansio
from aiosls.credentials import Credentials
from aiosls.endpoint import parse_endpoint

SEED = {
    "access_keys": {"SEEDKEY": "seed-secret"},
    "projects": {
        "demo-project": {
            "logstores": {
                "app-log": {
                    "shards": 4,
                    "consumer_groups": {
                        "cg-main": {
                            "timeout": 60,
                            "order": False,
                            "checkpoints": {
                                "0": {
                                    "checkpoint": "MTUyNDE1NTM3OTM3MzkwODQ5Ng==",
                                    "consumer": "c-1",
                                    "update_time": 1524224984800922,
                                }
                            },
                        }
                    },
                }
            }
        }
    },
}


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aiosls.emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


async def test_cli_serves_the_seed_and_exits_0_on_sigterm(tmp_path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SEED))
    proc = _start("--port", "0", "--seed", str(seed), "--access-key", "CLIKEY:cli-secret")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().rstrip("\n")
        assert line.startswith("aiosls emulator listening on http://127.0.0.1:")
        endpoint = line.rsplit(" ", 1)[1]
        op = _sansio.get_checkpoint("demo-project", "app-log", "cg-main")
        async with aiohttp.ClientSession() as session:
            for key, secret in (("CLIKEY", "cli-secret"), ("SEEDKEY", "seed-secret")):
                req = _sansio.build_request(
                    op,
                    endpoint=parse_endpoint(endpoint),
                    credentials=Credentials(key, secret),
                    now=datetime.now(UTC),
                    signature_version="v1",
                    region=None,
                    user_agent="t",
                )
                async with session.get(yarl.URL(req.url, encoded=True), headers=dict(req.headers)) as r:
                    assert r.status == 200
                    data = await r.json()
        assert data[0] == {
            "shard": 0,
            "checkpoint": "MTUyNDE1NTM3OTM3MzkwODQ5Ng==",
            "updateTime": 1524224984800922,
            "consumer": "c-1",
        }
        assert [d["checkpoint"] for d in data[1:]] == ["", "", ""]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "cli-secret" not in out + err
    assert "seed-secret" not in out + err


def test_cli_without_keys_uses_the_demo_key_and_stops_on_sigint() -> None:
    proc = _start("--port", "0")
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("aiosls emulator listening on http://127.0.0.1:")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "demo key" in err


@pytest.mark.parametrize(
    ("seed", "fragment"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"projects": {"Bad_Name": {}}}), "projects.Bad_Name"),
        (
            json.dumps({"projects": {"demo-project": {"logstores": {"app-log": {"shards": 0}}}}}),
            "projects.demo-project.logstores.app-log.shards",
        ),
    ],
)
def test_cli_rejects_bad_seed_files_clearly(tmp_path, seed, fragment) -> None:
    path = tmp_path / "seed.json"
    path.write_text(seed)
    proc = _start("--seed", str(path))
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 2
    assert out == ""
    assert fragment in err
    assert "Traceback" not in err


def test_cli_rejects_bad_options() -> None:
    proc = _start("--error-rate", "1.5")
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 2
    assert "rate" in err
