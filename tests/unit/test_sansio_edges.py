"""Edge inputs of the sans-I/O builders and parsers: every one is a typed error, never a builtin."""

from __future__ import annotations

import json

import pytest

from aiosls import ResponseParseError, ValidationError, _sansio
from aiosls.transport import HttpResponse


@pytest.mark.parametrize("bad", [["my-project"], {"p": 1}, bytearray(b"my-project")])
def test_unhashable_names_get_the_validators_message(bad: object) -> None:
    with pytest.raises(ValidationError, match="project must be a str"):
        _sansio.get_checkpoint(bad, "app-log", "cg")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="project must be a str"):
        _sansio.list_shards(bad, "app-log")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda v: _sansio.update_checkpoint("my-project", "app-log", "cg", 0, v), "checkpoint"),
        (lambda v: _sansio.update_checkpoint("my-project", "app-log", "cg", 0, "c", consumer=v), "consumer"),
        (lambda v: _sansio.list_logstores("my-project", name_filter=v), "name_filter"),
        (lambda v: _sansio.get_cursor_time("my-project", "app-log", 0, v), "cursor"),
    ],
)
def test_lone_surrogates_are_validation_errors(build, argument: str) -> None:
    with pytest.raises(ValidationError, match=f"{argument} is not valid text") as info:
        build("ok\ud800")
    assert info.value.__context__ is None  # the value stays off the chain too
    build("caf\u00e9")  # non-ASCII text that UTF-8 encodes is fine


@pytest.mark.parametrize("value", [-1, 253_402_300_800, 10**18])
def test_cursor_time_out_of_range_is_a_parse_error(value: int) -> None:
    response = HttpResponse(200, {"x-log-requestid": "RID"}, json.dumps({"cursor_time": value}).encode())
    with pytest.raises(ResponseParseError, match="out of range") as info:
        _sansio.parse_cursor_time(response)
    assert info.value.request_id == "RID"


def test_cursor_time_at_the_last_representable_second() -> None:
    response = HttpResponse(200, {}, b'{"cursor_time": 253402300799}')
    assert _sansio.parse_cursor_time(response) == 253_402_300_799
