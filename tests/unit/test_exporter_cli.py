"""The exporter's flags mount under a parent parser (the `aiosls` command) without losing its switches."""

from __future__ import annotations

import argparse

import pytest

from aiosls.exporter import cli


def parse(argv: list[str]) -> argparse.Namespace:
    parent = argparse.ArgumentParser(prog="aiosls")
    parent.add_argument("--debug", action="store_true", default=False)
    sub = parent.add_subparsers(dest="command")
    cli.add_arguments(sub.add_parser("exporter"))
    return parent.parse_args(argv)


@pytest.mark.parametrize(
    ("argv", "debug"),
    [
        (["--debug", "exporter"], True),
        (["exporter", "--debug"], True),
        (["exporter"], None),  # not given: the config file decides
    ],
)
def test_debug_from_either_parser(argv: list[str], debug: bool | None) -> None:
    assert cli._flags(parse(argv))["debug"] is debug


def test_flags_become_config_keys() -> None:
    flags = cli._flags(
        parse(
            [
                "exporter",
                "--project",
                "a-project",
                "--project",
                "b-project",
                "--allowed-lag",
                "120",
                "--group-exclude=-test$",  # a value starting with '-' needs the '=' form
                "--label",
                "env=prod",
                "--granularity",
                "group",
            ]
        )
    )
    assert flags["projects"] == ["a-project", "b-project"]
    assert flags["allowed_lag"] == "120"
    assert flags["consumer_group_exclude"] == "-test$"
    assert flags["labels"] == ["env=prod"]
    assert flags["granularity"] == "group"
    assert flags["demo"] is None
    assert flags["interval"] is None


def test_every_flag_has_a_config_twin() -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    dests = {a.dest for a in parser._actions if a.dest != "help"}
    assert dests == set(cli._TWINS)


def test_demo_seed_loads_in_the_emulator() -> None:
    from aiosls.emulator import validate_seed

    validate_seed(cli.demo_seed())


def test_the_command_module_loads_without_the_exporter_extra() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys; import aiosls.exporter.cli, aiosls.exporter; "
        "assert 'prometheus_client' not in sys.modules, 'imported eagerly'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
