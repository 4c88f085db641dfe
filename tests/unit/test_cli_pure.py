"""The command's pure parts: statuses and ages, exit codes, the summary line, option checks,
and rendering on a terminal (a rich Console forced to be one, writing to a StringIO)."""

from __future__ import annotations

import argparse
import io
import logging
import signal
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from aiosls import credentials
from aiosls.cli import exits, options, output, scan, triage
from aiosls.cli.run import summary_line
from aiosls.errors import (
    AuthError,
    CertificateError,
    ConnectError,
    NotFoundError,
    ReadTimeout,
    SlsError,
    ThrottlingError,
)
from aiosls.health import Health, HealthEvaluator
from aiosls.models import CheckpointTarget, GroupLag, LagResult, ShardLag
from tests.helpers import T0

TARGET = CheckpointTarget("p1x", "app-log", "cg-main")


def _shard(
    shard: int,
    lag: float | None,
    commit_ago: float | None = 5.0,
    consumer: str = "c-1",
    *,
    checkpoint: str = "QQ==",
) -> ShardLag:
    """A shard ``lag`` seconds behind whose last commit was ``commit_ago`` seconds before T0."""
    if commit_ago is None:
        return ShardLag(shard, "", "", None, None, T0 - timedelta(seconds=1), None, None)
    latest = T0 - timedelta(seconds=1)
    consumed = None if lag is None else latest - timedelta(seconds=lag)
    return ShardLag(
        shard,
        checkpoint,
        consumer,
        T0 - timedelta(seconds=commit_ago),
        consumed,
        latest,
        lag,
        max(0.0, commit_ago),
        caught_up=lag == 0.0,
    )


def _view(*shards: ShardLag, group: str = "cg-main", allowed_lag: float = 60.0) -> triage.GroupView:
    result = LagResult(CheckpointTarget("p1x", "app-log", group), GroupLag(TARGET, shards, T0))
    return triage.evaluate(result, HealthEvaluator(allowed_lag=allowed_lag, window=1))


def _failed(error: Exception) -> triage.GroupView:
    assert isinstance(error, SlsError)
    return triage.evaluate(LagResult(TARGET, error=error), HealthEvaluator(window=1))


# --- statuses: one observation, HealthEvaluator(window=1) ------------------------------------------


@pytest.mark.parametrize(
    ("shards", "status"),
    [
        ((_shard(0, 0.0), _shard(1, 20.0)), Health.OK),
        ((_shard(0, 0.0, commit_ago=90_000),), Health.OK),  # caught up: an idle shard is fine
        ((_shard(0, 10.0), _shard(1, None, None)), Health.OK),  # never committed: lag unknown
        ((_shard(0, 61.0),), Health.WARN),
        ((_shard(0, 30.0, commit_ago=900),), Health.STOP),  # data waits, nothing committed
        ((_shard(0, 3000.0, commit_ago=900), _shard(1, 5.0)), Health.STOP),  # the worst shard's
        ((), Health.OK),
    ],
)
def test_status_is_the_single_observation_verdict(shards: tuple[ShardLag, ...], status: Health) -> None:
    view = _view(*shards)
    assert view.status is status
    assert view.label == status.name


def test_allowed_lag_decides_warn() -> None:
    assert _view(_shard(0, 300.0), allowed_lag=600).status is Health.OK
    assert _view(_shard(0, 300.0), allowed_lag=60).status is Health.WARN


def test_lag_and_ages_of_a_view() -> None:
    view = _view(_shard(0, 10.0, commit_ago=10), _shard(1, 250.0, commit_ago=30), _shard(2, None, None))
    assert (view.lag_seconds, view.worst_shard) == (250.0, 1)
    assert view.last_commit_age_seconds == 10.0
    assert view.oldest_commit_age_seconds == 30.0
    assert view.last_commit_time == T0 - timedelta(seconds=10)


def test_an_error_is_err_and_names_its_code() -> None:
    view = _failed(NotFoundError("gone", error_code="ConsumerGroupNotExist", status=404))
    assert view.status is Health.ERR
    assert view.label == "ERR ConsumerGroupNotExist"
    doc = triage.group_dict(view)
    assert (doc["status"], doc["ok"], doc["lag_seconds"]) == ("err", False, None)
    assert doc["error"]["code"] == "ConsumerGroupNotExist"
    assert "checkpoints" not in doc


def test_worst_first_then_largest_lag_then_name() -> None:
    views = [
        _view(_shard(0, 5.0), group="b-ok"),
        _view(_shard(0, 5.0), group="a-ok"),
        _view(_shard(0, 100.0), group="warn-small"),
        _view(_shard(0, 5000.0), group="warn-big"),
        _view(_shard(0, 100.0, commit_ago=900), group="stop"),
        _failed(ThrottlingError("x")),
    ]
    order = [v.result.target.consumer_group for v in triage.worst_first(views)]
    assert order == ["cg-main", "stop", "warn-big", "warn-small", "a-ok", "b-ok"]


