"""Signing against the official SDKs' vectors (byte for byte), plus properties."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from aiosls import signing
from aiosls.credentials import Credentials

VECTORS = json.loads((Path(__file__).parent / "signature_vectors.json").read_text())
PY_VECTORS: list[dict[str, Any]] = VECTORS["vectors"]
TEA_VECTORS: list[dict[str, Any]] = VECTORS["tea_gateway_vectors"]

# Headers the signer adds or that go on the wire but are never part of a signature.
_UNSIGNED_TRANSPORT_HEADERS = {"content-length", "accept", "user-agent"}


def _now(vector: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(vector["fixed_utc_time"].replace("Z", "+00:00"))


def _creds(vector: dict[str, Any]) -> Credentials:
    return Credentials(vector["access_key_id"], vector["access_key_secret"], vector["security_token"])


def _body(vector: dict[str, Any]) -> bytes:
    return vector["body"].encode() if vector["body"] is not None else b""


def _sign(vector: dict[str, Any], headers: dict[str, str]) -> dict[str, str]:
    version = vector["auth_version"]
    args = (vector["method"], vector["resource"], vector["query"], headers, _body(vector))
    if version == "v4":
        signing.sign_v4(*args, _creds(vector), _now(vector), region=vector["region"])
    else:
        digest = "hmac-sha256" if version == "v1-hmac-sha256" else "hmac-sha1"
        signing.sign_v1(*args, _creds(vector), _now(vector), digest=digest)
    return {k.lower(): v for k, v in headers.items()}


@pytest.mark.parametrize("vector", PY_VECTORS, ids=[v["id"] for v in PY_VECTORS])
def test_py_sdk_vectors_byte_for_byte(vector: dict[str, Any]) -> None:
    out = _sign(vector, dict(vector["headers_in"]))
    for name, value in vector["expected"].items():
        if vector["auth_version"] == "v1" and name.lower() == "x-log-date":
            # py copies Date into x-log-date *after* signing; we do not send that copy (see sign_v1).
            assert "x-log-date" not in out
            continue
        assert out[name.lower()] == value, name


@pytest.mark.parametrize("vector", PY_VECTORS, ids=[v["id"] for v in PY_VECTORS])
def test_py_sdk_vectors_intermediate_strings(vector: dict[str, Any]) -> None:
    headers = {k.lower(): v for k, v in vector["headers_out"].items()}
    inter = vector["intermediate"]
    if vector["auth_version"] == "v4":
        canonical, signed = signing.v4_canonical_request(
            vector["method"], vector["resource"], vector["query"], headers
        )
        assert canonical == inter["canonical_request"]
        assert signed == inter["signed_headers"]
    else:
        # The verifying side must ignore the unsigned x-log-date that the py SDK sends (V1 never signs it).
        sts = signing.v1_string_to_sign(vector["method"], vector["resource"], vector["query"], headers)
        assert sts == inter["string_to_sign"]


@pytest.mark.parametrize("vector", TEA_VECTORS, ids=[v["id"] for v in TEA_VECTORS])
def test_tea_gateway_vectors_verify(vector: dict[str, Any]) -> None:
    """What the Tea SDK sends must verify with our canonicalisers (the emulator relies on this)."""
    headers = dict(vector["headers_out"])
    auth = headers["authorization"]
    if vector["auth_version"] == "v4":
        canonical, _ = signing.v4_canonical_request(
            vector["method"], vector["resource"], vector["query"], headers
        )
        sig = signing.v4_signature(
            vector["access_key_secret"], vector["region"], headers["x-log-date"], canonical
        )
        assert auth.endswith(f",Signature={sig}")
    else:
        sts = signing.v1_string_to_sign(vector["method"], vector["resource"], vector["query"], headers)
        sig = signing.v1_signature(vector["access_key_secret"], sts, "hmac-sha256")
        assert auth == f"LOG {vector['access_key_id']}:{sig}"


@pytest.mark.parametrize("vector", TEA_VECTORS, ids=[v["id"] for v in TEA_VECTORS])
def test_tea_gateway_vectors_reproduced(vector: dict[str, Any]) -> None:
    """Signing the Tea SDK's unsigned headers reproduces its expected headers exactly."""
    signed_by_us = {
        "authorization",
        "date",
        "x-log-signaturemethod",
        "content-md5",
        "x-log-date",
        "x-log-content-sha256",
        "x-acs-security-token",
    }
    headers = {k: v for k, v in vector["headers_out"].items() if k not in signed_by_us}
    if vector["auth_version"] != "v4":
        headers["content-md5"] = ""  # Tea sends an empty Content-MD5 on bodiless requests
        if vector["body"]:
            del headers["content-md5"]
    out = _sign(vector, headers)
    for name, value in vector["expected"].items():
        assert out[name.lower()] == value, name


