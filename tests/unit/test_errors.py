"""The error hierarchy: rendering, pickling, builtin mix-ins, and the public surface of ``aiosls``."""

from __future__ import annotations

import pickle
import types

import pytest

import aiosls
from aiosls import errors
from aiosls.errors import (
    AlreadyExistsError,
    AuthError,
    ClientError,
    ClockSkewError,
    ConnectError,
    NotFoundError,
    ReadTimeout,
    ResponseParseError,
    ServiceClosedError,
    SlsError,
    ThrottlingError,
    TransientError,
    TransportError,
    ValidationError,
    error_class,
)

ERROR_CLASSES = [
    getattr(errors, name)
    for name in errors.__all__
    if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), BaseException)
]
SLS_ERROR_CLASSES = [cls for cls in ERROR_CLASSES if issubclass(cls, SlsError)]


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        (
            {"error_code": "ConsumerGroupNotExist", "status": 404, "request_id": "5F3A6B60BB6EE39764D458B5"},
            "ConsumerGroupNotExist (404, request 5F3A6B60BB6EE39764D458B5): consumer group cg does not exist",
        ),
        ({"status": 502}, "(502): consumer group cg does not exist"),
        ({"request_id": "RID"}, "(request RID): consumer group cg does not exist"),
        ({"error_code": "ParameterInvalid"}, "ParameterInvalid: consumer group cg does not exist"),
        ({}, "consumer group cg does not exist"),
    ],
)
def test_str_format(kwargs: dict[str, object], text: str) -> None:
    err = NotFoundError("consumer group cg does not exist", **kwargs)  # type: ignore[arg-type]
    assert str(err) == text
    err.attempts = 3
    assert str(err) == text + " after 3 attempts"


def test_repr_and_attributes() -> None:
    err = ThrottlingError("slow down", error_code="ReadQuotaExceed", status=403, request_id="R1")
    assert (
        repr(err) == "ThrottlingError('slow down', error_code='ReadQuotaExceed', status=403, request_id='R1')"
    )
    assert (err.message, err.error_code, err.status, err.request_id, err.attempts) == (
        "slow down",
        "ReadQuotaExceed",
        403,
        "R1",
        1,
    )
    assert err.args == ("slow down",)


@pytest.mark.parametrize("cls", SLS_ERROR_CLASSES, ids=lambda c: c.__name__)
def test_pickling_round_trip_keeps_attributes(cls: type[SlsError]) -> None:
    err = cls("boom", error_code="Code", status=500, request_id="RID")
    err.attempts = 4
    err.add_note("while reading checkpoints")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert (back.message, back.error_code, back.status, back.request_id, back.attempts) == (
        "boom",
        "Code",
        500,
        "RID",
        4,
    )
    assert back.__notes__ == ["while reading checkpoints"]
    assert str(back) == str(err)
    assert repr(back) == repr(err)


def test_builtin_mix_ins() -> None:
    assert issubclass(ValidationError, ValueError)
    assert issubclass(ReadTimeout, TimeoutError)
    assert not issubclass(ConnectError, TimeoutError)
    assert issubclass(ServiceClosedError, RuntimeError)
    assert not issubclass(ServiceClosedError, SlsError)
    with pytest.raises(TimeoutError):
        raise ReadTimeout("no answer in 10 s")
    with pytest.raises(ValueError, match="bad name"):
        raise ValidationError("bad name", error_code="ParameterInvalid")
    timeout = ReadTimeout("no answer")
    assert str(timeout) == "no answer"
    assert timeout.status is None


@pytest.mark.parametrize(
    ("cls", "parent"),
    [
        (ThrottlingError, SlsError),
        (TransientError, SlsError),
        (TransportError, TransientError),
        (ConnectError, TransportError),
        (ReadTimeout, TransportError),
        (ClientError, SlsError),
        (AuthError, ClientError),
        (NotFoundError, ClientError),
        (AlreadyExistsError, ClientError),
        (ClockSkewError, ClientError),
        (ValidationError, ClientError),
        (ResponseParseError, SlsError),
    ],
)
def test_the_documented_tree(cls: type[SlsError], parent: type[SlsError]) -> None:
    assert cls.__mro__[1] is parent
    assert cls.__name__ in errors.__doc__


