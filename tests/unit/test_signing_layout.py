"""The signers' cached header layout (plain dicts, the client's path) gives exactly the strings
of the general path (any other mapping, e.g. the emulator's), whatever the names and values."""

from __future__ import annotations

from types import MappingProxyType

from hypothesis import given
from hypothesis import strategies as st

from aiosls import signing

_NAMES = st.sampled_from(
    [
        "Host",
        "host",
        "HOST",
        "Date",
        "date",
        "Content-MD5",
        "content-md5",
        "Content-Type",
        "CONTENT-TYPE",
        "User-Agent",
        "x-log-apiversion",
        "X-Log-ApiVersion",
        "x-log-bodyrawsize",
        "x-log-date",
        "x-log-content-sha256",
        "X-LOG-CONTENT-SHA256",
        "x-log-meta-foo",
        "x-log-signaturemethod",
        "x-acs-security-token",
        "X-Acs-Security-Token",
        "Authorization",
    ]
) | st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
_VALUES = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=20)
_HEADERS = st.dictionaries(_NAMES, _VALUES, max_size=10)
_PARAMS = st.dictionaries(st.sampled_from(["shard", "type", "from", "a b"]), _VALUES, max_size=3)


@given(headers=_HEADERS, params=_PARAMS)
def test_v4_canonical_request_is_the_same_through_the_cached_layout(
    headers: dict[str, str], params: dict[str, str]
) -> None:
    fast = signing.v4_canonical_request("GET", "/logstores/x", params, headers)
    general = signing.v4_canonical_request("GET", "/logstores/x", params, MappingProxyType(headers))
    assert fast == general


@given(headers=_HEADERS, params=_PARAMS)
def test_v1_string_to_sign_is_the_same_through_the_cached_layout(
    headers: dict[str, str], params: dict[str, str]
) -> None:
    fast = signing.v1_string_to_sign("POST", "/logstores/x", params, headers)
    general = signing.v1_string_to_sign("POST", "/logstores/x", params, MappingProxyType(headers))
    assert fast == general


def test_the_last_spelling_of_a_name_wins_in_both_paths() -> None:
    headers = {"X-Log-Date": "first", "x-log-date": "second", "Host": "h"}
    canonical, signed = signing.v4_canonical_request("GET", "/", {}, headers)
    assert "x-log-date:second\n" in canonical
    assert signed == "host;x-log-date"
    assert (canonical, signed) == signing.v4_canonical_request("GET", "/", {}, MappingProxyType(headers))
