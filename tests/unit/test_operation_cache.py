"""GetCheckPoint operations are cached per target: the cache never lets an invalid one through."""

from __future__ import annotations

import pytest

from aiosls import ValidationError
from aiosls._sansio import get_checkpoint


def test_a_cached_operation_is_the_same_and_read_only() -> None:
    first = get_checkpoint("my-project", "app-log", "cg-main", 1)
    assert get_checkpoint("my-project", "app-log", "cg-main", 1) is first
    assert dict(first.params) == {"shard": "1"}
    with pytest.raises(TypeError):
        first.params["shard"] = "2"  # type: ignore[index]


def test_a_bool_shard_is_refused_even_after_shard_1_was_cached() -> None:
    get_checkpoint("my-project", "app-log", "cg-main", 1)
    with pytest.raises(ValidationError):
        get_checkpoint("my-project", "app-log", "cg-main", True)


def test_an_unhashable_name_still_gets_the_validators_answer() -> None:
    with pytest.raises(ValidationError):
        get_checkpoint(["my-project"], "app-log", "cg-main")  # type: ignore[arg-type]
