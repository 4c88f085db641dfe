"""Endpoint parsing (docs/protocol.md, "Hosts"): where to connect, what Host to send, which V4 region."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiosls.endpoint import Endpoint, derive_region, parse_endpoint


@pytest.mark.parametrize(
    ("text", "endpoint"),
    [
        ("cn-hangzhou.log.aliyuncs.com", Endpoint("https", "cn-hangzhou.log.aliyuncs.com")),
        ("  CN-Hangzhou.LOG.aliyuncs.com/  ", Endpoint("https", "cn-hangzhou.log.aliyuncs.com")),
        ("https://cn-hangzhou.log.aliyuncs.com", Endpoint("https", "cn-hangzhou.log.aliyuncs.com")),
        ("HTTP://sls.example.com:8080", Endpoint("http", "sls.example.com", 8080)),
        ("http://127.0.0.1:8080", Endpoint("http", "127.0.0.1", 8080)),
        ("127.0.0.1", Endpoint("https", "127.0.0.1")),
        ("http://[::1]:9000", Endpoint("http", "::1", 9000)),
        ("[::1]", Endpoint("https", "::1")),
        ("::1", Endpoint("https", "::1")),
        ("localhost:81", Endpoint("https", "localhost", 81)),
        ("https://host:443", Endpoint("https", "host", 443)),
    ],
)
def test_parse_endpoint(text: str, endpoint: Endpoint) -> None:
    assert parse_endpoint(text) == endpoint


@pytest.mark.parametrize(
    ("text", "direct", "base_url", "host_header", "shown"),
    [
        (
            "cn-hangzhou.log.aliyuncs.com",
            False,
            "https://p1.cn-hangzhou.log.aliyuncs.com",
            "p1.cn-hangzhou.log.aliyuncs.com",
            "https://cn-hangzhou.log.aliyuncs.com",
        ),
        ("http://h.example:80", False, "http://p1.h.example", "p1.h.example", "http://h.example"),
        ("https://h.example:443", False, "https://p1.h.example", "p1.h.example", "https://h.example"),
        (
            "http://h.example:443",
            False,
            "http://p1.h.example:443",
            "p1.h.example:443",
            "http://h.example:443",
        ),
        (
            "http://127.0.0.1:8080",
            True,
            "http://127.0.0.1:8080",
            "p1.127.0.0.1:8080",
            "http://127.0.0.1:8080",
        ),
        ("http://[::1]:9000", True, "http://[::1]:9000", "p1.[::1]:9000", "http://[::1]:9000"),
        ("[2001:db8::1]", True, "https://[2001:db8::1]", "p1.[2001:db8::1]", "https://[2001:db8::1]"),
        ("localhost:81", True, "https://localhost:81", "p1.localhost:81", "https://localhost:81"),
    ],
)
def test_connect_host_vs_host_header(
    text: str, direct: bool, base_url: str, host_header: str, shown: str
) -> None:
    ep = parse_endpoint(text)
    assert ep.direct is direct
    assert ep.base_url("p1") == base_url
    assert ep.host_header("p1") == host_header
    assert str(ep) == shown


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "https://",
        "ftp://host",
        "://host",
        "host/path",
        "https://host/path",
        "host?x=1",
        "host#frag",
        "user@host",
        "user:pw@host",
        "ho st",
        "host:",
        "host:0",
        "host:65536",
        "host:-1",
        "host:http",
        "host:\uff18\uff10",  # fullwidth digits
        "host:\u00b2",  # superscript two
        "[::1",
        "[::1]x",
        "[::1]:",
        "[::1]:99999",
        "[not-ip]",
        "1:2:3",
        "ho_st.example",
        "host..example",
        ".host",
        "héllo.example",
    ],
)
def test_bad_endpoints_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        parse_endpoint(text)


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("cn-hangzhou.log.aliyuncs.com", "cn-hangzhou"),
        ("cn-shanghai-intranet.log.aliyuncs.com", "cn-shanghai"),
        ("cn-hangzhou-share.log.aliyuncs.com", "cn-hangzhou"),
        ("cn-beijing-vpc.log.aliyuncs.com", "cn-beijing"),
        ("cn-shanghai-finance-1.log.aliyuncs.com", "cn-shanghai-finance-1"),
        ("ap-southeast-1-intranet.log.aliyuncs.com", "ap-southeast-1"),
        ("cn-hangzhou-corp.sls.aliyuncs.com", "cn-hangzhou-corp"),
        ("us-west-1.sls.aliyuncs.com", "us-west-1"),
        ("log-global.aliyuncs.com", None),
        ("log-global.log.aliyuncs.com", None),
        ("sls.example.com", None),
        ("127.0.0.1", None),
        ("::1", None),
        ("localhost", None),
        (".log.aliyuncs.com", None),
        ("-intranet.log.aliyuncs.com", None),
        ("my-project.cn-hangzhou.log.aliyuncs.com", None),
        ("log.aliyuncs.com", None),
    ],
)
def test_derive_region(host: str, region: str | None) -> None:
    assert derive_region(host) == region


def test_derive_region_from_a_parsed_endpoint() -> None:
    assert (
        derive_region(parse_endpoint("HTTPS://CN-Shanghai-Intranet.Log.Aliyuncs.com:443").host)
        == "cn-shanghai"
    )


_label = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-"), min_size=1, max_size=12)


@given(
    scheme=st.sampled_from(["", "http://", "https://", "HTTPS://"]),
    labels=st.lists(_label, min_size=1, max_size=4),
    port=st.none() | st.integers(1, 65535),
)
def test_parse_round_trips_through_str(scheme: str, labels: list[str], port: int | None) -> None:
    host = ".".join(labels)
    text = scheme + host + ("" if port is None else f":{port}")
    ep = parse_endpoint(text)
    assert ep.scheme == (scheme[:-3].lower() or "https")
    assert ep.host == host
    assert ep.port == port
    assert parse_endpoint(str(ep)).base_url("p") == ep.base_url("p")
    assert ep.host_header("p").startswith("p.")


# --- hostile endpoints (issue 11 item 6) ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "http://[::1%\r\nX-Injected:yes]",
        "http://[::1%\nX]:80",
        "[fe80::1%\x00]",
        "[fe80::1%eth 0]",
        "[fe80::1%]",
        "fe80::1%\r\n",
        "[fe80::1%" + "a" * 65 + "]",
        "host\t.example",
        "host:" + "9" * 5000,
    ],
)
def test_control_characters_and_bad_zone_ids_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="endpoint") as info:
        parse_endpoint(text)
    assert "\r" not in str(info.value)
    assert "\n" not in str(info.value)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    ("text", "host"), [("[fe80::1%eth0]", "fe80::1%eth0"), ("http://[fe80::1%25]:80", "fe80::1%25")]
)
def test_well_formed_zone_ids_are_kept(text: str, host: str) -> None:
    assert parse_endpoint(text).host == host


@pytest.mark.parametrize(
    "text",
    [
        "https://admin:hunter2@sls.example.com",
        "admin:hunter2@sls.example.com",
        "http://admin:hunter2@[::1]:80",
        "ftp://admin:hunter2@host",
        "https://admin:hunter2@host/path",
        "https://admin:hunter2@ho st",
    ],
)
def test_endpoint_errors_never_echo_userinfo(text: str) -> None:
    with pytest.raises(ValueError, match="endpoint") as info:
        parse_endpoint(text)
    err: BaseException | None = info.value
    while err is not None:  # nor anywhere on the chain
        assert "hunter2" not in str(err)
        assert "hunter2" not in repr(err.args)
        err = err.__cause__ or err.__context__
    assert "***@" in str(info.value)


def test_redact_endpoint() -> None:
    from aiosls.endpoint import redact_endpoint

    assert redact_endpoint("https://u:p@h:1/x") == "'https://***@h:1/x'"
    assert redact_endpoint("u:p@a@h") == "'***@h'"
    assert redact_endpoint("h/u@x") == "'h/u@x'"  # an @ past the host is not userinfo
    assert redact_endpoint("\x1b" + "x" * 500) == repr("\x1b" + "x" * 99 + "...")
    assert redact_endpoint(42) == "'42'"
