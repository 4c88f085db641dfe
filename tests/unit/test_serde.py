"""The cattrs converter: wire names, strict primitives, tolerant vs strict extra keys, timestamps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_sansio import _ok, all_samples, sample

from aiosls import ConsumerGroup, ResponseParseError, Shard, ShardCheckpoint, _sansio
from aiosls._serde import CONVERTER, DETAILED_CONVERTER, dumps, loads, make_converter, to_camel
from aiosls.models import epoch_to_datetime

STRICT = make_converter(forbid_extra_keys=True, detailed_validation=True)

# Which model each recorded 200 sample's array items structure into.
MODEL_OF: dict[str, type] = {
    "GetCheckPoint": ShardCheckpoint,
    "ListConsumerGroup": ConsumerGroup,
    "ListShards": Shard,
}
MODEL_SAMPLES = [(op, case) for op, case in all_samples() if op in MODEL_OF and case.startswith("200")]


def test_there_are_model_samples_for_every_model() -> None:
    assert {op for op, _ in MODEL_SAMPLES} == set(MODEL_OF)


@pytest.mark.parametrize(("op", "case"), MODEL_SAMPLES)
def test_every_sample_structures_under_the_strict_converter(op: str, case: str) -> None:
    items = json.loads(sample(op, case).body)
    cls = MODEL_OF[op]
    strict: list[Any] = [STRICT.structure(item, cls) for item in items]
    tolerant: list[Any] = [CONVERTER.structure(item, cls) for item in items]
    assert strict == tolerant
    # ... and unstructures back to exactly the wire object (every key known, none invented).
    for item, model in zip(items, strict, strict=True):
        wire = STRICT.unstructure(model)
        expected = {"consumer": "", **item} if cls is ShardCheckpoint else item  # consumer may be absent
        assert wire == expected


NON_EMPTY_MODEL_SAMPLES = [(op, case) for op, case in MODEL_SAMPLES if json.loads(sample(op, case).body)]


@pytest.mark.parametrize(("op", "case"), NON_EMPTY_MODEL_SAMPLES)
def test_strict_converter_rejects_an_unknown_key_production_tolerates_it(op: str, case: str) -> None:
    items = json.loads(sample(op, case).body)
    extra = {**items[0], "fieldAddedLater": 1}
    with pytest.raises(cattrs.ClassValidationError) as info:
        STRICT.structure(extra, MODEL_OF[op])
    assert any(isinstance(e, cattrs.ForbiddenExtraKeysError) for e in info.value.exceptions)
    assert CONVERTER.structure(extra, MODEL_OF[op]) == CONVERTER.structure(items[0], MODEL_OF[op])


def test_a_misnamed_field_fails_loudly_only_under_the_strict_converter() -> None:
    @attrs.frozen
    class Misnamed:  # forgot metadata={"wire": "updateTime"}: it would read "updateTimeUs"
        shard: int
        checkpoint: str
        update_time_us: int = 0
        consumer: str = ""

    item = json.loads(sample("GetCheckPoint", "200-all-shards").body)[0]
    assert CONVERTER.structure(item, Misnamed).update_time_us == 0  # silently wrong
    with pytest.raises(cattrs.ClassValidationError, match="Misnamed"):
        STRICT.structure(item, Misnamed)


def test_production_parsing_tolerates_new_fields() -> None:
    body = b'[{"shard": 0, "checkpoint": "", "updateTime": 1524224984800922, "consumer": "", "lag": 5}]'
    assert _sansio.parse_checkpoints(_ok(body)) == [ShardCheckpoint(0, "", 1524224984800922, "")]


def test_wire_names() -> None:
    assert to_camel("update_time") == "updateTime"
    assert to_camel("inclusive_begin_key") == "inclusiveBeginKey"
    assert to_camel("name") == "name"
    assert CONVERTER.unstructure(ShardCheckpoint(1, "Y3Vy", 1524224984800922, "c")) == {
        "shard": 1,
        "checkpoint": "Y3Vy",
        "updateTime": 1524224984800922,
        "consumer": "c",
    }
    assert set(CONVERTER.unstructure(Shard(0, "readwrite", "00", "ff", 1524155379))) == {
        "shardID",
        "status",
        "inclusiveBeginKey",
        "exclusiveEndKey",
        "createTime",
    }


@pytest.mark.parametrize(
    ("value", "cls"),
    [
        ("5", int),
        (5.0, int),
        (True, int),
        (None, int),
        (5, str),
        (b"x", str),
        (None, str),
        (1, bool),
        ("true", bool),
        ("1.5", float),
        (True, float),
    ],
)
def test_strict_primitives(value: Any, cls: type) -> None:
    for conv in (CONVERTER, STRICT):
        with pytest.raises(TypeError, match="expected"):
            conv.structure(value, cls)


def test_int_is_a_valid_float_and_exact_types_pass() -> None:
    assert CONVERTER.structure(1, float) == 1
    assert CONVERTER.structure(1.5, float) == 1.5
    assert CONVERTER.structure(0, int) == 0
    assert CONVERTER.structure("", str) == ""
    assert CONVERTER.structure(False, bool) is False


@pytest.mark.parametrize(
    "item",
    [
        {"shard": True, "checkpoint": "", "updateTime": 1524224984800922},
        {"shard": "0", "checkpoint": "", "updateTime": 1524224984800922},
        {"shard": 0, "checkpoint": 5, "updateTime": 1524224984800922},
        {"shard": 0, "checkpoint": "", "updateTime": "1524224984800922"},
        {"shard": 0, "checkpoint": "", "updateTime": 1524224984800922.0},
        {"shard": 0, "checkpoint": "", "updateTime": 1524224984800922, "consumer": None},
    ],
)
def test_mistyped_checkpoint_fields_are_refused(item: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="expected"):  # the fast converter: the first error
        CONVERTER.structure(item, ShardCheckpoint)
    with pytest.raises(cattrs.ClassValidationError):  # the error path's: every error, with paths
        DETAILED_CONVERTER.structure(item, ShardCheckpoint)
    with pytest.raises(ResponseParseError):
        _sansio.parse_checkpoints(_ok(json.dumps([item]).encode()))


def test_update_time_is_microseconds() -> None:
    cp = CONVERTER.structure({"shard": 0, "checkpoint": "", "updateTime": 1524224984800922}, ShardCheckpoint)
    assert cp.update_time_us == 1524224984800922
    assert cp.update_time == datetime(2018, 4, 20, 11, 49, 44, 800922, tzinfo=UTC)
    assert cp.update_time.tzinfo is UTC
    go_fixture = ShardCheckpoint(0, "", 1723094136866340)
    assert go_fixture.update_time == datetime(2024, 8, 8, 5, 15, 36, 866340, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (1524224984, datetime(2018, 4, 20, 11, 49, 44, tzinfo=UTC)),  # seconds
        (99_999_999_999, datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=99_999_999_999)),
        (100_000_000_000, datetime(1973, 3, 3, 9, 46, 40, tzinfo=UTC)),  # milliseconds from here
        (1524224984800, datetime(2018, 4, 20, 11, 49, 44, 800000, tzinfo=UTC)),
        (99_999_999_999_999, datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=99_999_999_999_999)),
        (100_000_000_000_000, datetime(1973, 3, 3, 9, 46, 40, tzinfo=UTC)),  # microseconds from here
        (1524224984800922, datetime(2018, 4, 20, 11, 49, 44, 800922, tzinfo=UTC)),
        (253402300799999999, datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_epoch_to_datetime_units(value: int, expected: datetime) -> None:
    assert epoch_to_datetime(value) == expected


@pytest.mark.parametrize(
    ("value", "match"),
    [(-1, "negative"), (253402300800000000, "out of range"), (10**30, "out of range")],
)
def test_epoch_to_datetime_out_of_range(value: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        epoch_to_datetime(value)


@pytest.mark.parametrize("update_time", [-1, 253402300800000000, 2**63 - 1, 2**64 - 1])
def test_out_of_range_update_time_is_a_parse_error(update_time: int) -> None:
    body = json.dumps([{"shard": 0, "checkpoint": "", "updateTime": update_time}]).encode()
    with pytest.raises(ResponseParseError) as info:
        _sansio.parse_checkpoints(_ok(body))
    assert isinstance(info.value.__cause__, Exception)
    assert info.value.status == 200


@given(st.integers(0, 253402300799999999))
def test_epoch_to_datetime_is_monotonic_within_each_unit(value: int) -> None:
    got = epoch_to_datetime(value)
    assert got.tzinfo is UTC
    assert got >= datetime(1970, 1, 1, tzinfo=UTC)
    if value >= 100_000_000_000_000:
        assert value == 253402300799999999 or epoch_to_datetime(value) < epoch_to_datetime(value + 1)


def test_json_helpers() -> None:
    assert dumps({"shard": 0, "checkpoint": "é"}) == '{"shard":0,"checkpoint":"é"}'.encode()
    assert loads(b'{"a": [1, true, null]}') == {"a": [1, True, None]}
    with pytest.raises(ValueError):  # noqa: PT011 - any JSON decode error is a ValueError
        loads(b"{not json")


def test_fan_out_models() -> None:
    from aiosls import CheckpointResult, CheckpointTarget, NotFoundError

    every = CheckpointTarget("my-project", "app-log", "cg")
    one = CheckpointTarget("my-project", "app-log", "cg", shard=0)
    assert str(every) == "my-project/app-log/cg"
    assert str(one) == "my-project/app-log/cg#0"
    cps = (ShardCheckpoint(0, "Y3Vy", 1524224984800922),)
    good = CheckpointResult(one, cps)
    assert good.ok
    assert good.unwrap() is cps
    err = NotFoundError("no cg", error_code="ConsumerGroupNotExist", status=404)
    bad = CheckpointResult(every, error=err)
    assert not bad.ok
    with pytest.raises(NotFoundError) as info:
        bad.unwrap()
    assert info.value is err
