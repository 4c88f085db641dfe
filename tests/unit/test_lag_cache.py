"""The lag module's pure parts: the previous-cursor arithmetic and the bounded cursor-time LRU."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiosls.lag import CursorTimeCache, previous_cursor


def _cursor(value: int) -> str:
    return base64.b64encode(str(value).encode("ascii")).decode("ascii")


@given(st.integers(min_value=1, max_value=2**64 - 1))
def test_previous_cursor_is_the_integer_before_re_encoded(value: int) -> None:
    before = previous_cursor(_cursor(value))
    assert before == _cursor(value - 1)


def test_previous_cursor_of_a_real_checkpoint() -> None:
    # The SLS docs' example checkpoint: 1524155379373908496.
    assert previous_cursor("MTUyNDE1NTM3OTM3MzkwODQ5Ng==") == _cursor(1524155379373908495)


@pytest.mark.parametrize("cursor", ["MA==", "", "not base64!", "YWJj", "LTE=", _cursor(10**20)])
def test_no_previous_cursor_for_zero_or_what_is_not_a_cursor(cursor: str) -> None:
    # "YWJj" is "abc", "LTE=" is "-1", 10**20 has 21 digits: none is a cursor.
    assert previous_cursor(cursor) is None


@given(st.text(max_size=40))
def test_previous_cursor_never_raises(text: str) -> None:
    before = previous_cursor(text)
    assert before is None or int(base64.b64decode(before)) >= 0


def _key(n: int) -> tuple[str, str, int, str]:
    return ("p", "ls", 0, _cursor(n))


def test_the_cache_keeps_at_most_size_entries_and_drops_the_least_recently_used() -> None:
    cache = CursorTimeCache(3)
    for n in range(3):
        cache.put(_key(n), 100 + n)
    assert cache.get(_key(0)) == 100  # 0 is now the most recently used
    cache.put(_key(3), 103)  # evicts 1, the least recently used
    assert len(cache) == 3
    assert cache.get(_key(1)) is None
    assert [cache.get(_key(n)) for n in (0, 2, 3)] == [100, 102, 103]
    cache.put(_key(2), 202)  # an update refreshes, never grows
    cache.put(_key(4), 104)  # evicts 0 (2 and 3 were used after it)
    assert len(cache) == 3
    assert cache.get(_key(0)) is None
    assert [cache.get(_key(n)) for n in (2, 3, 4)] == [202, 103, 104]


def test_a_zero_time_is_remembered_and_a_zero_size_cache_remembers_nothing() -> None:
    cache = CursorTimeCache(2)
    cache.put(_key(0), 0)
    assert cache.get(_key(0)) == 0
    off = CursorTimeCache(0)
    off.put(_key(0), 5)
    assert len(off) == 0
    assert off.get(_key(0)) is None


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 20)), max_size=200), st.integers(0, 6))
def test_the_cache_behaves_like_a_reference_lru(ops: list[tuple[bool, int]], size: int) -> None:
    cache = CursorTimeCache(size)
    model: list[int] = []  # least recently used first
    for is_put, n in ops:
        if is_put:
            cache.put(_key(n), n)
            if size:
                if n in model:
                    model.remove(n)
                model.append(n)
                del model[: max(0, len(model) - size)]
        else:
            got = cache.get(_key(n))
            assert got == (n if n in model else None)
            if n in model:
                model.remove(n)
                model.append(n)
        assert len(cache) == len(model) <= size


@pytest.mark.parametrize("size", [-1, 1.5, True, "10", None])
def test_the_cache_size_must_be_an_int_at_least_zero(size: object) -> None:
    with pytest.raises(ValueError, match="cursor_time_cache"):
        CursorTimeCache(size)  # type: ignore[arg-type]
