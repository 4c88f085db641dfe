"""orjson is an optional extra: the package, the emulator and the demo work without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Make `import orjson` fail in the child, as on an install without the extra.
_BLOCK_ORJSON = "import sys; sys.modules['orjson'] = None\n"


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCK_ORJSON + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_runs_without_orjson() -> None:
    done = _run(
        """
        from aiosls import _serde
        assert _serde.loads.__module__ == "json", _serde.loads
        from aiosls.cli import main
        raise SystemExit(main(["demo", "--projects", "1", "--logstores", "2", "--format", "json"]))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('[{"project":"demo-project-1"')


def test_json_fallback_round_trips_and_rejects_garbage() -> None:
    done = _run(
        """
        from aiosls import _sansio
        from aiosls.errors import ResponseParseError
        from aiosls.transport import HttpResponse
        body = b'[{"shard":0,"checkpoint":"MTUy","updateTime":1524224984800922,"consumer":"c\\u00e9"}]'
        cps = _sansio.parse_checkpoints(HttpResponse(200, {}, body))
        assert cps[0].consumer == "c\\u00e9", cps
        try:
            _sansio.parse_checkpoints(HttpResponse(200, {"x-log-requestid": "R"}, b"\\xff<html>"))
        except ResponseParseError as exc:
            assert exc.request_id == "R"
        else:
            raise AssertionError("garbage parsed")
        assert _sansio.update_checkpoint("my-project", "app-log", "cg", 1, "MTcy+").body == (
            b'{"shard":1,"checkpoint":"MTcy+"}'
        )
        """
    )
    assert done.returncode == 0, done.stderr
