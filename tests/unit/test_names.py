"""SLS naming rules (docs/protocol.md): accepted names match the documented rule, nothing else passes."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiosls import ValidationError, names

LOWER_DIGITS = string.ascii_lowercase + string.digits


# The documented rules, written independently of the module's regexes.
def project_rule(value: str) -> bool:
    return (
        3 <= len(value) <= 63
        and all(c in LOWER_DIGITS + "-" for c in value)
        and value[0] in LOWER_DIGITS
        and value[-1] in LOWER_DIGITS
    )


def logstore_rule(value: str) -> bool:
    return (
        3 <= len(value) <= 63
        and all(c in LOWER_DIGITS + "-_" for c in value)
        and value[0] in LOWER_DIGITS
        and value[-1] in LOWER_DIGITS
    )


def consumer_group_rule(value: str) -> bool:
    return 1 <= len(value) <= 128 and all(c in string.ascii_letters + string.digits + "_-" for c in value)


VALIDATORS = [
    (names.validate_project, project_rule, "project"),
    (names.validate_logstore, logstore_rule, "logstore"),
    (names.validate_consumer_group, consumer_group_rule, "consumer_group"),
]


def _accepts(validate: Any, value: Any) -> bool:
    try:
        returned = validate(value)
    except ValidationError as exc:
        failure: ValidationError | None = exc
    else:
        failure = None
        assert returned == value
    if failure is not None:
        assert (failure.error_code, failure.status) == ("ParameterInvalid", None)
    return failure is None


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("abc", True),
        ("my-project-01", True),
        ("a" * 63, True),
        ("0ab", True),
        ("ab", False),
        ("a" * 64, False),
        ("-ab", False),
        ("ab-", False),
        ("My-project", False),
        ("my_project", False),
        ("my.project", False),
        ("", False),
    ],
)
def test_project_examples(value: str, ok: bool) -> None:
    assert _accepts(names.validate_project, value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("app-log_1", True),
        ("a_b", True),
        ("a" * 63, True),
        ("_ab", False),
        ("ab_", False),
        ("ab", False),
        ("a" * 64, False),
        ("App-log", False),
        ("app log", False),
    ],
)
def test_logstore_examples(value: str, ok: bool) -> None:
    assert _accepts(names.validate_logstore, value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("c", True),
        ("CG-main_1", True),
        ("_", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        ("cg.main", False),
    ],
)
def test_consumer_group_examples(value: str, ok: bool) -> None:
    assert _accepts(names.validate_consumer_group, value) is ok


@pytest.mark.parametrize(("validate", "_rule", "argument"), VALIDATORS)
@pytest.mark.parametrize("value", [None, 5, b"abc", ["abc"]])
def test_non_strings_are_refused(validate: Any, _rule: Any, argument: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=f"{argument} must be a str, not {type(value).__name__}"):
        validate(value)


def test_error_message_names_argument_rule_and_shortens_long_values() -> None:
    with pytest.raises(ValidationError) as info:
        names.validate_logstore("Bad Name")
    assert str(info.value) == (
        "ParameterInvalid: invalid logstore 'Bad Name': must be 3-63 characters of a-z, 0-9, '_' and '-', "
        "starting and ending with a letter or digit"
    )
    with pytest.raises(ValidationError) as info:
        names.validate_project("x" * 1000)
    assert "x" * 77 + "..." in info.value.message
    assert "x" * 78 not in info.value.message
    # A ValidationError is also a ValueError, for callers who catch the builtin.
    with pytest.raises(ValueError, match="consumer_group"):
        names.validate_consumer_group("a/b")


@pytest.mark.parametrize("value", [0, 1, 2**31 - 1])
def test_shard_accepts_ints_in_0_to_2_31_minus_1(value: int) -> None:
    assert names.validate_shard(value) == value


@pytest.mark.parametrize(
    "value",
    [-1, 2**31, 2**40, 10**5000, -(10**5000), 2**63, -(2**63) - 1, True, False, 1.0, "1", None],
    ids=lambda v: (
        type(v).__name__ + (f"-bits{v.bit_length()}{'-neg' if v < 0 else ''}" if isinstance(v, int) else "")
    ),
)
def test_shard_refuses_everything_else_with_a_short_message(value: Any) -> None:
    # Issue 11 item 6: 10**5000 was a plain ValueError (str() of the int) and a huge negative
    # one broke the error's repr; either ended a whole fan-out.
    with pytest.raises(ValidationError, match=r"invalid offset.*: must be an int in 0\.\.2147483647") as info:
        names.validate_shard(value, "offset")
    for text in (str(info.value), repr(info.value), info.value.message):
        assert len(text) < 200


@given(st.integers())
def test_shard_accepts_exactly_the_int32_range(value: int) -> None:
    if 0 <= value <= names.MAX_SHARD:
        assert names.validate_shard(value) == value
    else:
        with pytest.raises(ValidationError):
            names.validate_shard(value)


_name_alphabet = st.sampled_from(list(string.ascii_letters + string.digits + "-_./?#% ~é\u00a0\u0131K"))
_candidates = st.text(_name_alphabet, max_size=70) | st.text(max_size=70)


@pytest.mark.parametrize(("validate", "rule", "_argument"), VALIDATORS)
@given(value=_candidates)
def test_accepted_exactly_when_the_documented_rule_holds(
    validate: Any, rule: Any, _argument: str, value: str
) -> None:
    assert _accepts(validate, value) is rule(value)


@pytest.mark.parametrize(("validate", "_rule", "_argument"), VALIDATORS)
@given(
    prefix=st.text(st.sampled_from(list("abc")), min_size=2, max_size=5),
    bad=st.sampled_from(["/", "?", "#", "%", " "]) | st.characters(min_codepoint=128),
    suffix=st.text(st.sampled_from(list("abc")), min_size=2, max_size=5),
)
def test_reserved_and_non_ascii_characters_are_always_refused(
    validate: Any, _rule: Any, _argument: str, prefix: str, bad: str, suffix: str
) -> None:
    with pytest.raises(ValidationError):
        validate(prefix + bad + suffix)


@given(st.text(st.sampled_from(list(LOWER_DIGITS + "-")), min_size=3, max_size=63))
def test_every_valid_project_is_its_own_url_encoding(value: str) -> None:
    from urllib.parse import quote

    if project_rule(value):
        assert quote(names.validate_project(value), safe="") == value