def test_json_row_keeps_raw_cursors_and_units_in_names() -> None:
    doc = triage.group_dict(_view(_shard(0, 12.5, commit_ago=3), _shard(1, None, None)))
    assert (doc["status"], doc["lag_seconds"], doc["worst_shard"], doc["committed_shards"]) == (
        "ok",
        12.5,
        0,
        1,
    )
    first, never = doc["checkpoints"]
    assert first["checkpoint"] == "QQ=="
    assert (first["lag_seconds"], first["commit_age_seconds"]) == (12.5, 3.0)
    assert first["latest_time"] == (T0 - timedelta(seconds=1)).isoformat()
    assert first["consumed_time"] == (T0 - timedelta(seconds=13.5)).isoformat()
    assert first["update_time_us"] == int((T0 - timedelta(seconds=3)).timestamp() * 1_000_000)
    assert (first["expired"], first["caught_up"], first["status"]) == (False, False, "ok")
    assert (never["checkpoint"], never["lag_seconds"], never["update_time"], never["committed"]) == (
        "",
        None,
        None,
        False,
    )


def test_lag_table_cells_are_human_and_escaped() -> None:
    view = _view(_shard(0, 192.0), group="cg-\x1b[31mred")
    headers, rows, right = scan.table_rows([view], "lag")
    assert headers[3:7] == ["LAG", "WORST SHARD", "LAST COMMIT", "STATUS"]
    cells = [c.plain for c in rows[0]]
    assert cells[3:7] == ["3m12s", "0", "5s", "WARN"]
    assert "\x1b" not in "".join(cells)
    assert right == {3, 4, 5}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "never"),
        (0, "0s"),
        (59.9, "59s"),
        (192, "3m12s"),
        (3600, "1h00m"),
        (18240, "5h04m"),
        (183600, "2d03h"),
    ],
)
def test_human_age(seconds: float | None, text: str) -> None:
    assert triage.human_age(seconds) == text


# --- exit codes and the summary line ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("errors", "succeeded", "code"),
    [
        ([], 0, 0),
        ([], 5, 0),
        ([AuthError("x")], 0, 3),
        ([AuthError("x"), AuthError("y")], 0, 3),
        ([AuthError("x")], 1, 1),  # something worked: a partial result
        ([ConnectError("x"), ReadTimeout("y"), CertificateError("z")], 0, 4),
        ([ConnectError("x")], 2, 1),
        ([ConnectError("x"), AuthError("y")], 0, 1),  # mixed: neither outage explains it all
        ([NotFoundError("x")], 0, 1),
    ],
)
def test_exit_code(errors: list[Exception], succeeded: int, code: int) -> None:
    assert exits.exit_code(errors, succeeded=succeeded) == code


def test_signal_exit_codes_are_what_shells_report() -> None:
    assert (exits.EXIT_INTERRUPTED, exits.EXIT_TERMINATED) == (130, 143)
    assert exits.signal_exit_code(signal.SIGTERM) == 143


def test_summary_line() -> None:
    line = summary_line(total=2000, ok=1981, retries=412, seconds=93.4, interrupted=None)
    assert line == "2,000 groups, 1,981 ok, 19 failed, 412 retries absorbed, 93 s"
    line = summary_line(total=1, ok=1, retries=1, seconds=0.42, interrupted=signal.SIGINT)
    assert line == "1 group, 1 ok, 0 failed, 1 retry absorbed, 0.4 s, interrupted by SIGINT: partial results"


# --- options ------------------------------------------------------------------------------------------


def test_environment_names_match_the_library() -> None:
    assert options.ENV_ACCESS_KEY_ID == credentials.ENV_ACCESS_KEY_ID
    assert options.ENV_ACCESS_KEY_SECRET == credentials.ENV_ACCESS_KEY_SECRET