def test_retry_families_do_not_overlap() -> None:
    families = (ThrottlingError, TransientError, ClientError, ResponseParseError)
    for cls in SLS_ERROR_CLASSES:
        assert sum(issubclass(cls, f) for f in families) == (cls is not SlsError)


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (403, "ReadQuotaExceed", ThrottlingError),
        (403, "readquotaexceed", ThrottlingError),
        (500, "ConsumerGroupNotExist", NotFoundError),  # the code wins over the status
        (404, None, NotFoundError),
        (404, "", NotFoundError),
        (403, "ConsumerGroupQuotaExceed", ClientError),
        (429, None, ThrottlingError),
        (504, None, TransientError),
        (401, None, AuthError),
        (499, None, ClientError),
        (200, None, SlsError),
        (600, None, SlsError),
    ],
)
def test_error_class(status: int, code: str | None, cls: type[SlsError]) -> None:
    assert error_class(status, code) is cls


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_public_error_class_is_exported_from_aiosls(cls: type[BaseException]) -> None:
    assert cls.__name__ in aiosls.__all__
    assert getattr(aiosls, cls.__name__) is cls


def _isort_key(name: str) -> tuple[int, str]:
    # The isort-style order the package uses: CONSTANTS, then Classes, then the rest.
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_is_honest() -> None:
    exported = aiosls.__all__
    assert len(exported) == len(set(exported))
    for name in exported:
        assert hasattr(aiosls, name), name
    assert exported == sorted(exported, key=_isort_key)
    public = {
        name
        for name, value in vars(aiosls).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)  # submodules (aiosls.errors, ...)
        and name != "annotations"  # from __future__ import annotations
    }
    assert public | {"__version__"} == set(exported)


def test_submodule_all_lists_exist() -> None:
    from aiosls import _sansio, credentials, endpoint, models, names, retry, signing

    for module in (errors, _sansio, credentials, endpoint, models, names, retry, signing):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


# --- server text in errors (issue 11 item 5) ------------------------------------------------------


def _answer(status: int, body: object, request_id: str = "5F3A") -> aiosls.HttpResponse:
    import json

    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return aiosls.HttpResponse(status, {"x-log-requestid": request_id}, raw)


def _all_text(err: SlsError) -> list[str]:
    return [str(err), repr(err), err.message, str(err.error_code), str(err.request_id), *map(str, err.args)]


@pytest.mark.parametrize(
    "hostile",
    [
        "\x1b[2J\x1b[31mReadQuotaExceed",
        "Throttled\nFAKE: LOG LINE",
        "x\r\n2026-01-01 WARNING aiosls.retry forged",
        "\u202eesrever",
    ],
)
def test_error_code_message_and_request_id_are_escaped(hostile: str) -> None:
    from aiosls import _sansio

    err = _sansio.error_from_response(
        _answer(403, {"errorCode": hostile, "errorMessage": hostile}, request_id=hostile), "GetCheckPoint"
    )
    for text in _all_text(err):
        assert "\x1b" not in text
        assert "\n" not in text
        assert "\r" not in text
        assert "\u202e" not in text
    assert err.error_code is not None
    assert err.error_code.isprintable()
    assert err.request_id is not None
    assert err.request_id.isprintable()


def test_a_100_kb_error_code_is_capped_and_still_a_code() -> None:
    from aiosls import _sansio

    code = "Quota" + "X" * 100_000
    err = _sansio.error_from_response(
        _answer(500, {"errorCode": code, "errorMessage": "m" * 100_000}, request_id="r" * 100_000)
    )
    assert err.error_code is not None
    assert err.error_code.startswith("QuotaXXX")
    assert len(err.error_code) <= 131
    assert err.request_id is not None
    assert len(err.request_id) <= 131
    assert len(err.message) <= 1003
    assert len(str(err)) < 1400
    assert type(err) is TransientError  # classified by the status, as an unknown code is


def test_real_codes_survive_escaping_and_classification() -> None:
    from aiosls import _sansio

    err = _sansio.error_from_response(
        _answer(403, {"errorCode": "ReadQuotaExceed", "errorMessage": "slow down"})
    )
    assert type(err) is ThrottlingError
    assert (err.error_code, err.message, err.request_id) == ("ReadQuotaExceed", "slow down", "5F3A")


def test_parse_errors_escape_the_request_id_and_the_body_excerpt() -> None:
    from aiosls import _sansio

    with pytest.raises(ResponseParseError) as info:
        _sansio.parse_checkpoints(_answer(200, b"\x1b[31m\nnot json", request_id="id\nFAKE"))
    for text in _all_text(info.value):
        assert "\x1b" not in text
        assert "\n" not in text
