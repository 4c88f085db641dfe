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
TOML = [code for lang, code in BLOCKS if lang == "toml"]
README_PORT = "18080"


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Where the ``aiosls`` console script is: next to this interpreter once installed (a nox
    session); from a checkout, a stand-in that runs ``python -m aiosls`` from this tree."""
    installed = Path(sys.executable).parent
    if (installed / "aiosls").exists():
        return str(installed)
    shim = tmp_path_factory.mktemp("bin")
    script = shim / "aiosls"
    script.write_text(
        f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)} -m aiosls "$@"\n'
    )
    script.chmod(0o755)
    return str(shim)


def _env(endpoint: str, bin_dir: str = "") -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir or Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)  # the tree under test, installed or not
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
    assert len(TOML) == 1
    assert any("aiosls demo" in code for code in SHELL)
    assert "pip install '.[cli]' && aiosls demo" in SHELL[0]  # the first command installs the extra
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
    # The README's configuration and test file, as a user's project; every warning an error
    # (a deprecation warning fails it). `-p aiosls.testing` stands in for the entry point of an
    # install (and is a no-op when aiosls is installed).
    code = next(c for c in PYTHON if "def test_" in c)
    (tmp_path / "pyproject.toml").write_text(TOML[0])
    (tmp_path / "test_example.py").write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "aiosls.testing",
            "-W",
            "error",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_cli_examples_run_as_printed(emulator: str, bin_dir: str) -> None:
    block = next(code for code in SHELL if code.startswith("export ALIBABA_CLOUD_ACCESS_KEY_ID"))
    port = emulator.rsplit(":", 1)[1]
    script = "set -euo pipefail\n" + block.replace(README_PORT, port)
    env = _env(emulator, bin_dir)
    for key in (
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SLS_ENDPOINT",
        "ALIBABA_CLOUD_REGION_ID",
    ):
        env.pop(key, None)  # the block exports them itself
    done = subprocess.run(
        ["bash", "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "SHARD" in out
    assert "MTUyNDE1NTM3OTM3MzkwODQ5Ng==" in out  # in the NDJSON rows
    json_line = next(line for line in out.splitlines() if line.startswith("[{"))
    [shard_1] = json.loads(json_line)
    assert shard_1.pop("commit_age_seconds") > 0
    assert shard_1 == {
        "shard": 1,
        "checkpoint": "MTUyNDE1NTM3OTM3MzkwODUwMA==",
        "committed": True,
        "consumer": "c-2",
        "update_time": "2018-04-20T11:49:50+00:00",
        "update_time_us": 1524224990000000,
        "status": "stale",
    }
    ndjson = [json.loads(line) for line in out.splitlines() if line.startswith('{"project"')]
    assert sorted((r["logstore"], r["consumer_group"]) for r in ndjson) == [
        ("app-log", "cg-audit"),
        ("app-log", "cg-main"),
        ("web-log", "cg-main"),
    ]
    # lag of app-log: cg-main is far behind and has not committed since 2018 (STOP), so it exits 1.
    lag = out.split("PROJECT")[-2]
    assert [line.split()[2] for line in lag.splitlines()[1:] if line.strip()][:2] == ["cg-main", "cg-audit"]
    assert " STOP " in lag
    assert "exit 1: a group is behind or stuck" in out
    # --problems: only cg-main is not OK (the other two never committed: no lag to judge).
    table = out.split("PROJECT")[-1]
    assert [line.split()[2] for line in table.splitlines()[1:] if line.strip()] == ["cg-main"]
    assert table.rstrip().endswith("STOP")
    # One summary line per scan or lag (app-* has two groups), nothing else: checkpoints print none.
    assert [line.split(", ")[0] for line in done.stderr.splitlines()] == [
        "2 groups",
        "3 groups",
        "2 groups",
        "3 groups",
    ]
    assert "demo-secret" not in out + done.stderr
