"""``aiosls lag`` against a loopback emulator seeded with lag keys: the values the seed implies,
verdicts, ``--problems``, exit codes, JSON fields, and ``--watch`` ended by SIGINT."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from test_cli import AK, SK, assert_no_secret, conn, creds, rows, run, subprocess_env, summary

from aiosls.emulator import Emulator

__all__ = ["creds"]  # the fixture, imported for these tests

OLD_US = 1_700_000_000_000_000  # 2023: a commit long ago
SEED: dict[str, Any] = {
    "projects": {
        "lag-project": {
            "logstores": {
                # Idle (no live writes): the lag stays exactly what the seed says.
                "app-log": {
                    "shards": 2,
                    "history_seconds": 3600,
                    "consumer_groups": {
                        "cg-ok": {"checkpoints": {"0": {"lag_seconds": 0}, "1": {"lag_seconds": 20}}},
                        "cg-behind": {
                            "checkpoints": {
                                "0": {"lag_seconds": 30, "consumer": "c-1"},
                                "1": {"lag_seconds": 300, "consumer": "c-1"},
                            }
                        },
                        "cg-stopped": {"checkpoints": {"0": {"lag_seconds": 600, "update_time": OLD_US}}},
                        "cg-never": {},
                    },
                },
                "web-log": {
                    "shards": 1,
                    "history_seconds": 60,
                    "consumer_groups": {"cg-web": {"checkpoints": {"0": {"lag_seconds": 0}}}},
                },
            }
        }
    }
}
LAG_HEADERS = ["PROJECT", "LOGSTORE", "GROUP", "LAG", "WORST SHARD", "LAST COMMIT", "STATUS", "REASON"]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(access_keys={AK: SK}, seed=SEED) as emulator:
        yield emulator


def by_group(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["consumer_group"]: d for d in docs}


async def test_lag_table_worst_first_with_the_seeded_lag(emu: Emulator, creds: None) -> None:
    r = await run("lag", "lag-project", *conn(emu))
    assert r.code == 1, r.err  # cg-behind and cg-stopped are not OK
    header = r.out.splitlines()[0]
    assert [h for h in LAG_HEADERS if h in header] == LAG_HEADERS
    table = rows(r.out)
    assert [(row[2], row[6]) for row in table] == [
        ("cg-stopped", "STOP"),
        ("cg-behind", "WARN"),
        ("cg-ok", "OK"),
        ("cg-web", "OK"),
        ("cg-never", "OK"),
    ]
    stopped, behind = table[0], table[1]
    assert stopped[3:5] == ["10m", "0"]  # 600 s, shard 0
    assert behind[3:5] == ["5m", "1"]  # 300 s, shard 1
    assert "no commit for" in stopped[7]
    assert "lag 5m > allowed 1m" in behind[7]
    assert summary(r.err) == {"total": 5, "ok": 5, "failed": 0, "retries": 0, "interrupted": None}


async def test_lag_json_carries_every_field_with_units(emu: Emulator, creds: None) -> None:
    r = await run("lag", "lag-project", "app-log", *conn(emu), "--format", "json")
    assert r.code == 1
    docs = by_group(json.loads(r.out))
    assert sorted(docs) == ["cg-behind", "cg-never", "cg-ok", "cg-stopped"]
    behind = docs["cg-behind"]
    assert behind["status"] == "warn"
    assert behind["lag_seconds"] == pytest.approx(300, abs=1)
    assert behind["worst_shard"] == 1
    assert behind["last_commit_age_seconds"] < 60
    shards = behind["checkpoints"]
    assert [s["shard"] for s in shards] == [0, 1]
    assert [s["lag_seconds"] for s in shards] == [pytest.approx(30, abs=1), pytest.approx(300, abs=1)]
    assert [s["status"] for s in shards] == ["ok", "warn"]
    for s in shards:
        assert {
            "checkpoint",
            "consumer",
            "update_time",
            "commit_age_seconds",
            "consumed_time",
            "latest_time",
            "lag_seconds",
            "expired",
            "caught_up",
            "status",
            "reason",
        } <= set(s)
        assert s["checkpoint"]  # the raw cursor
        latest = datetime.fromisoformat(s["latest_time"])
        consumed = datetime.fromisoformat(s["consumed_time"])
        assert (latest - consumed).total_seconds() == pytest.approx(s["lag_seconds"], abs=0.001)
        assert latest.tzinfo == UTC
    ok = docs["cg-ok"]
    assert (ok["status"], ok["lag_seconds"]) == ("ok", pytest.approx(20, abs=1))
    assert ok["checkpoints"][0]["caught_up"] is True
    assert ok["checkpoints"][0]["lag_seconds"] == 0.0
    assert docs["cg-stopped"]["status"] == "stop"
    assert docs["cg-stopped"]["lag_seconds"] == pytest.approx(600, abs=1)
    never = docs["cg-never"]
    assert (never["status"], never["lag_seconds"], never["last_commit_age_seconds"]) == ("ok", None, None)
    assert [s["lag_seconds"] for s in never["checkpoints"]] == [None, None]


async def test_lag_problems_and_ndjson(emu: Emulator, creds: None) -> None:
    r = await run("lag", "lag-project", *conn(emu), "--problems")
    assert [row[2] for row in rows(r.out)] == ["cg-stopped", "cg-behind"]
    assert r.code == 1
    r = await run("lag", "lag-project", *conn(emu), "--problems", "--format", "ndjson")
    assert sorted(json.loads(line)["consumer_group"] for line in r.out.splitlines()) == [
        "cg-behind",
        "cg-stopped",
    ]
    assert summary(r.err)["total"] == 5  # the summary still counts every group


async def test_lag_exit_0_when_every_group_is_ok(emu: Emulator, creds: None) -> None:
    r = await run("lag", "lag-project", "web-log", *conn(emu))
    assert r.code == 0, r.err
    assert [row[2] for row in rows(r.out)] == ["cg-web"]
    r = await run("lag", "lag-project", "app-log", "cg-ok", *conn(emu), "--format", "json")
    assert r.code == 0
    assert [d["consumer_group"] for d in json.loads(r.out)] == ["cg-ok"]


async def test_allowed_lag_moves_the_verdict(emu: Emulator, creds: None) -> None:
    r = await run("lag", "lag-project", "app-log", "cg-behind", *conn(emu), "--allowed-lag", "600")
    assert r.code == 0, r.out
    assert rows(r.out)[0][6] == "OK"


async def test_lag_of_a_missing_group_or_logstore_is_err_exit_1(emu: Emulator, creds: None) -> None:
    for argv in (("app-log", "cg-nope"), ("no-such-log",)):
        r = await run("lag", "lag-project", *argv, *conn(emu))
        assert r.code == 1
        assert rows(r.out)[0][6].startswith("ERR ")
        assert "Traceback" not in r.err
        assert summary(r.err)["failed"] == 1


async def test_lag_missing_project_is_exit_1(emu: Emulator, creds: None) -> None:
    r = await run("lag", "no-such-project", *conn(emu), "--format", "json")
    assert r.code == 1
    assert [d["status"] for d in json.loads(r.out)] == ["err"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lag", "lag-project", "--allowed-lag", "-1"], "--allowed-lag"),
        (["lag", "lag-project", "--watch", "0"], "--watch"),
        (["lag", "BAD_PROJECT"], "invalid project"),
    ],
)
async def test_lag_usage_errors_exit_2(emu: Emulator, creds: None, argv: list[str], message: str) -> None:
    r = await run(*argv, *conn(emu))
    assert r.code == 2
    assert message in r.err


async def test_watch_fills_the_window_and_sigint_ends_it_with_the_last_sweep(emu: Emulator) -> None:
    env = subprocess_env(ALIBABA_CLOUD_ACCESS_KEY_ID=AK, ALIBABA_CLOUD_ACCESS_KEY_SECRET=SK)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiosls",
        "lag",
        "lag-project",
        "app-log",
        *conn(emu),
        "--watch",
        "0.2",
        "--format",
        "ndjson",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        # Three sweeps of four groups: the window now holds three observations.
        seen = [json.loads(await asyncio.wait_for(proc.stdout.readline(), timeout=15)) for _ in range(12)]
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130
    text = err.decode()
    assert "Traceback" not in text
    for line in out.decode().splitlines():
        json.loads(line)  # nothing half-written
    assert {d["consumer_group"] for d in seen} == {"cg-ok", "cg-behind", "cg-stopped", "cg-never"}
    behind = [d["reason"] for d in seen if d["consumer_group"] == "cg-behind"]
    assert "sweeps" in behind[-1]  # judged over more than one observation
    assert "aiosls lag: sweep 2," in text  # each whole sweep printed (its lines and its note)
    assert_no_secret(out.decode(), text)


# --- scan: one observation's verdict -----------------------------------------------------------


async def test_scan_shows_lag_and_the_single_observation_verdict(emu: Emulator, creds: None) -> None:
    r = await run("scan", "lag-project", *conn(emu))
    assert r.code == 0  # every group was read: scan's exit code is about reading
    table = rows(r.out)
    assert [(row[2], row[5], row[-1]) for row in table][:2] == [
        ("cg-stopped", "10m", "STOP"),
        ("cg-behind", "5m", "WARN"),
    ]
    assert {row[-1] for row in table[2:]} == {"OK"}
    r = await run("scan", "lag-project", *conn(emu), "--problems", "--format", "json")
    docs = json.loads(r.out)
    assert [(d["consumer_group"], d["status"]) for d in docs] == [
        ("cg-stopped", "stop"),
        ("cg-behind", "warn"),
    ]
    assert docs[1]["lag_seconds"] == pytest.approx(300, abs=1)
    assert docs[1]["checkpoints"][1]["lag_seconds"] == pytest.approx(300, abs=1)


async def test_scan_stop_after_and_the_old_stale_after_spelling(emu: Emulator, creds: None) -> None:
    # cg-behind committed when the emulator started: with a stop-after shorter than that, its
    # unread data makes it STOP. --stale-after (scan's flag before lag) means the same now.
    for flag in ("--stop-after", "--stale-after"):
        r = await run("scan", "lag-project", *conn(emu), flag, "0.001", "--format", "json")
        assert by_group(json.loads(r.out))["cg-behind"]["status"] == "stop", r.err


async def test_scan_runs_one_discovery(emu: Emulator, creds: None) -> None:
    await run("scan", "lag-project", *conn(emu))
    counts = emu.counters.requests
    assert counts["ListLogStores"] == 1
    assert counts["ListConsumerGroup"] == 2
    # The lag goal (G + 2*L*S + G*S: 5 groups; 2 + 1 shards; 4 groups of 2 shards and 1 of 1),
    # plus the discovery's 3 listings.
    assert emu.counters.requests_total <= 5 + 2 * 3 + 9 + 3
