"""The command as a process starts it: without the rich extra, and what ``--help`` imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _without_rich(*argv: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; sys.modules['rich'] = None\n"  # as if the extra was not installed
        "from aiosls.cli import main\n"
        f"sys.exit(main({list(argv)!r}))"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_without_rich_a_command_says_how_to_install_it() -> None:
    done = _without_rich("scan", "p1x", "--endpoint", "http://127.0.0.1:9", "--region", "cn-hangzhou")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == "aiosls: error: the scan command needs rich: pip install 'aiosls[cli]'\n"
    assert _without_rich("scan", "--help").returncode == 0  # help needs nothing


def test_without_rich_the_emulator_runs() -> None:
    done = _without_rich("emulator", "--seed", "/nonexistent/seed.json")
    assert "rich" not in done.stderr
    assert done.returncode == 2  # its own error about the seed file, not the extra
    assert _without_rich("emulator", "--help").returncode == 0


@pytest.mark.parametrize(
    "argv", [["--help"], ["scan", "--help"], ["checkpoints", "--help"], ["demo", "--help"]]
)
def test_help_imports_no_heavy_module(argv: list[str]) -> None:
    code = (
        "import sys, io, contextlib\n"
        "from aiosls.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(" + repr(argv) + ")\n"
        "print(sorted(m for m in ('aiohttp', 'rich', 'aiosls.service', 'aiosls.emulator', 'asyncio')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