def test_v1_string_to_sign_spec_example() -> None:
    headers = {
        "x-log-apiversion": "0.6.0",
        "x-log-bodyrawsize": "0",
        "x-log-signaturemethod": "hmac-sha1",
        "Date": "Thu, 05 Sep 2024 08:30:15 GMT",
        "x-log-date": "ignored",
        "x-log-meta-foo": "ignored",
    }
    sts = signing.v1_string_to_sign("GET", "/logstores/app-log_1/consumergroups/cg-main_1", {}, headers)
    assert sts == (
        "GET\n\n\nThu, 05 Sep 2024 08:30:15 GMT\nx-log-apiversion:0.6.0\n"
        "x-log-bodyrawsize:0\nx-log-signaturemethod:hmac-sha1\n"
        "/logstores/app-log_1/consumergroups/cg-main_1"
    )
    sig = signing.v1_signature("exampleSecret/0001+abcdEFGH", sts)
    assert sig == "m4/yQYshQvrdAWOCrYJRvTkoGJg="


def test_v4_canonical_query_encoding() -> None:
    q = signing.v4_canonical_query(
        {"type": "cursor_time", "cursor": "MTcy+MzA5/NDEz==", "empty": "", "sp": "a b~"}
    )
    assert q == "cursor=MTcy%2BMzA5%2FNDEz%3D%3D&empty&sp=a%20b~&type=cursor_time"


def test_dates_are_english_and_utc() -> None:
    t = datetime(2024, 9, 5, 16, 30, 15, tzinfo=timezone(timedelta(hours=8)))
    assert signing.http_date(t) == "Thu, 05 Sep 2024 08:30:15 GMT"
    assert signing.v4_timestamp(t) == "20240905T083015Z"
    with pytest.raises(ValueError, match="aware"):
        signing.http_date(datetime(2024, 9, 5))


def test_body_digests() -> None:
    assert signing.content_md5(b"[0, 1]") == "264884439B70AB09A86BC848421C6DE6"
    assert signing.content_sha256(b"") == signing.EMPTY_SHA256
    assert signing.content_sha256(b"x") != signing.EMPTY_SHA256


_params = st.dictionaries(
    st.text(alphabet=st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8),
    st.text(max_size=20),
    max_size=5,
)
# Credentials refuse control and non-ASCII characters, so secrets are printable ASCII.
_secret = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40)
_when = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC))


@given(params=_params, secret=_secret, now=_when, body=st.binary(max_size=64))
def test_v4_sign_then_verify_roundtrip(
    params: dict[str, str], secret: str, now: datetime, body: bytes
) -> None:
    headers = {"Host": "p.example.com", "x-log-apiversion": "0.6.0", "x-log-bodyrawsize": str(len(body))}
    signing.sign_v4(
        "POST", "/logstores/ls", params, headers, body, Credentials("ak", secret), now, region="cn-hangzhou"
    )
    canonical, _ = signing.v4_canonical_request("POST", "/logstores/ls", params, headers)
    sig = signing.v4_signature(secret, "cn-hangzhou", headers["x-log-date"], canonical)
    assert headers["Authorization"].endswith(sig)
    # Any change to a signed value changes the signature.
    tampered = dict(params, extra="1")
    canonical2, _ = signing.v4_canonical_request("POST", "/logstores/ls", tampered, headers)
    assert signing.v4_signature(secret, "cn-hangzhou", headers["x-log-date"], canonical2) != sig


@given(
    params=_params,
    secret=_secret,
    now=_when,
    body=st.binary(max_size=64),
    digest=st.sampled_from(["hmac-sha1", "hmac-sha256"]),
)
def test_v1_sign_then_verify_roundtrip(
    params: dict[str, str], secret: str, now: datetime, body: bytes, digest: signing.V1Digest
) -> None:
    headers = {"x-log-apiversion": "0.6.0", "x-log-bodyrawsize": str(len(body))}
    signing.sign_v1(
        "GET", "/logstores", params, headers, body, Credentials("ak", secret, "tok"), now, digest=digest
    )
    sts = signing.v1_string_to_sign("GET", "/logstores", params, headers)
    assert headers["Authorization"] == f"LOG ak:{signing.v1_signature(secret, sts, digest)}"
    assert "x-acs-security-token:tok\n" in sts
    assert ("Content-MD5" in headers) == bool(body)


@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
    st.integers(min_value=-3, max_value=3),
)
@example(datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC), 0)  # int(timestamp()) keys collide here
def test_date_caches_never_serve_a_neighbouring_second(first: datetime, step: int) -> None:
    """The per-second caches key on exact fields: .999999 and the next second never collide."""
    second = first.replace(microsecond=999_999) + timedelta(microseconds=1 + step * 1_000_000)
    for when in (first, first.replace(microsecond=999_999), second):
        signing.v4_timestamp(first)  # prime the caches with a neighbour
        signing.http_date(first)
        assert signing.v4_timestamp(when) == when.strftime("%Y%m%dT%H%M%SZ")
        expected = f"{when.strftime('%a, %d %b')} {when.year:04d} {when.strftime('%H:%M:%S')} GMT"
        assert signing.http_date(when) == expected
