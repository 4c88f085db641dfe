"""The command as a process starts it: without the rich extra, and what ``--help`` imports."""

from __future__ import annotations

import os
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


def test_a_registered_run_command_owns_its_run(tmp_path: Path) -> None:
    # How `aiosls exporter` mounts: a module with add_arguments(parser) and run(args) -> int,
    # registered in COMMANDS. Its module is imported only when it runs; rich is not required.
    (tmp_path / "fake_server.py").write_text(
        "import sys\n"
        "def add_arguments(parser):\n"
        "    parser.add_argument('--listen')\n"
        "    parser.add_argument('--debug', action='store_true')\n"
        "def run(args):\n"
        "    print('serving on', args.listen, 'debug', args.debug)\n"
        "    return 0\n"
    )
    code = (
        "import sys; sys.modules['rich'] = None\n"
        "from aiosls.cli import COMMANDS, Command, main\n"
        "COMMANDS['fake'] = Command('fake_server', 'a test server', 'run', needs_rich=False)\n"
        "assert main(['--help']) == 0 and 'fake_server' not in sys.modules\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}", "PATH": os.environ.get("PATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", code, "fake", "--listen", ":9464", "--debug"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "a test server" in done.stdout  # listed in --help
    assert done.stdout.splitlines()[-1] == "serving on :9464 debug True"
