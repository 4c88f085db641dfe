"""Our requests, re-signed by the official SDK's own signer, get the same Authorization.

This is the check an independent verifying server makes: it takes the method, path, decoded
query, headers and body we sent, and recomputes the signature with aliyun-log-python-sdk's
``AuthV1``/``AuthV4``. The vectors pin our signer for fixed inputs; this pins what we *send*.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiosls import _sansio
from aiosls.credentials import Credentials
from aiosls.endpoint import parse_endpoint

auth = pytest.importorskip("aliyun.log.auth")
official_credentials = pytest.importorskip("aliyun.log.credentials")

NOW = datetime(2024, 9, 5, 8, 30, 15, tzinfo=UTC)

OPERATIONS = {
    "get-all": _sansio.get_checkpoint("my-project", "app-log", "cg-main"),
    "get-shard": _sansio.get_checkpoint("my-project", "app-log", "cg-main", 3),
    "update": _sansio.update_checkpoint(
        "my-project", "app-log", "cg-main", 1, "MTcy+MzA5/NDEz==", consumer="worker 1", force_success=False
    ),
    "heartbeat": _sansio.heartbeat("my-project", "app-log", "cg-main", "c-1", [0, 1]),
    "list-logstores": _sansio.list_logstores("my-project", offset=500, name_filter="a b+c"),
    "cursor-time": _sansio.get_cursor_time("my-project", "app-log", 2, "MTcy+MzA5/NDEz=="),
    "delete-group": _sansio.delete_consumer_group("my-project", "app-log", "cg-main"),
}


def _received(request: Any) -> tuple[str, dict[str, str]]:
    """What a server sees: the path and the form-decoded query."""
    parts = urlsplit(request.url)
    return parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))


def _official(version: str, request: Any, creds: Credentials, region: str, monkeypatch: Any) -> str:
    """Recompute Authorization with the official signer from what we sent."""
    path, params = _received(request)
    signing_headers = {
        "Authorization",
        "Date",
        "Content-MD5",
        "x-log-date",
        "x-log-content-sha256",
        "x-log-signaturemethod",
        "x-acs-security-token",
    }
    headers = {k: v for k, v in request.headers.items() if k not in signing_headers}
    provider = official_credentials.StaticCredentialsProvider(
        creds.access_key_id, creds.access_key_secret, creds.security_token or ""
    )
    if version == "v1":
        monkeypatch.setattr(auth.AuthV1, "_getGMT", staticmethod(lambda: request.headers["Date"]))
        auth.AuthV1(provider).sign_request(request.method, path, params, headers, request.body)
        return str(headers["Authorization"])
    return str(
        auth.AuthV4(provider, region)._do_sign_request(
            request.method, path, params, headers, request.body, request.headers["x-log-date"]
        )
    )


@pytest.mark.parametrize("version", ["v1", "v4"])
@pytest.mark.parametrize("token", [None, "CAIS-token/abc+def=="])
@pytest.mark.parametrize("endpoint", ["cn-hangzhou.log.aliyuncs.com", "http://127.0.0.1:8080"])
@pytest.mark.parametrize("name", list(OPERATIONS))
def test_official_signer_agrees(version, token, endpoint, name, monkeypatch) -> None:
    creds = Credentials("LTAIexampleKeyId0001", "exampleSecret/0001+abcdEFGH", token)
    request = _sansio.build_request(
        OPERATIONS[name],
        endpoint=parse_endpoint(endpoint),
        credentials=creds,
        now=NOW,
        signature_version=version,
        region="cn-hangzhou",
        user_agent="aiosls-test",
    )
    assert request.headers["Authorization"] == _official(version, request, creds, "cn-hangzhou", monkeypatch)


@settings(max_examples=60, deadline=None)
@given(
    consumer=st.text(max_size=30).filter(lambda c: all(ord(ch) >= 32 for ch in c)),
    checkpoint=st.text(min_size=1, max_size=40),
    shard=st.integers(min_value=0, max_value=10**6),
    version=st.sampled_from(["v1", "v4"]),
)
def test_official_signer_agrees_for_any_consumer_and_cursor(consumer, checkpoint, shard, version) -> None:
    creds = Credentials("LTAIexampleKeyId0001", "exampleSecret/0001+abcdEFGH")
    op = _sansio.update_checkpoint("my-project", "app-log", "cg-main", shard, checkpoint, consumer=consumer)
    request = _sansio.build_request(
        op,
        endpoint=parse_endpoint("cn-hangzhou.log.aliyuncs.com"),
        credentials=creds,
        now=NOW,
        signature_version=version,
        region="cn-hangzhou",
        user_agent="aiosls-test",
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert request.headers["Authorization"] == _official(
            version, request, creds, "cn-hangzhou", monkeypatch
        )
