"""The ``aiosls`` command: in-process ``main()`` against a loopback emulator, plus real subprocesses
for what only a process shows (the console entry, streaming to a pipe, Ctrl-C)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from aiosls.cli import main
from aiosls.emulator import Emulator

AK = "LTAIcliTestKey"
SK = "cli-SECRET-7f3a9c1e-must-never-print"
WRONG_SK = "cli-WRONG-SECRET-b81d44-must-never-print"
CHECKPOINT = "MTUyNDE1NTM3OTM3MzkwODQ5Ng=="
AIOSLS = (sys.executable, "-m", "aiosls")  # the console entry, as `aiosls` runs it
ONE_LINE_ERROR = re.compile(r"aiosls: ConsumerGroupNotExist \(404, request [0-9A-F]{24}\): .*\n")

SEED: dict[str, Any] = {
    "projects": {
        "demo-project": {
            "logstores": {
                "app-log": {
                    "shards": 2,
                    "consumer_groups": {
                        "cg-main": {
                            "checkpoints": {
                                "0": {
                                    "checkpoint": CHECKPOINT,
                                    "consumer": "c-1",
                                    "update_time": 1524224984800922,
                                }
                            }
                        },
                        "cg-backup": {},
                    },
                },
                "web-log": {"shards": 1, "consumer_groups": {"cg-web": {}}},
            }
        },
        # 60 targets: enough for the progress line (every 50) and for a slow streamed scan.
        "big-project": {
            "logstores": {
                f"store-{i}": {"shards": 1, "consumer_groups": {f"cg-{g:02d}": {} for g in range(30)}}
                for i in range(2)
            }
        },
    }
}
DEMO_GROUPS = [
    ("demo-project", "app-log", "cg-main"),
    ("demo-project", "app-log", "cg-backup"),
    ("demo-project", "web-log", "cg-web"),
]


@attrs.frozen
class Run:
    code: int
    out: str
    err: str


class TtyStringIO(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(access_keys={AK: SK}, seed=SEED) as emulator:
        yield emulator


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
    monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
    monkeypatch.delenv("ALIBABA_CLOUD_SLS_ENDPOINT", raising=False)


def conn(emu: Emulator) -> list[str]:
    return ["--endpoint", emu.endpoint, "--region", "cn-hangzhou"]


async def run(
    *argv: str, stdin: str = "", stderr: io.StringIO | None = None, stdout: io.StringIO | None = None
) -> Run:
    """``main(argv)`` in a thread (it runs its own event loop) while the emulator serves on ours."""
    out = stdout if stdout is not None else io.StringIO()
    err = stderr if stderr is not None else io.StringIO()
    code = await asyncio.to_thread(main, list(argv), stdout=out, stderr=err, stdin=io.StringIO(stdin))
    return Run(code, out.getvalue(), err.getvalue())


def run_sync(*argv: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err, stdin=io.StringIO())
    return Run(code, out.getvalue(), err.getvalue())


def rows(table: str) -> list[list[str]]:
    """Data rows of a rendered table, split on runs of 2+ spaces (cells contain single spaces)."""
    lines = table.strip("\n").split("\n\n")[0].splitlines()
    return [re.split(r" {2,}", line.strip()) for line in lines[1:]]


SUMMARY = re.compile(
    r"(?P<total>[\d,]+) groups?, (?P<ok>[\d,]+) ok, (?P<failed>[\d,]+) failed, "
    r"(?P<retries>[\d,]+) retr(?:y|ies) absorbed, [\d.,]+ s"
    r"(?P<interrupted>, interrupted by \w+: partial results)?"
)


def summary(err: str) -> dict[str, Any]:
    """The summary line (the last stderr line) as numbers."""
    match = SUMMARY.fullmatch(err.splitlines()[-1])
    assert match, err
    return {
        **{k: int(match[k].replace(",", "")) for k in ("total", "ok", "failed", "retries")},
        "interrupted": match["interrupted"],
    }


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert SK not in text
        assert WRONG_SK not in text


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    return {**env, "PYTHONWARNINGS": "error", **extra}


# --- checkpoints --------------------------------------------------------------------------------


async def test_checkpoints_table(emu: Emulator, creds: None) -> None:
    r = await run("checkpoints", "demo-project", "app-log", "cg-main", *conn(emu))
    assert (r.code, r.err) == (0, "")
    lines = r.out.splitlines()
    assert lines[0].split() == ["SHARD", "UPDATED", "(UTC)", "AGE", "CONSUMER", "STATUS"]
    assert rows(r.out) == [
        ["0", "2018-04-20 11:49:44", rows(r.out)[0][2], "c-1", "STALE"],
        ["1", "-", "never", "-", "never committed"],
    ]
    assert re.fullmatch(r"\d+d\d\dh", rows(r.out)[0][2])  # years ago, in days and hours
    assert CHECKPOINT not in r.out  # times and ages, not cursors (JSON keeps them)


async def test_checkpoints_json_and_ndjson(emu: Emulator, creds: None) -> None:
    r = await run("checkpoints", "demo-project", "app-log", "cg-main", *conn(emu), "--format", "json")
    assert r.code == 0
    doc = json.loads(r.out)
    assert [(c["shard"], c["checkpoint"], c["committed"], c["consumer"], c["status"]) for c in doc] == [
        (0, CHECKPOINT, True, "c-1", "stale"),
        (1, "", False, "", "never_committed"),
    ]
    assert doc[0]["update_time"] == "2018-04-20T11:49:44.800922+00:00"
    assert doc[0]["update_time_us"] == 1524224984800922
    assert doc[0]["commit_age_seconds"] > 5 * 365 * 86400
    assert doc[1]["update_time"] is None
    assert doc[1]["commit_age_seconds"] is None

    r = await run(
        "checkpoints", "demo-project", "app-log", "cg-main", *conn(emu), "--format", "ndjson", "--shard", "1"
    )
    assert r.code == 0
    assert [json.loads(line) for line in r.out.splitlines()] == [
        {
            "shard": 1,
            "checkpoint": "",
            "committed": False,
            "consumer": "",
            "update_time": None,
            "update_time_us": 0,
            "commit_age_seconds": None,
            "status": "never_committed",
        }
    ]


async def test_checkpoints_stale_after_sets_the_shard_status(emu: Emulator, creds: None) -> None:
    emu.state.set_checkpoint("demo-project", "web-log", "cg-web", 0, "QQ==", consumer="c-9")
    argv = ["checkpoints", "demo-project", "web-log", "cg-web", *conn(emu)]
    assert rows((await run(*argv)).out)[0][-1] == "ok"  # committed just now
    r = await run(*argv, "--stale-after", "0", "--format", "json")
    assert json.loads(r.out)[0]["status"] == "stale"


async def test_checkpoints_shard_beyond_the_logstore_names_the_shard_count(
    emu: Emulator, creds: None
) -> None:
    r = await run("checkpoints", "demo-project", "app-log", "cg-main", *conn(emu), "--shard", "9")
    assert r.code == 2
    assert r.out == ""
    assert r.err == "aiosls: error: --shard 9: no such shard; app-log has 2 shards (0, 1)\n"


async def test_checkpoints_missing_group_is_one_line_exit_1(emu: Emulator, creds: None) -> None:
    r = await run("checkpoints", "demo-project", "app-log", "cg-nope", *conn(emu))
    assert r.code == 1
    assert r.out == ""
    assert ONE_LINE_ERROR.fullmatch(r.err), r.err
    assert "cg-nope" in r.err


async def test_debug_adds_the_traceback(emu: Emulator, creds: None) -> None:
    r = await run("--debug", "checkpoints", "demo-project", "app-log", "cg-nope", *conn(emu))
    assert r.code == 1
    assert "Traceback (most recent call last)" in r.err
    assert "NotFoundError" in r.err
    assert ONE_LINE_ERROR.fullmatch(r.err.splitlines(keepends=True)[-1])


# --- scan ---------------------------------------------------------------------------------------


async def test_scan_table_worst_first(emu: Emulator, creds: None) -> None:
    emu.state.set_checkpoint("demo-project", "web-log", "cg-web", 0, "QQ==", consumer="c-9")
    r = await run("scan", "demo-project", *conn(emu))
    assert r.code == 0
    header = r.out.splitlines()[0].split()
    assert header == [
        "PROJECT",
        "LOGSTORE",
        "GROUP",
        "SHARDS",
        "COMMITTED",
        "LAG",
        "LAST",
        "COMMIT",
        "(UTC)",
        "AGE",
        "CONSUMERS",
        "STATUS",
    ]
    table = rows(r.out)
    # Shards without data have nothing to read: every verdict is OK (the lag-seeded fleet of
    # test_cli_lag.py has the others). Then the largest lag, then the oldest commit, first.
    assert [(row[2], row[-1]) for row in table] == [("cg-main", "OK"), ("cg-web", "OK"), ("cg-backup", "OK")]
    by_group = {row[2]: row for row in table}
    assert by_group["cg-main"][3:7] == ["2", "1", "0s", "2018-04-20 11:49:44"]
    assert re.fullmatch(r"\d+d\d+h", by_group["cg-main"][7])
    assert by_group["cg-backup"][5:8] == ["-", "-", "never"]
    assert CHECKPOINT not in r.out
    assert summary(r.err) == {"total": 3, "ok": 3, "failed": 0, "retries": 0, "interrupted": None}
    assert len(r.err.splitlines()) == 1  # the summary line and nothing else


async def test_scan_problems_with_no_problem_is_an_empty_table(emu: Emulator, creds: None) -> None:
    # (test_cli_lag.py checks --problems on a fleet that has problems.)
    r = await run("scan", "demo-project", *conn(emu), "--problems")
    assert r.code == 0
    assert rows(r.out) == []
    assert summary(r.err)["total"] == 3  # the summary still counts every group
    for fmt in ("json", "ndjson"):
        r = await run("scan", "demo-project", *conn(emu), "--problems", "--format", fmt)
        assert r.out.strip() in ("[]", "")


async def test_scan_logstore_glob(emu: Emulator, creds: None) -> None:
    r = await run("scan", "demo-project", "--logstore", "web-*", *conn(emu), "--format", "json")
    assert r.code == 0
    assert [(d["logstore"], d["consumer_group"]) for d in json.loads(r.out)] == [("web-log", "cg-web")]


async def test_scan_json_round_trips_into_the_documented_shape(emu: Emulator, creds: None) -> None:
    r = await run("scan", "demo-project", *conn(emu), "--format", "json")
    assert r.code == 0
    doc = json.loads(r.out)
    assert isinstance(doc, list)
    assert sorted((d["project"], d["logstore"], d["consumer_group"]) for d in doc) == sorted(DEMO_GROUPS)
    for d in doc:
        assert set(d) == {
            "project",
            "logstore",
            "consumer_group",
            "shard",
            "ok",
            "status",
            "reason",
            "lag_seconds",
            "worst_shard",
            "as_of",
            "last_commit_time",
            "last_commit_age_seconds",
            "oldest_commit_age_seconds",
            "shards",
            "committed_shards",
            "consumers",
            "checkpoints",
        }
        assert d["ok"] is True
    assert [d["consumer_group"] for d in doc] == ["cg-main", "cg-backup", "cg-web"]  # largest lag, then name
    main_cg = doc[0]
    assert [c["checkpoint"] for c in main_cg["checkpoints"]] == [CHECKPOINT, ""]  # raw cursors
    assert (main_cg["status"], main_cg["lag_seconds"]) == ("ok", 0.0)  # nothing written: caught up
    assert main_cg["last_commit_time"] == "2018-04-20T11:49:44.800922+00:00"
    assert main_cg["last_commit_age_seconds"] > 5 * 365 * 86400
    assert main_cg["last_commit_age_seconds"] == main_cg["checkpoints"][0]["commit_age_seconds"]
    assert (main_cg["shards"], main_cg["committed_shards"], main_cg["consumers"]) == (2, 1, ["c-1"])
    assert doc[1]["status"] == "ok"
    assert doc[1]["last_commit_age_seconds"] is None


async def test_scan_ndjson_one_object_per_target(emu: Emulator, creds: None) -> None:
    r = await run("scan", "demo-project", "big-project", *conn(emu), "--format", "ndjson")
    assert r.code == 0
    assert summary(r.err)["total"] == 63
    lines = r.out.splitlines()
    assert len(lines) == 3 + 60
    objs = [json.loads(line) for line in lines]
    assert all(isinstance(o, dict) and o["ok"] for o in objs)
    assert len({(o["project"], o["logstore"], o["consumer_group"]) for o in objs}) == 63


@pytest.mark.parametrize("fmt", ["table", "json", "ndjson"])
async def test_scan_missing_project_exits_1_and_prints_the_rest(emu: Emulator, creds: None, fmt: str) -> None:
    r = await run("scan", "demo-project", "missing-project", *conn(emu), "--format", fmt)
    assert r.code == 1
    assert "Traceback" not in r.err
    assert summary(r.err) == {"total": 4, "ok": 3, "failed": 1, "retries": 0, "interrupted": None}
    if fmt == "table":
        table = rows(r.out)
        assert sorted(tuple(row[:3]) for row in table if row[0] == "demo-project") == sorted(DEMO_GROUPS)
        assert table[0] == ["missing-project", "*", "*", "-", "-", "-", "-", "-", "-", "ERR ProjectNotExist"]
        assert re.fullmatch(
            r"aiosls: missing-project: ProjectNotExist \(404, request [0-9A-F]{24}\): .*",
            r.err.splitlines()[0],
        ), r.err
        assert len(r.err.splitlines()) == 2
        return
    docs = json.loads(r.out) if fmt == "json" else [json.loads(line) for line in r.out.splitlines()]
    assert sum(d["ok"] for d in docs) == 3
    [failed] = [d for d in docs if not d["ok"]]
    assert failed["project"] == "missing-project"
    assert "checkpoints" not in failed
    assert failed["error"]["code"] == "ProjectNotExist"
    assert failed["status"] == "err"
    assert failed["error"]["status"] == 404
    assert re.fullmatch(r"[0-9A-F]{24}", failed["error"]["request_id"])


async def test_scan_a_logstore_that_cannot_be_listed_fails_alone(emu: Emulator, creds: None) -> None:
    # The first ListConsumerGroup (app-log) hangs past the call's total timeout; web-log is listed
    # and read as usual. (--concurrency 2: a call's total timeout includes its wait for a slot, so
    # with one slot the hung listing would time web-log's out too.)
    emu.faults.fail_next(1, "latency", api="ListConsumerGroup", delay=1.0)
    r = await run(
        "scan", "demo-project", *conn(emu), "--concurrency", "2", "--timeout", "0.3", "--format", "json"
    )
    assert r.code == 1
    docs = json.loads(r.out)
    assert [(d["logstore"], d["consumer_group"], d["ok"]) for d in docs if d["ok"]] == [
        ("web-log", "cg-web", True)
    ]
    [failed] = [d for d in docs if not d["ok"]]
    assert (failed["logstore"], failed["consumer_group"]) == ("app-log", "")
    assert emu.faults.injected["latency"] == 1


async def test_names_from_the_server_cannot_drive_the_terminal(emu: Emulator, creds: None) -> None:
    emu.state.set_checkpoint(
        "demo-project", "web-log", "cg-web", 0, "QQ==", consumer="evil\x1b[2J\x1b[31m\rx"
    )
    for argv in (["scan", "demo-project"], ["checkpoints", "demo-project", "web-log", "cg-web"]):
        r = await run(*argv, *conn(emu))
        assert r.code == 0
        assert "\x1b" not in r.out
        assert "\r" not in r.out
        assert "evil\\x1b[2J\\x1b[31m\\rx" in r.out
    r = await run("scan", "demo-project", *conn(emu), "--format", "json")
    assert {d["checkpoints"][0]["consumer"] for d in json.loads(r.out) if d["logstore"] == "web-log"} == {
        "evil\x1b[2J\x1b[31m\rx"  # JSON carries the exact value
    }


async def test_ndjson_into_a_closed_pipe_stops_quietly(emu: Emulator) -> None:
    # `aiosls scan ... --format ndjson | head -1`: the reader goes away after one line.
    emu.faults.configure(latency_ms=50)
    env = subprocess_env(ALIBABA_CLOUD_ACCESS_KEY_ID=AK, ALIBABA_CLOUD_ACCESS_KEY_SECRET=SK)
    argv = [*AIOSLS, "scan", "big-project", *conn(emu), "--format", "ndjson", "--concurrency", "2"]

    def head_1() -> tuple[str, int, str]:
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        ) as proc:
            assert proc.stdout is not None
            assert proc.stderr is not None
            first = proc.stdout.readline()
            proc.stdout.close()
            err = proc.stderr.read()
            return first, proc.wait(timeout=15), err

    first, code, err = await asyncio.to_thread(head_1)
    assert json.loads(first)["project"] == "big-project"
    assert code == 0
    assert err == ""


async def test_progress_is_silent_when_stderr_is_not_a_terminal(emu: Emulator, creds: None) -> None:
    r = await run("scan", "big-project", *conn(emu))
    assert r.code == 0
    assert len(rows(r.out)) == 60
    assert r.err.splitlines() == [
        "60 groups, 60 ok, 0 failed, 0 retries absorbed, " + r.err.split(", ")[-1].strip()
    ]
    assert "\x1b" not in r.out + r.err  # no colour, no cursor movement


async def test_progress_on_a_terminal(emu: Emulator, creds: None) -> None:
    # At least 30 rounds of 50 ms: the display (10 refreshes a second) draws many frames, and
    # the rate shows once a second has passed.
    emu.faults.configure(latency_ms=50)
    tty = TtyStringIO()
    r = await run("scan", "big-project", *conn(emu), "--format", "json", "--concurrency", "2", stderr=tty)
    assert r.code == 0
    assert len(json.loads(r.out)) == 60
    assert "discovering 1 project" in r.err
    assert re.search(r"reading 60 groups .*\d+/60", r.err)  # the total once discovery is done
    assert re.search(r"\d+/s", r.err)  # the rate
    assert "eta" in r.err
    # The display is erased (cursor up, erase line) before the summary line is printed.
    assert "\x1b[2K" in r.err
    assert summary(r.err.split("\x1b[2K")[-1].rstrip("\n").split("\r")[-1] + "\n")["total"] == 60


async def test_ndjson_to_a_terminal_gets_no_progress_display(emu: Emulator, creds: None) -> None:
    emu.faults.configure(latency_ms=50)
    r = await run(
        "scan", "big-project", *conn(emu), "--format", "ndjson", "--concurrency", "2",
        stdout=TtyStringIO(), stderr=TtyStringIO(),
    )  # fmt: skip
    assert r.code == 0
    assert len(r.out.splitlines()) == 60
    assert "reading" not in r.err
    assert summary(r.err)["total"] == 60


async def test_retries_are_quiet_by_default_and_shown_with_v(emu: Emulator, creds: None) -> None:
    argv = ["scan", "big-project", *conn(emu), "--format", "json"]
    emu.faults.fail_next(5, "throttle", api="GetCheckPoint")
    quiet = await run(*argv)
    assert quiet.code == 0
    assert len(quiet.err.splitlines()) == 1  # the summary line only
    assert summary(quiet.err)["retries"] == 5
    emu.faults.fail_next(5, "throttle", api="GetCheckPoint")
    verbose = await run(*argv, "-v")
    assert verbose.code == 0
    retry_lines = [line for line in verbose.err.splitlines() if "retrying GetCheckPoint" in line]
    assert len(retry_lines) == 5
    assert all("ReadQuotaExceed" in line for line in retry_lines)
    assert summary(verbose.err)["retries"] == 5
    emu.faults.fail_next(5, "throttle", api="GetCheckPoint")
    silent = await run(*argv, "-q")
    assert (silent.code, silent.err) == (0, "")
    assert len(json.loads(silent.out)) == 60


async def test_quiet_still_shows_errors(emu: Emulator, creds: None) -> None:
    r = await run("-q", "scan", "demo-project", "missing-project", *conn(emu))
    assert r.code == 1
    assert [line.split(":")[1].strip() for line in r.err.splitlines()] == ["missing-project"]
    r = await run("checkpoints", "demo-project", "app-log", "cg-nope", *conn(emu), "-q")
    assert r.code == 1
    assert ONE_LINE_ERROR.fullmatch(r.err)


async def test_debug_shows_the_library_debug_records(emu: Emulator, creds: None) -> None:
    emu.faults.fail_next(1, "server_busy", api="GetCheckPoint")
    r = await run("--debug", "checkpoints", "demo-project", "app-log", "cg-main", *conn(emu))
    assert r.code == 0
    assert re.search(r"^aiosls: DEBUG aiosls\.retry: retrying GetCheckPoint", r.err, re.M), r.err
    # A summary per request: operation, target, status, request id, duration.
    assert re.search(
        r"^aiosls: DEBUG aiosls: GetCheckPoint demo-project/app-log: 200 .*request [0-9A-F]{24}.* ms$",
        r.err,
        re.M,
    ), r.err
    quiet = await run("checkpoints", "demo-project", "app-log", "cg-main", *conn(emu))
    assert quiet.err == ""  # none of that without --debug


async def test_exit_3_when_every_target_fails_authentication(emu: Emulator, monkeypatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", WRONG_SK)
    for fmt in ("table", "json", "ndjson"):
        r = await run("scan", "demo-project", "big-project", *conn(emu), "--format", fmt)
        assert r.code == 3, r.err
        assert summary(r.err) == {"total": 2, "ok": 0, "failed": 2, "retries": 0, "interrupted": None}
        assert_no_secret(r.out, r.err)
    r = await run("checkpoints", "demo-project", "app-log", "cg-main", *conn(emu))
    assert r.code == 3
    assert "SignatureNotMatch" in r.err


async def test_exit_4_when_the_endpoint_cannot_be_reached(creds: None) -> None:
    # Nothing listens on a port we bound and closed: every connect is refused, so each call
    # fails after its retries; --timeout bounds that.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = ["--endpoint", f"http://127.0.0.1:{port}", "--region", "cn-hangzhou", "--timeout", "0.5"]
    r = await run("scan", "p-one", "p-two", *endpoint, "--format", "ndjson")
    assert r.code == 4, r.err
    assert [json.loads(line)["error"]["type"] for line in r.out.splitlines()] in (
        ["ConnectError", "ConnectError"],
        ["ConnectError", "ReadTimeout"],
        ["ReadTimeout", "ConnectError"],
        ["ReadTimeout", "ReadTimeout"],
    )
    r = await run("checkpoints", "p-one", "app-log", "cg-main", *endpoint)
    assert r.code == 4


async def test_exit_1_when_some_fail_whatever_the_error(emu: Emulator, creds: None) -> None:
    # A missing project beside a good one is a partial result; so is a missing project alone
    # (the endpoint answered, the key worked).
    assert (await run("scan", "missing-project", *conn(emu))).code == 1


async def test_region_comes_from_the_environment(emu: Emulator, creds: None, monkeypatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_REGION_ID", "cn-hangzhou")
    r = await run("checkpoints", "demo-project", "app-log", "cg-main", "--endpoint", emu.endpoint)
    assert r.code == 0, r.err
    monkeypatch.delenv("ALIBABA_CLOUD_REGION_ID")
    r = await run("checkpoints", "demo-project", "app-log", "cg-main", "--endpoint", emu.endpoint)
    assert r.code == 2
    assert "ALIBABA_CLOUD_REGION_ID" in r.err


# --- errors, usage, secrets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["checkpoints", "demo-project", "app-log", "cg-main", "--region", "cn-hangzhou"], "no endpoint"),
        (
            ["scan", "demo-project", "--endpoint", "http://127.0.0.1:9", "--format", "xml"],
            "invalid choice: 'xml'",
        ),
        (["demo", "--throttle-rate", "1.5"], "must be a share in 0..1"),
        (["demo", "--throttle-rate", "0.6", "--error-rate", "0.6"], "must not exceed 1"),
        (["scan", "demo-project", "--endpoint", "http://127.0.0.1:9", "--concurrency", "0"], "in 1..10000"),
        (["scan", "demo-project", "--concurrency", "\u0664"], "not an integer"),  # an Arabic-Indic 4
        (
            ["scan", "Bad_Project", "--endpoint", "http://127.0.0.1:9", "--region", "cn-hangzhou"],
            "Bad_Project",
        ),
        (
            ["checkpoints", "demo-project", "app-log", "cg-main", "--endpoint", "http://127.0.0.1:9"],
            "--region",
        ),
        (
            [
                "checkpoints",
                "demo-project",
                "app-log",
                "cg-main",
                "--endpoint",
                "http://x:9",
                "--shard",
                "-1",
            ],
            "shard",
        ),
        (["checkpoints", "demo-project", "app-log"], "required: group"),
        (["frobnicate"], "invalid choice"),
        ([], "required: COMMAND"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(creds: None, argv: list[str], message: str) -> None:
    r = run_sync(*argv)
    assert r.code == 2
    assert r.out == ""
    assert message in r.err
    assert "error" in r.err
    assert "Traceback" not in r.err


def test_no_credentials_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", raising=False)
    r = run_sync("scan", "demo-project", "--endpoint", "http://127.0.0.1:9", "--region", "cn-hangzhou")
    assert r.code == 2
    assert r.err == (
        "aiosls: error: no credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET\n"
    )


def test_help_and_version_exit_0() -> None:
    r = run_sync("--help")
    assert r.code == 0
    for command in ("demo", "checkpoints", "scan", "emulator"):
        assert command in r.out
    r = run_sync("--version")
    assert r.code == 0
    assert r.out.startswith("aiosls ")


@pytest.mark.parametrize("argv", [["emulator", "--help"], ["--debug", "emulator", "--help"]])
def test_emulator_is_mounted_in_the_main_command(argv: list[str]) -> None:
    r = run_sync(*argv)
    assert r.code == 0
    assert "--seed" in r.out
    assert "--throttle-rate" in r.out


async def test_no_secret_in_output_or_logs(
    emu: Emulator, creds: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    emu.faults.fail_next(1, "server_busy", api="GetCheckPoint")  # a retry gets logged
    runs = [
        await run("--debug", "checkpoints", "demo-project", "app-log", "cg-main", *conn(emu)),
        await run("--debug", "checkpoints", "demo-project", "app-log", "cg-nope", *conn(emu)),
        await run("--debug", "scan", "demo-project", "missing-project", *conn(emu), "--format", "ndjson"),
    ]
    assert [r.code for r in runs] == [0, 1, 1]
    assert "retrying GetCheckPoint" in runs[0].err  # the logs really went to stderr
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", WRONG_SK)
    bad = await run("--debug", "checkpoints", "demo-project", "app-log", "cg-main", *conn(emu))
    assert bad.code == 3  # authentication failed (for the only target)
    assert "SignatureNotMatch" in bad.err
    assert "Traceback" in bad.err
    for r in [*runs, bad]:
        assert_no_secret(r.out, r.err)
    assert_no_secret(caplog.text)
    assert "retrying GetCheckPoint" in caplog.text  # the records were captured, and hold no secret


async def test_access_key_secret_from_stdin(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", raising=False)
    argv = ["checkpoints", "demo-project", "app-log", "cg-main", *conn(emu), "--format", "json"]
    r = await run(*argv, "--access-key-id", AK, "--access-key-secret-stdin", stdin=SK + "\n")
    assert (r.code, r.err) == (0, "")
    assert json.loads(r.out)[0]["checkpoint"] == CHECKPOINT
    assert_no_secret(r.out)
    r = await run(*argv, "--access-key-id", AK, "--access-key-secret-stdin", stdin="")
    assert r.code == 2
    assert "secret line on stdin" in r.err


TYPED_SK = "TYPED-Secret-9d2e6b-must-never-print"  # a secret typed on the command line by mistake
NO_SERVER = ["--endpoint", "http://127.0.0.1:9", "--region", "cn-hangzhou"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # The flag takes no value: argparse used to answer "ignored explicit argument '<secret>'".
        (
            ["checkpoints", "p1x", "app-log", "cg", *NO_SERVER, f"--access-key-secret-stdin={TYPED_SK}"],
            "argument --access-key-secret-stdin: takes no value",
        ),
        (["--debug=" + TYPED_SK, "demo"], "argument --debug: takes no value"),
        (["-h=" + TYPED_SK], "argument -h/--help: takes no value"),
        # An option that does not exist: its name is shown, its value is not.
        (
            ["checkpoints", "p1x", "app-log", "cg", *NO_SERVER, f"--access-key-secret={TYPED_SK}"],
            "unrecognized arguments: --access-key-secret=<value not shown>",
        ),
        (
            ["scan", "p1x", *NO_SERVER, "--access-key-secret", TYPED_SK],
            "unrecognized arguments: --access-key-secret <value not shown>",
        ),
        # Before the command, the stray secret becomes the COMMAND: no "invalid choice: '<secret>'".
        (["--access-key-secret", TYPED_SK, "scan", "p1x"], "argument COMMAND: invalid choice (choose from"),
        # The emulator's --access-key ID:SECRET, through both ways in.
        (["emulator", "--access-key", f"{AK}:{TYPED_SK}", f"{AK}2:{TYPED_SK}"], "unrecognized arguments"),
        (["emulator", "--access-keys", f"{AK}:{TYPED_SK}"], "unrecognized arguments: --access-keys <value"),
        (["emulator", f"--access-keys={AK}:{TYPED_SK}"], "unrecognized arguments: --access-keys=<value"),
        (["emulator", f"--no-verify={AK}:{TYPED_SK}"], "argument --no-verify: takes no value"),
        (
            ["--debug", "emulator", "--access-key", f"{AK}:{TYPED_SK}", f"--no-verify={TYPED_SK}"],
            "argument --no-verify: takes no value",
        ),
        (["emulator", f"-h={AK}:{TYPED_SK}"], "argument -h/--help: takes no value"),
    ],
)
def test_usage_errors_never_repeat_a_typed_secret(argv: list[str], message: str) -> None:
    r = run_sync(*argv)
    assert r.code == 2
    assert r.out == ""
    assert TYPED_SK not in r.out + r.err
    assert message in r.err
    assert "Traceback" not in r.err


def test_usage_error_redaction_keeps_the_helpful_part() -> None:
    r = run_sync("scan", "p1x", *NO_SERVER, "--format", "xml")  # a choice, after its named option
    assert r.code == 2
    assert "argument --format: invalid choice: 'xml' (choose from 'table', 'json', 'ndjson')" in r.err
    r = run_sync("emulator", "--port", "notaport")
    assert r.code == 2
    assert "argument --port:" in r.err
    assert "notaport" in r.err


@pytest.mark.parametrize(
    ("argv", "unrecognized"),
    [
        # Prefixes of real options: with allow_abbrev they were taken as the option.
        (["checkpoints", "p1x", "app-log", "cg", *NO_SERVER, "--access-key-sec"], "--access-key-sec"),
        (["checkpoints", "p1x", "app-log", "cg", "--region", "x", "--end", "http://127.0.0.1:9"], "--end"),
        (["scan", "p1x", *NO_SERVER, "--concur", "2"], "--concur"),
        (["--deb", "demo"], "--deb"),
        # A missing seed file ends the old behaviour (a server until Ctrl-C) with another error.
        (["emulator", "--po", "0", "--seed", "/nonexistent/seed.json"], "--po"),
        (["emulator", "--access", f"{AK}:{TYPED_SK}", "--seed", "/nonexistent/seed.json"], "--access"),
    ],
)
def test_options_cannot_be_abbreviated(creds: None, argv: list[str], unrecognized: str) -> None:
    r = run_sync(*argv)
    assert r.code == 2
    assert f"error: unrecognized arguments: {unrecognized}" in r.err
    assert TYPED_SK not in r.err


def test_emulator_rates_over_1_is_a_usage_error() -> None:
    r = run_sync("emulator", "--throttle-rate", "0.6", "--error-rate", "0.6")
    assert r.code == 2
    assert "must not exceed 1" in r.err


# --- demo ---------------------------------------------------------------------------------------


def test_demo_defaults_sweep_95_live_groups_and_show_every_verdict() -> None:
    r = run_sync("demo")
    assert r.code == 0, r.err
    table = rows(r.out)
    assert len(table) == 90 + 5  # the realistic fleet, and orders-live's simulated consumers
    assert {row[0] for row in table} == {"demo-project-1", "demo-project-2", "demo-project-3"}
    assert all(row[3] == "4" for row in table)
    live = {row[2]: row[-1] for row in table if row[1] == "orders-live"}
    assert live == {
        "cg-healthy": "OK",
        "cg-slow": "WARN",
        "cg-stalled": "STALL",
        "cg-stopped": "STOP",
        "cg-rewinding": "REWIND",
    }
    statuses = [row[-1] for row in table]
    assert statuses == sorted(statuses, key=["REWIND", "STOP", "STALL", "WARN", "OK"].index)  # worst first
    lines = r.err.splitlines()
    assert lines[0].startswith("aiosls demo: emulator on http://127.0.0.1:")
    assert [line.split(":")[1] for line in lines[1:4]] == [" sweep 1", " sweep 2", " sweep 3"]
    assert re.fullmatch(
        r"aiosls demo: [\d,]+ requests in 4 sweeps \([\d,]+/s\); faults injected: none", lines[4]
    )
    assert summary(r.err)["total"] == 95
    assert len(lines) == 6


def test_demo_small_fleet_json() -> None:
    r = run_sync(
        "demo", "--projects", "1", "--logstores", "2", "--groups", "2", "--shards", "2", "--format", "json"
    )
    assert r.code == 0
    docs = json.loads(r.out)
    assert len(docs) == 4 + 5
    assert all(d["ok"] and len(d["checkpoints"]) == 2 for d in docs)
    slow = next(d for d in docs if d["consumer_group"] == "cg-slow")
    # Seeded 120 s behind, consuming at half the write rate for 45 simulated seconds.
    assert slow["lag_seconds"] == pytest.approx(120 + 45 / 2, abs=3)
    assert summary(r.err) == {
        "total": 9,
        "ok": 9,
        "failed": 0,
        "retries": 0,
        "interrupted": None,
    }


def test_demo_absorbs_throttling() -> None:
    r = run_sync(
        "demo",
        "--projects",
        "1",
        "--logstores",
        "2",
        "--groups",
        "2",
        "--shards",
        "2",
        "--throttle-rate",
        "0.3",
    )
    assert r.code == 0, r.err
    assert len(rows(r.out)) == 4 + 5
    match = re.search(r"faults injected: throttle=(\d+)$", r.err, re.M)
    assert match, r.err
    assert int(match.group(1)) >= 1
    # Quiet: no line per retry, but the summary counts every one of them.
    assert "retrying" not in r.err
    assert summary(r.err)["retries"] == int(match.group(1))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--shards", "300"], "argument --shards: must be an integer in 1..256"),
        (["--shards", "0"], "argument --shards: must be an integer in 1..256"),
        (["--groups", "31"], "argument --groups: must be an integer in 1..30"),
        (["--groups", "0"], "argument --groups: must be an integer in 1..30"),
        (["--projects", "1001"], "argument --projects: must be an integer in 1..1000"),
        (["--logstores", "1_000"], "argument --logstores: not an integer"),
        (["--latency-ms", "-5"], "argument --latency-ms: must be a number of milliseconds"),
        (["--latency-ms", "inf"], "argument --latency-ms: must be a number of milliseconds"),
        (["--latency-ms=-inf"], "argument --latency-ms: must be a number of milliseconds"),
        (["--latency-ms", "nan"], "argument --latency-ms: must be a number of milliseconds"),
        (["--latency-ms", "1e300"], "argument --latency-ms: must be a number of milliseconds"),
    ],
)
def test_demo_bad_option_is_a_usage_error(argv: list[str], message: str) -> None:
    # The console entry in a process with a timeout: some of these (nan, inf) used to start the
    # demo and then wait forever in asyncio.sleep.
    done = subprocess.run(
        [*AIOSLS, "demo", "--projects", "1", "--logstores", "1", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        env=subprocess_env(),
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert message in done.stderr.splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert "emulator on" not in done.stderr  # rejected before anything started


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # Too big a fleet, though every option is in range.
        (
            ["--projects", "1000", "--logstores", "100", "--groups", "2"],
            "200000 consumer groups; the demo allows 100000",
        ),
        (["--projects", "100", "--logstores", "100", "--groups", "10", "--shards", "256"], "checkpoints"),
        # Rejected by the emulator's FaultConfig while the demo builds it (a ValueError).
        (["--throttle-rate", "0.6", "--error-rate", "0.6"], "must not exceed 1"),
    ],
)
def test_demo_configuration_error_is_one_line_exit_2(argv: list[str], message: str) -> None:
    # In a process with a timeout: a fleet that big used to be built (and scanned) in memory.
    done = subprocess.run(
        [*AIOSLS, "demo", *argv], capture_output=True, text=True, timeout=30, env=subprocess_env()
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert re.fullmatch(r"aiosls: error: [^\n]+\n", done.stderr), done.stderr
    assert message in done.stderr


def test_demo_limits_are_inclusive() -> None:
    r = run_sync(
        "demo", "--projects", "1", "--logstores", "1", "--groups", "30", "--shards", "256", "--format", "json"
    )
    assert r.code == 0, r.err
    docs = json.loads(r.out)
    assert len(docs) == 30 + 5
    assert all(d["ok"] and len(d["checkpoints"]) == 256 for d in docs if d["logstore"] != "orders-live")


# --- real processes -----------------------------------------------------------------------------


def test_console_entry_emulator_then_checkpoints_and_scan(tmp_path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SEED))
    emulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosls",
            "emulator",
            "--port",
            "0",
            "--seed",
            str(seed),
            "--access-key",
            f"{AK}:{SK}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        assert emulator.stdout is not None
        match = re.fullmatch(
            r"aiosls emulator listening on (http://127\.0\.0\.1:\d+)\n", emulator.stdout.readline()
        )
        assert match
        env = subprocess_env(
            ALIBABA_CLOUD_ACCESS_KEY_ID=AK,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET=SK,
            ALIBABA_CLOUD_SLS_ENDPOINT=match[1],
        )
        done = subprocess.run(
            [
                *AIOSLS,
                "checkpoints",
                "demo-project",
                "app-log",
                "cg-main",
                "--region",
                "cn-hangzhou",
                "--format",
                "json",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)[0]["checkpoint"] == CHECKPOINT
        missing = subprocess.run(
            [*AIOSLS, "checkpoints", "demo-project", "app-log", "cg-nope", "--region", "cn-hangzhou"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert missing.returncode == 1
        assert missing.stdout == ""
        assert ONE_LINE_ERROR.fullmatch(missing.stderr), missing.stderr
    finally:
        emulator.send_signal(signal.SIGINT)
        out, err = emulator.communicate(timeout=10)
    assert emulator.returncode == 0, err
    assert_no_secret(out, err, done.stdout, done.stderr, missing.stderr)


async def _start_slow_scan(emu: Emulator) -> asyncio.subprocess.Process:
    emu.faults.configure(latency_ms=150)
    env = subprocess_env(ALIBABA_CLOUD_ACCESS_KEY_ID=AK, ALIBABA_CLOUD_ACCESS_KEY_SECRET=SK)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiosls",
        "scan",
        "big-project",
        *conn(emu),
        "--format",
        "ndjson",
        "--concurrency",
        "2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def test_ndjson_streams_and_ctrl_c_exits_130(emu: Emulator) -> None:
    # 60 targets at 150 ms each, two at a time: several seconds of scanning, so the first
    # line must arrive while the process is still running; then Ctrl-C.
    proc = await _start_slow_scan(emu)
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), timeout=15)
        assert proc.returncode is None  # streamed, not printed at the end
        obj = json.loads(first)
        assert obj["project"] == "big-project"
        assert obj["ok"] is True
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130
    text = err.decode()
    assert "Traceback" not in text
    lines = [first.decode(), *out.decode().splitlines()]
    assert 1 <= len(lines) < 60
    for line in lines:
        json.loads(line)  # nothing half-written
    counted = summary(text)
    assert counted["interrupted"] == ", interrupted by SIGINT: partial results"
    assert counted["total"] == len(lines)
    assert_no_secret(out.decode(), text)


def test_demo_ctrl_c_exits_130() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiosls", "demo", "--latency-ms", "5000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith("aiosls demo: emulator on http://127.0.0.1:")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert rows(out) == []  # the table of what was read: nothing yet
    assert summary(err)["interrupted"] == ", interrupted by SIGINT: partial results"
    assert len(err.splitlines()) == 2  # the demo's requests and faults, then the summary
