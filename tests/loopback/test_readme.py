"""Every example in README.md runs as printed, against a real `aiosls emulator` process."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BLOCKS: list[tuple[str, str]] = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)
PYTHON = [code for lang, code in BLOCKS if lang == "python"]
SHELL = [code for lang, code in BLOCKS if lang == "sh"]
README_PORT = "18080"


def _env(endpoint: str) -> dict[str, str]:
    env = dict(os.environ)
    # The console script lives next to this interpreter (a venv or nox session).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        ALIBABA_CLOUD_ACCESS_KEY_ID="demo-key",
        ALIBABA_CLOUD_ACCESS_KEY_SECRET="demo-secret",
        ALIBABA_CLOUD_SLS_ENDPOINT=endpoint,
    )
    env.pop("ALIBABA_CLOUD_SECURITY_TOKEN", None)
    return env


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    """The README's own emulator command, on a free port instead of 18080."""
    start = next(code for code in SHELL if code.startswith("aiosls emulator"))
    argv = shlex.split(start.strip().replace(f"--port {README_PORT}", "--port 0"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiosls", *argv[1:]],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"aiosls emulator listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        yield match.group(1)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_readme_has_the_examples_this_file_runs() -> None:
    assert len(PYTHON) == 5
    assert any("aiosls demo" in code for code in SHELL)
    assert any(code.startswith("export ALIBABA_CLOUD_ACCESS_KEY_ID") for code in SHELL)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = next(code.strip() for code in SHELL if "nox" in code)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


@pytest.mark.parametrize("index", range(4))
def test_python_examples_run(emulator: str, index: int) -> None:
    code = [c for c in PYTHON if "def test_" not in c][index]
    done = subprocess.run(
        [sys.executable, "-c", code], env=_env(emulator), cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "MTUyNDE1NTM3OTM3MzkwODQ5Ng==" in done.stdout or "demo-project/app-log/cg-main" in done.stdout
    assert "demo-secret" not in done.stdout + done.stderr


def test_python_examples_show_expected_results(emulator: str) -> None:
    quickstart = PYTHON[0]
    out = subprocess.run(
        [sys.executable, "-c", quickstart], env=_env(emulator), capture_output=True, text=True, timeout=60
    ).stdout.splitlines()
    assert out[0].startswith("0 MTUyNDE1NTM3OTM3MzkwODQ5Ng== 2018-04-20 11:49:44.800922+00:00 c-1")
    assert out[2].startswith("2 (never committed)")
    fan_out = subprocess.run(
        [sys.executable, "-c", PYTHON[1]], env=_env(emulator), capture_output=True, text=True, timeout=60
    ).stdout
    assert "demo-project/app-log/cg-gone failed: ConsumerGroupNotExist (404, request " in fan_out
    assert "demo-project/web-log/cg-main ok" in fan_out


def test_emulator_fixture_example_passes_under_pytest(tmp_path: Path) -> None:
    code = next(c for c in PYTHON if "def test_" in c)
    (tmp_path / "test_example.py").write_text(code)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "-W",
            "error",
            str(tmp_path / "test_example.py"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_cli_examples_run_as_printed(emulator: str) -> None:
    block = next(code for code in SHELL if code.startswith("export ALIBABA_CLOUD_ACCESS_KEY_ID"))
    port = emulator.rsplit(":", 1)[1]
    script = "set -euo pipefail\n" + block.replace(README_PORT, port)
    env = _env(emulator)
    for key in (
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SLS_ENDPOINT",
    ):
        env.pop(key)  # the block exports them itself
    done = subprocess.run(
        ["bash", "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "SHARD" in out
    assert "MTUyNDE1NTM3OTM3MzkwODQ5Ng==" in out
    json_line = next(line for line in out.splitlines() if line.startswith("[{"))
    assert json.loads(json_line) == [
        {
            "shard": 1,
            "checkpoint": "MTUyNDE1NTM3OTM3MzkwODUwMA==",
            "committed": True,
            "consumer": "c-2",
            "update_time": "2018-04-20T11:49:50+00:00",
            "update_time_us": 1524224990000000,
        }
    ]
    ndjson = [json.loads(line) for line in out.splitlines() if line.startswith('{"project"')]
    assert sorted((r["logstore"], r["consumer_group"]) for r in ndjson) == [
        ("app-log", "cg-audit"),
        ("app-log", "cg-main"),
        ("web-log", "cg-main"),
    ]
    assert "demo-secret" not in out + done.stderr
