"""The emulator command, run as a real subprocess (``python -m aiosls.emulator``)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import yarl

from aiosls import _sansio
from aiosls.credentials import Credentials
from aiosls.emulator import Emulator
from aiosls.emulator import cli as emulator_cli
from aiosls.emulator.cli import add_arguments
from aiosls.endpoint import parse_endpoint
from aiosls.models import MAX_EPOCH_VALUE

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


def _seed_with_checkpoint(shard: str, **entry: Any) -> dict[str, Any]:
    cp = {"checkpoint": "MTA=", **entry}
    group = {"checkpoints": {shard: cp}}
    return {
        "projects": {
            "demo-project": {"logstores": {"app-log": {"shards": 2, "consumer_groups": {"cg": group}}}}
        }
    }


def _start_python(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


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
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),  # was a RecursionError traceback
        ("[1" + "0" * 5000 + "]", "not valid JSON"),  # int() digit limit: a ValueError
        (json.dumps(_seed_with_checkpoint("\u00b2")), "checkpoints.\u00b2"),  # was a ValueError traceback
        (json.dumps(_seed_with_checkpoint("\u0661")), "checkpoints.\u0661"),  # was accepted as shard 1
        (json.dumps(_seed_with_checkpoint("0", update_time=MAX_EPOCH_VALUE + 1)), "update_time"),
    ],
)
def test_cli_rejects_bad_seed_files_clearly(tmp_path, seed, fragment) -> None:
    path = tmp_path / "seed.json"
    path.write_text(seed, encoding="utf-8")
    proc = _start("--seed", str(path))
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 2, err
    assert out == ""
    assert fragment in err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--error-rate", "1.5"], "rate"),
        (["--error-rate", "nan"], "finite"),
        (["--port", "70000"], "0..65535"),  # was an OverflowError traceback, exit 1
        (["--port", "65536"], "0..65535"),
        (["--port", "-1"], "0..65535"),
        (["--port", "\u0661"], "0..65535"),  # int() would take the Arabic-Indic digit
        (["--latency-ms", "nan"], "finite"),  # was accepted, and hung every request
        (["--latency-ms", "inf"], "finite"),
        (["--latency-ms", "-5"], ">= 0"),
        (["--fault-seed", "\u0661"], "integer"),
    ],
)
def test_cli_rejects_bad_options(args, fragment) -> None:
    proc = _start(*args)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 2, err
    assert out == ""
    assert fragment in err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("aiosls emulator: error: argument "), err


def test_cli_takes_no_option_abbreviations() -> None:
    proc = _start("--thr", "0.5")
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 2, err
    assert out == ""
    assert err.splitlines()[-1] == "aiosls emulator: error: unrecognized arguments: --thr 0.5", err


def _parsed(**overrides: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    for name, value in overrides.items():
        setattr(args, name, value)
    return args


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"port": 70000}, "cannot listen on 127.0.0.1:70000"),  # bind()'s OverflowError
        ({"latency_ms": float("nan")}, "latency_ms"),  # FaultConfig's ValueError
    ],
)
def test_run_with_unchecked_args_exits_2_without_traceback(capsys, overrides, fragment) -> None:
    # run() takes args from any parser built with add_arguments (the `aiosls` command's too), so
    # it must not depend on the argparse types having run.
    assert emulator_cli.run(_parsed(**overrides)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert fragment in captured.err
    assert len(captured.err.splitlines()) == 1, captured.err


async def test_deep_json_without_orjson_is_400_not_500(tmp_path) -> None:
    # stdlib json (the fallback without the orjson extra) raises RecursionError, not ValueError.
    code = (
        "import sys; sys.modules['orjson'] = None\n"
        "from aiosls import _serde\n"
        "assert _serde.loads.__module__ == 'json', _serde.loads\n"
        "from aiosls.emulator.cli import main\n"
        "sys.exit(main(['--port', '0', '--no-verify', '--seed', sys.argv[1]]))\n"
    )
    seed = {
        "projects": {"demo-project": {"logstores": {"app-log": {"shards": 2, "consumer_groups": {"cg": {}}}}}}
    }
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed))
    proc = _start_python(code, str(path))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().rstrip("\n")
        assert line.startswith("aiosls emulator listening on http://127.0.0.1:"), line
        endpoint = line.rsplit(" ", 1)[1]
        deep = b"[" * 100_000 + b"]" * 100_000
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{endpoint}/logstores/app-log/consumergroups/cg?type=heartbeat&consumer=c",
                data=deep,
                headers={"Host": "demo-project.127.0.0.1"},
            ) as r,
        ):
            status, data = r.status, await r.json(content_type=None)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert (status, data["errorCode"]) == (400, "PostBodyInvalid")
    assert "emulator bug" not in err
    assert proc.returncode == 0, err


async def test_cli_region_is_enforced_and_the_key_message_is_true(tmp_path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SEED))
    proc = _start("--port", "0", "--seed", str(seed), "--region", "cn-hangzhou")
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().rstrip("\n").rsplit(" ", 1)[1]
        op = _sansio.get_checkpoint("demo-project", "app-log", "cg-main")
        statuses = {}
        async with aiohttp.ClientSession() as session:
            for region in ("cn-hangzhou", "cn-shanghai"):
                req = _sansio.build_request(
                    op,
                    endpoint=parse_endpoint(endpoint),
                    credentials=Credentials("SEEDKEY", "seed-secret"),
                    now=datetime.now(UTC),
                    signature_version="v4",
                    region=region,
                    user_agent="t",
                )
                async with session.get(yarl.URL(req.url, encoded=True), headers=dict(req.headers)) as r:
                    statuses[region] = (r.status, (await r.json())["errorCode"] if r.status != 200 else "")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert statuses == {"cn-hangzhou": (200, ""), "cn-shanghai": (401, "SignatureNotMatch")}
    # The seed's key is accepted (and said so), next to the demo key; no "no --access-key" claim.
    assert "SEEDKEY" in err
    assert "LTAIaioslsEmulatorDemo is the public demo key" in err
    assert "region cn-hangzhou" in err
    assert "no --access-key" not in err
    assert "seed-secret" not in err


def test_cli_key_message_names_only_the_given_keys_and_no_verify() -> None:
    only = Emulator(access_keys={"K1": "s1"}, seed=SEED, tick_interval=None)
    assert emulator_cli.key_message(only) == "accepting access key ids K1, SEEDKEY; any V4 region"
    unchecked = Emulator(verify_signatures=False, tick_interval=None)
    assert "not checked" in emulator_cli.key_message(unchecked)


@pytest.mark.parametrize("region", ["", "CN_HANGZHOU", "cn-hangzhou\n", "x" * 70])
def test_cli_rejects_a_bad_region(region) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--region", region])
