"""``aiosls.testing``, used as a user would: their own test files, run by pytest in a process,
with the plugin enabled by ``pytest_plugins`` (a checkout) or by the ``pytest11`` entry point
(an install: a dist-info directory on the path declares it, as an installed wheel does)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = """\
[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
"""
USER_TESTS = """\
import pytest

from aiosls import NotFoundError

SEED = {
    "projects": {
        "my-project": {"logstores": {"app-log": {"shards": 2, "consumer_groups": {"cg-main": {}}}}}
    }
}


@pytest.mark.sls_seed(SEED)
async def test_commit_then_read_through_throttling(sls_service, sls_emulator):
    await sls_service.update_checkpoint("my-project", "app-log", "cg-main", 0, "QQ==")
    sls_emulator.faults.fail_next(2, "throttle")
    cps = await sls_service.get_checkpoints("my-project", "app-log", "cg-main")
    assert [cp.checkpoint for cp in cps] == ["QQ==", ""]
    assert sls_emulator.faults.injected["throttle"] == 2


async def test_unseeded_emulator_is_empty(sls_service):
    with pytest.raises(NotFoundError):
        await sls_service.list_logstores("my-project")


async def test_own_client_with_the_credentials(sls_emulator, sls_credentials):
    from aiosls import CheckpointService

    async with CheckpointService(sls_emulator.endpoint, sls_credentials, region="cn-hangzhou") as svc:
        await svc.create_project("own-project")
    assert "own-project" in sls_emulator.state.projects
"""


def _pytest(project: Path, *args: str, path: str = str(ROOT)) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "PYTEST_"))}
    env["PYTHONPATH"] = path
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            "--strict-markers",
            *args,
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "test_mine.py").write_text(USER_TESTS)
    return tmp_path


def _installed_entry_point(tmp_path: Path) -> str:
    """A site directory whose dist-info declares the pyproject's pytest11 entry point."""
    import tomllib

    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    site = tmp_path / "site"
    info = site / "aiosls_plugin_test-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: aiosls-plugin-test\nVersion: 0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text("[pytest11]\n" + lines)
    return f"{ROOT}{os.pathsep}{site}"


def test_pytest_plugins_in_a_conftest(project: Path) -> None:
    (project / "conftest.py").write_text('pytest_plugins = ["aiosls.testing"]\n')
    done = _pytest(project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_the_entry_point_enables_it_when_installed(project: Path, tmp_path: Path) -> None:
    done = _pytest(project, path=_installed_entry_point(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_installed_and_listed_in_pytest_plugins_too(project: Path, tmp_path: Path) -> None:
    # A checkout's conftest kept after `pip install`: one registration, no "already registered".
    (project / "conftest.py").write_text('pytest_plugins = ["aiosls.testing"]\n')
    done = _pytest(project, path=_installed_entry_point(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_without_the_plugin_the_fixtures_are_unknown(project: Path) -> None:
    # Blocked by name: where aiosls is installed (a nox session), its entry point loads it.
    done = _pytest(project, "-p", "no:aiosls.testing")
    assert done.returncode != 0
    assert "'sls_seed' not found in `markers` configuration option" in done.stdout


def test_strict_mode_with_asyncio_marks(project: Path) -> None:
    (project / "pyproject.toml").write_text(PYPROJECT.replace('"auto"', '"strict"'))
    (project / "conftest.py").write_text('pytest_plugins = ["aiosls.testing"]\n')
    marked = USER_TESTS.replace("\nasync def", "\n@pytest.mark.asyncio\nasync def").replace(
        "@pytest.mark.sls_seed(SEED)\n@pytest.mark.asyncio",
        "@pytest.mark.asyncio\n@pytest.mark.sls_seed(SEED)",
    )
    (project / "test_mine.py").write_text(marked)
    done = _pytest(project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    heavy = "('aiohttp', 'aiosls.emulator', 'aiosls.service')"
    code = f"import sys, aiosls.testing; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