@pytest.mark.parametrize("text", ["-5", "-0.001", "nan", "inf", "-inf", "1e300", "x", ""])
def test_durations_refuse_negative_and_non_finite(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        options.seconds(text)


@given(st.floats(min_value=0, max_value=options.MAX_SECONDS, allow_nan=False))
def test_durations_take_every_number_in_range(value: float) -> None:
    assert options.seconds(repr(value)) == value


@given(st.text(max_size=20))
def test_integer_option_takes_only_ascii_digits(text: str) -> None:
    parse = options.int_in(0, 10**6)
    try:
        value = parse(text)
    except argparse.ArgumentTypeError:
        return
    assert text.lstrip("-").isascii()
    assert text.lstrip("-").isdigit()
    assert value == int(text)


def test_timeout_must_be_positive() -> None:
    parser = options.Parser(prog="x")
    options.add_connection_args(parser)
    assert parser.parse_args([]).timeout == options.DEFAULT_TIMEOUT
    assert parser.parse_args(["--timeout", "2.5"]).timeout == 2.5
    for bad in ("0", "-1"):
        with pytest.raises(SystemExit), _silenced():
            parser.parse_args(["--timeout", bad])


def _silenced() -> object:
    import contextlib

    return contextlib.redirect_stderr(io.StringIO())


# --- rendering ----------------------------------------------------------------------------------------


def test_plain_table_has_no_colour_and_no_trailing_blanks() -> None:
    out = io.StringIO()
    console = output.make_console(out)
    assert not console.is_terminal
    rows = [[output.cell("a"), output.cell(1)], [output.cell("evil\x1b[31m[bold]x[/]"), output.cell(22)]]
    output.print_table(console, ("NAME", "N"), rows, right=(1,))
    assert out.getvalue().splitlines() == [
        "NAME                     N",
        "a                        1",
        "evil\\x1b[31m[bold]x[/]  22",
    ]


def test_terminal_table_is_coloured_and_escapes_server_text() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=100)
    status = output.cell("STALE")
    status.stylize(output.severity_style(1))
    output.print_table(console, ("GROUP", "STATUS"), [[output.cell("cg\x1b[2J"), status]])
    text = out.getvalue()
    assert "\x1b[31mSTALE" in text  # red
    assert "cg\\x1b[2J" in text  # escaped, not executed
    assert "\x1b[2J" not in text


def test_progress_on_a_terminal_shows_discovery_total_rate_and_eta_then_clears() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    progress = output.progress_for(console, enabled=True)
    assert isinstance(progress, output.ScanProgress)
    progress.discovering(3)
    progress.project_done()
    progress.found(40)
    progress._progress.refresh()
    assert "discovering 3 projects" in out.getvalue()
    assert "reading 40+ groups" in out.getvalue()  # the total so far: discovery goes on
    progress.project_done()
    progress.project_done()
    progress.discovered()
    for i in range(10):
        progress.advance(ok=i != 3)
    progress._progress.refresh()
    frame = out.getvalue().rsplit("\x1b[2K", 1)[-1]
    assert "reading 40 groups, 1 failed" in frame
    assert "10/40" in frame
    assert "eta" in frame
    progress.stop()
    assert out.getvalue().endswith("\x1b[2K")  # transient: erased


def test_no_progress_when_not_a_terminal_or_quiet() -> None:
    assert type(output.progress_for(output.make_console(io.StringIO()), enabled=True)) is output.NullProgress
    tty = Console(file=io.StringIO(), force_terminal=True)
    assert type(output.progress_for(tty, enabled=False)) is output.NullProgress


def test_log_lines_print_above_the_live_display() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    progress = output.ScanProgress(console)
    logger = logging.getLogger("aiosls.test_cli_pure")
    handler = output.log_handler(console)
    logger.addHandler(handler)
    try:
        progress.found(5)
        logger.warning("retrying GetCheckPoint after ReadQuotaExceed")
    finally:
        logger.removeHandler(handler)
        progress.stop()
    text = out.getvalue()
    line = text.index("retrying GetCheckPoint")
    # The display was erased before the log line and drawn again after it.
    assert text.rfind("\x1b[2K", 0, line) != -1
    assert "reading 5+ groups" in text[line:]


def test_plain_log_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    handler = output.log_handler(output.make_console(out))
    record = logging.LogRecord("aiosls.retry", logging.WARNING, __file__, 1, "retrying %s", ("X",), None)
    handler.handle(record)
    assert out.getvalue() == "aiosls: WARNING aiosls.retry: retrying X\n"


def test_plain_table_aligns_wide_characters() -> None:
    text = output.plain_table(
        ("NAME", "N"), [[output.cell("日志"), output.cell(1)], [output.cell("ab"), output.cell(2)]]
    )
    assert text.splitlines() == ["NAME  N", "日志  1", "ab    2"]


def test_a_long_table_on_a_terminal_is_plain() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    rows = [[output.cell(f"cg-{i}")] for i in range(output.MAX_RICH_ROWS + 1)]
    output.print_table(console, ("GROUP",), rows)
    assert out.getvalue() == output.plain_table(("GROUP",), rows)


def test_discovery_progress_becomes_display_steps() -> None:
    from aiosls.discovery import DiscoveryProgress

    class Recording(output.NullProgress):
        def __init__(self) -> None:
            self.calls: list[tuple[str, int]] = []

        def project_done(self) -> None:
            self.calls.append(("project_done", 1))

        def found(self, targets: int = 1) -> None:
            self.calls.append(("found", targets))

        def discovered(self) -> None:
            self.calls.append(("discovered", 0))

    progress = Recording()
    display = scan._DiscoveryDisplay(progress)
    for step in [(0, 2, 3), (0, 2, 5), (1, 2, 5), (2, 2, 9), (2, 2, 9)]:
        display(DiscoveryProgress(*step))
    assert progress.calls == [
        ("found", 3),
        ("found", 2),
        ("project_done", 1),
        ("project_done", 1),
        ("found", 4),
        ("discovered", 0),  # once, however often the final progress is reported
    ]
