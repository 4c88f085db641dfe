"""SIGINT and SIGTERM in the middle of a scan, as an operator (or ``timeout``) sends them: real
processes only. The emulator runs in its own process, slowed by ``--latency-ms``; the scan's
stderr is a pseudo-terminal, so the live progress display runs, and the signal is sent once it
shows a group read (NDJSON: once the first line arrives)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AK, SK = "LTAIsignalTestKey", "signal-SECRET-5e1f-must-never-print"
SEED = {
    "projects": {
        "big-project": {
            "logstores": {
                f"store-{i}": {"shards": 1, "consumer_groups": {f"cg-{g:02d}": {} for g in range(30)}}
                for i in range(2)
            }
        }
    }
}
SUMMARY = re.compile(
    r"(?P<total>\d+) groups?, (?P<ok>\d+) ok, 0 failed, \d+ retr(?:y|ies) absorbed, [\d.]+ s, "
    r"interrupted by (?P<signal>SIG\w+): partial results"
)
READ_SOME = re.compile(rb"reading \d+\+? groups .*?\b([1-9]\d*)/\d+")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "error", **extra}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``aiosls emulator`` in its own process: 60 groups at 100 ms a request."""
    seed = tmp_path_factory.mktemp("seed") / "seed.json"
    seed.write_text(json.dumps(SEED))
    argv = ["--port", "0", "--seed", str(seed), "--access-key", f"{AK}:{SK}", "--latency-ms", "100"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiosls", "emulator", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert proc.stdout is not None
        match = re.fullmatch(
            r"aiosls emulator listening on (http://127\.0\.0\.1:\d+)\n", proc.stdout.readline()
        )
        assert match
        yield match[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def _scan(endpoint: str, fmt: str, **popen: object) -> subprocess.Popen[bytes]:
    argv = ["scan", "big-project", "--endpoint", endpoint, "--format", fmt, "--concurrency", "2"]
    env = _env(
        ALIBABA_CLOUD_ACCESS_KEY_ID=AK,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=SK,
        ALIBABA_CLOUD_REGION_ID="cn-hangzhou",
        TERM="xterm-256color",
        COLUMNS="160",
    )
    # Unbuffered: a readline() must not take more than its line from the pipe.
    return subprocess.Popen([sys.executable, "-m", "aiosls", *argv], cwd=ROOT, env=env, bufsize=0, **popen)  # type: ignore[call-overload, no-any-return]


def _read_until(fd: int, pattern: re.Pattern[bytes], seen: bytearray, timeout: float = 20.0) -> None:
    """Read the terminal until ``pattern`` shows up (or fail after ``timeout`` seconds)."""
    while pattern.search(seen) is None:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"no {pattern.pattern!r} on the terminal: {bytes(seen)!r}"
        seen += os.read(fd, 65536)


def _drain(fd: int, seen: bytearray) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the process closed the terminal
            return
        if not chunk:
            return
        seen += chunk


def _parse(fmt: str, out: str) -> int:
    """The number of groups in a well-formed output of ``fmt``."""
    if fmt == "json":
        doc = json.loads(out)
        assert all(d["ok"] and d["status"] for d in doc)
        return len(doc)
    lines = out.splitlines()
    if fmt == "ndjson":
        return len([json.loads(line) for line in lines])
    assert lines[0].split()[:3] == ["PROJECT", "LOGSTORE", "GROUP"]
    assert all(
        re.split(r" {2,}", line)[:3]
        in (["big-project", f"store-{i}", f"cg-{g:02d}"] for i in range(2) for g in range(30))
        for line in lines[1:]
    ), out
    return len(lines) - 1


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_signal_on_a_terminal_prints_what_was_read(endpoint: str, fmt: str, signum: signal.Signals) -> None:
    master, slave = pty.openpty()
    proc = _scan(endpoint, fmt, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    terminal = bytearray()
    try:
        _read_until(master, READ_SOME, terminal)  # the progress display shows groups read
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=20)
        _drain(master, terminal)
    finally:
        os.close(master)
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum
    read = _parse(fmt, out.decode())
    assert 1 <= read < 60
    text = terminal.decode()
    # The display was erased; what follows it is the summary line alone.
    assert "\x1b[2K" in text
    after = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text.rsplit("\x1b[2K", 1)[1]).replace("\r", "")
    match = SUMMARY.fullmatch(after.strip())
    assert match, repr(after)
    assert (int(match["total"]), match["signal"]) == (read, signum.name)
    assert "Traceback" not in text
    assert SK not in text + out.decode()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_ndjson_keeps_every_line_whole(endpoint: str, signum: signal.Signals) -> None:
    proc = _scan(endpoint, "ndjson", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert json.loads(first)["project"] == "big-project"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum
    read = _parse("ndjson", (first + out).decode())
    assert 1 <= read < 60
    match = SUMMARY.fullmatch(err.decode().strip())
    assert match, err
    assert (int(match["total"]), match["signal"]) == (read, signum.name)


def test_a_signal_before_any_result_still_prints_a_well_formed_document(endpoint: str) -> None:
    # `timeout 5 aiosls scan ... --format json` on a slow discovery: an empty list, not nothing.
    master, slave = pty.openpty()
    proc = _scan(endpoint, "json", stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    terminal = bytearray()
    try:
        _read_until(master, re.compile(rb"discovering 1 project"), terminal)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        _drain(master, terminal)
    finally:
        os.close(master)
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143
    assert isinstance(json.loads(out), list)
    assert "interrupted by SIGTERM" in terminal.decode()
