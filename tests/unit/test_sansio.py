"""The pure protocol core: builders, request building, error mapping and parsing (no I/O).

Responses come from ``tests/samples/<op>/<case>.json`` (status and headers, with a note saying
where the sample comes from) plus ``<case>.body`` (the raw body bytes), after gidgethub's
``tests/samples`` and ``sample()`` helper.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs
import pytest
from helpers import T0
from hypothesis import given, settings
from hypothesis import strategies as st

from aiosls import (
    AlreadyExistsError,
    AuthError,
    ClientError,
    ClockSkewError,
    ConsumerGroup,
    Credentials,
    HttpRequest,
    HttpResponse,
    NotFoundError,
    ResponseParseError,
    Shard,
    ShardCheckpoint,
    SlsError,
    ThrottlingError,
    TransientError,
    ValidationError,
    _sansio,
    signing,
)
from aiosls._serde import CONVERTER
from aiosls._text import safe_text
from aiosls.endpoint import parse_endpoint

SAMPLES = Path(__file__).parent / "samples"
CREDS = Credentials("LTAIexampleKeyId0001", "exampleSecret/0001+abcdEFGH")
STS = Credentials("STS.exampleKeyId", "stsSecret/0001", "sts-token-value")
RID = "5B0A6B60BB6EE39764D458B5"


def sample(op: str, case: str) -> HttpResponse:
    """The recorded response ``tests/samples/{op}/{case}.json`` + ``.body``."""
    meta = json.loads((SAMPLES / op / f"{case}.json").read_text())
    return HttpResponse(meta["status"], meta["headers"], (SAMPLES / op / f"{case}.body").read_bytes())


def all_samples() -> list[tuple[str, str]]:
    return sorted((p.parent.name, p.stem) for p in SAMPLES.glob("*/*.json"))


def build(
    op: _sansio.Operation, endpoint: str = "cn-hangzhou.log.aliyuncs.com", **kwargs: Any
) -> HttpRequest:
    kwargs.setdefault("credentials", CREDS)
    kwargs.setdefault("signature_version", "v1")
    kwargs.setdefault("region", "cn-hangzhou")
    return _sansio.build_request(
        op, endpoint=parse_endpoint(endpoint), now=T0, user_agent="aiosls-tests/1", **kwargs
    )


def lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def body_json(op: _sansio.Operation) -> Any:
    return json.loads(op.body)


# --- builders -------------------------------------------------------------------------------------


def test_get_checkpoint_all_shards_sends_no_shard_parameter() -> None:
    op = _sansio.get_checkpoint("my-project", "app-log_1", "cg-main_1")
    assert op == _sansio.Operation(
        "GetCheckPoint",
        "GET",
        "my-project",
        "/logstores/app-log_1/consumergroups/cg-main_1",
        {},
        b"",
        idempotent=True,
        logstore="app-log_1",
    )


@pytest.mark.parametrize("shard", [0, 7, 2**31 - 1])
def test_get_checkpoint_one_shard(shard: int) -> None:
    op = _sansio.get_checkpoint("my-project", "app-log", "cg", shard)
    assert op.params == {"shard": str(shard)}
    assert op.body == b""


def test_update_checkpoint() -> None:
    op = _sansio.update_checkpoint(
        "my-project", "app-log", "cg", 3, "MTUyNDE1NTM3OTM3MzkwODQ5Ng==", consumer="worker 1"
    )
    assert (op.name, op.method, op.path) == (
        "ConsumerGroupUpdateCheckPoint",
        "POST",
        "/logstores/app-log/consumergroups/cg",
    )
    assert op.params == {"type": "checkpoint", "consumer": "worker 1", "forceSuccess": "true"}
    assert body_json(op) == {"shard": 3, "checkpoint": "MTUyNDE1NTM3OTM3MzkwODQ5Ng=="}
    assert op.idempotent is True
    assert op.logstore == "app-log"


def test_update_checkpoint_force_success_is_lowercase_and_consumer_always_sent() -> None:
    op = _sansio.update_checkpoint("my-project", "app-log", "cg", 0, "Y3Vy", force_success=False)
    assert op.params == {"type": "checkpoint", "consumer": "", "forceSuccess": "false"}


@pytest.mark.parametrize("checkpoint", ["", None, 5, b"MTU="])
def test_update_checkpoint_rejects_a_bad_cursor(checkpoint: Any) -> None:
    with pytest.raises(ValidationError, match="checkpoint") as info:
        _sansio.update_checkpoint("my-project", "app-log", "cg", 0, checkpoint)
    assert info.value.error_code == "ParameterInvalid"


@pytest.mark.parametrize("consumer", [None, 5, "x" * 257, "bad\nname", "tab\there"])
def test_update_checkpoint_rejects_a_bad_consumer(consumer: Any) -> None:
    with pytest.raises(ValidationError, match="consumer"):
        _sansio.update_checkpoint("my-project", "app-log", "cg", 0, "Y3Vy", consumer=consumer)


def test_heartbeat() -> None:
    op = _sansio.heartbeat("my-project", "app-log", "cg", "worker-1", iter([0, 1]))
    assert (op.method, op.path) == ("POST", "/logstores/app-log/consumergroups/cg")
    assert op.params == {"type": "heartbeat", "consumer": "worker-1"}
    assert op.body == b"[0,1]"
    assert _sansio.heartbeat("my-project", "app-log", "cg", "w", []).body == b"[]"


@pytest.mark.parametrize(("consumer", "shards"), [("", [0]), ("w", [-1]), ("w", [True]), ("w", ["0"])])
def test_heartbeat_rejects_bad_arguments(consumer: str, shards: list[Any]) -> None:
    with pytest.raises(ValidationError):
        _sansio.heartbeat("my-project", "app-log", "cg", consumer, shards)


def test_create_consumer_group_is_not_idempotent() -> None:
    op = _sansio.create_consumer_group("my-project", "app-log", "cg", timeout=60, order=True)
    assert (op.method, op.path, op.params) == ("POST", "/logstores/app-log/consumergroups", {})
    assert body_json(op) == {"consumerGroup": "cg", "timeout": 60, "order": True}
    assert op.idempotent is False


@pytest.mark.parametrize("timeout", [0, -1, 86401, True, "60", 1.5, None])
def test_consumer_group_timeout_is_checked(timeout: Any) -> None:
    with pytest.raises(ValidationError, match="timeout"):
        _sansio.create_consumer_group("my-project", "app-log", "cg", timeout=timeout)


def test_update_consumer_group_sends_only_given_keys() -> None:
    op = _sansio.update_consumer_group("my-project", "app-log", "cg", timeout=30)
    assert (op.method, op.path) == ("PUT", "/logstores/app-log/consumergroups/cg")
    assert body_json(op) == {"timeout": 30}
    assert body_json(_sansio.update_consumer_group("my-project", "app-log", "cg", order=False)) == {
        "order": False
    }
    both = _sansio.update_consumer_group("my-project", "app-log", "cg", timeout=86400, order=True)
    assert body_json(both) == {"order": True, "timeout": 86400}
    with pytest.raises(ValidationError, match="timeout and/or order"):
        _sansio.update_consumer_group("my-project", "app-log", "cg")


def test_simple_builders() -> None:
    delete = _sansio.delete_consumer_group("my-project", "app-log", "cg")
    assert (delete.method, delete.path, delete.body, delete.idempotent) == (
        "DELETE",
        "/logstores/app-log/consumergroups/cg",
        b"",
        True,
    )
    groups = _sansio.list_consumer_groups("my-project", "app-log")
    assert (groups.name, groups.method, groups.path) == (
        "ListConsumerGroup",
        "GET",
        "/logstores/app-log/consumergroups",
    )
    shards = _sansio.list_shards("my-project", "app-log")
    assert (shards.name, shards.method, shards.path) == ("ListShards", "GET", "/logstores/app-log/shards")


def test_list_logstores() -> None:
    op = _sansio.list_logstores("my-project")
    assert (op.method, op.path, op.params, op.logstore) == (
        "GET",
        "/logstores",
        {"offset": "0", "size": "500"},
        None,
    )
    op = _sansio.list_logstores("my-project", offset=500, size=10, name_filter="app log+")
    assert op.params == {"offset": "500", "size": "10", "logstoreName": "app log+"}


@pytest.mark.parametrize(("offset", "size"), [(-1, 10), (0, 0), (0, 501), (0, True), (True, 1), (0, "5")])
def test_list_logstores_rejects_bad_paging(offset: Any, size: Any) -> None:
    with pytest.raises(ValidationError):
        _sansio.list_logstores("my-project", offset=offset, size=size)


@pytest.mark.parametrize(
    ("from_", "wire"), [("begin", "begin"), ("end", "end"), (0, "0"), (1700000000, "1700000000")]
)
def test_get_cursor(from_: Any, wire: str) -> None:
    op = _sansio.get_cursor("my-project", "app-log", 2, from_)
    assert (op.method, op.path) == ("GET", "/logstores/app-log/shards/2")
    assert op.params == {"type": "cursor", "from": wire}


@pytest.mark.parametrize("from_", ["BEGIN", "now", -1, True, 1.5, None, ["begin"]])
def test_get_cursor_rejects_bad_from(from_: Any) -> None:
    with pytest.raises(ValidationError, match="from_"):
        _sansio.get_cursor("my-project", "app-log", 0, from_)


def test_get_cursor_time() -> None:
    op = _sansio.get_cursor_time("my-project", "app-log", 0, "MTcy+MzA5/NDEz==")
    assert op.path == "/logstores/app-log/shards/0"
    assert op.params == {"type": "cursor_time", "cursor": "MTcy+MzA5/NDEz=="}
    with pytest.raises(ValidationError, match="cursor"):
        _sansio.get_cursor_time("my-project", "app-log", 0, "")


def test_create_project_and_logstore() -> None:
    project = _sansio.create_project("my-project", description="demo")
    assert (project.method, project.path, project.idempotent) == ("POST", "/", False)
    assert body_json(project) == {"projectName": "my-project", "description": "demo"}
    store = _sansio.create_logstore("my-project", "app-log", shard_count=4, ttl=7)
    assert (store.method, store.path, store.idempotent) == ("POST", "/logstores", False)
    assert body_json(store) == {"logstoreName": "app-log", "shardCount": 4, "ttl": 7}
    for bad in (0, 257, True):
        with pytest.raises(ValidationError, match="shard_count"):
            _sansio.create_logstore("my-project", "app-log", shard_count=bad)


# Every builder, called with arguments that are *all* wrong: the names are checked first.
_ALL_BAD: list[tuple[str, Any]] = [
    ("get_checkpoint", lambda p, ls, cg: _sansio.get_checkpoint(p, ls, cg, -1)),
    ("update_checkpoint", lambda p, ls, cg: _sansio.update_checkpoint(p, ls, cg, -1, "", consumer=None)),  # type: ignore[arg-type]
    ("heartbeat", lambda p, ls, cg: _sansio.heartbeat(p, ls, cg, "", [-1])),
    ("create_consumer_group", lambda p, ls, cg: _sansio.create_consumer_group(p, ls, cg, timeout=0)),
    ("update_consumer_group", lambda p, ls, cg: _sansio.update_consumer_group(p, ls, cg)),
    ("delete_consumer_group", lambda p, ls, cg: _sansio.delete_consumer_group(p, ls, cg)),
    ("list_consumer_groups", lambda p, ls, cg: _sansio.list_consumer_groups(p, ls)),
    ("list_shards", lambda p, ls, cg: _sansio.list_shards(p, ls)),
    ("get_cursor", lambda p, ls, cg: _sansio.get_cursor(p, ls, -1, "now")),
    ("get_cursor_time", lambda p, ls, cg: _sansio.get_cursor_time(p, ls, -1, "")),
    ("create_logstore", lambda p, ls, cg: _sansio.create_logstore(p, ls, shard_count=0)),
]


@pytest.mark.parametrize(("name", "call"), _ALL_BAD, ids=[n for n, _ in _ALL_BAD])
def test_names_are_validated_before_anything_else(name: str, call: Any) -> None:
    with pytest.raises(ValidationError, match=r"invalid project 'My_Project'"):
        call("My_Project", "app/../x", "cg?x")
    with pytest.raises(ValidationError, match=r"invalid logstore 'app/\.\./x'"):
        call("my-project", "app/../x", "cg?x")
    if name not in (
        "list_consumer_groups",
        "list_shards",
        "get_cursor",
        "get_cursor_time",
        "create_logstore",
    ):
        with pytest.raises(ValidationError, match=r"invalid consumer_group 'cg\?x'"):
            call("my-project", "app-log", "cg?x")


def test_project_only_builders_validate_the_project_first() -> None:
    with pytest.raises(ValidationError, match="project"):
        _sansio.list_logstores("a", offset=-1)
    with pytest.raises(ValidationError, match="project"):
        _sansio.create_project("A B")


# --- build_request --------------------------------------------------------------------------------

_PATH = "/logstores/app-log/consumergroups/cg"


@pytest.mark.parametrize(
    ("endpoint", "url", "host"),
    [
        (
            "cn-hangzhou.log.aliyuncs.com",
            "https://my-project.cn-hangzhou.log.aliyuncs.com",
            "my-project.cn-hangzhou.log.aliyuncs.com",
        ),
        (
            "https://cn-hangzhou.log.aliyuncs.com",
            "https://my-project.cn-hangzhou.log.aliyuncs.com",
            "my-project.cn-hangzhou.log.aliyuncs.com",
        ),
        ("http://sls.example.com:80", "http://my-project.sls.example.com", "my-project.sls.example.com"),
        (
            "https://sls.example.com:8443",
            "https://my-project.sls.example.com:8443",
            "my-project.sls.example.com:8443",
        ),
        # IP and localhost endpoints: connect to them directly, the project only in Host.
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080", "my-project.127.0.0.1:8080"),
        ("http://[::1]:9000", "http://[::1]:9000", "my-project.[::1]:9000"),
        ("localhost:81", "https://localhost:81", "my-project.localhost:81"),
        ("10.0.0.1", "https://10.0.0.1", "my-project.10.0.0.1"),
    ],
)
def test_url_and_host_for_each_endpoint_form(endpoint: str, url: str, host: str) -> None:
    req = build(_sansio.get_checkpoint("my-project", "app-log", "cg"), endpoint)
    assert req.url == url + _PATH
    assert req.headers["Host"] == host
    assert req.method == "GET"
    assert req.operation == "GetCheckPoint"


@pytest.mark.parametrize(
    ("op", "query"),
    [
        (
            _sansio.get_cursor_time("my-project", "app-log", 0, "MTcy+MzA5/NDEz=="),
            "type=cursor_time&cursor=MTcy%2BMzA5%2FNDEz%3D%3D",
        ),
        (
            _sansio.update_checkpoint("my-project", "app-log", "cg", 0, "Y3Vy", consumer="worker 1+a=b/c"),
            "type=checkpoint&consumer=worker%201%2Ba%3Db%2Fc&forceSuccess=true",
        ),
        (
            _sansio.list_logstores("my-project", size=10, name_filter="app log~é"),
            "offset=0&size=10&logstoreName=app%20log~%C3%A9",
        ),
        (_sansio.get_checkpoint("my-project", "app-log", "cg", 1), "shard=1"),
    ],
)
def test_query_is_rfc3986_encoded(op: _sansio.Operation, query: str) -> None:
    req = build(op)
    assert urlsplit(req.url).query == query
    assert "+" not in urlsplit(req.url).query


def test_no_query_string_without_params() -> None:
    assert "?" not in build(_sansio.list_shards("my-project", "app-log")).url


def test_v1_headers() -> None:
    req = build(_sansio.update_checkpoint("my-project", "app-log", "cg", 0, "Y3Vy"), credentials=STS)
    h = req.headers
    assert h["Authorization"].startswith("LOG STS.exampleKeyId:")
    assert h["Date"] == "Thu, 05 Sep 2024 08:30:15 GMT"
    assert h["x-log-signaturemethod"] == "hmac-sha1"
    assert h["x-log-apiversion"] == "0.6.0"
    assert h["x-acs-security-token"] == "sts-token-value"
    assert h["Content-MD5"] == signing.content_md5(req.body)
    assert h["User-Agent"] == "aiosls-tests/1"
    assert "x-log-date" not in lower(h)
    assert "x-log-content-sha256" not in lower(h)


def test_v4_headers() -> None:
    req = build(
        _sansio.get_checkpoint("my-project", "app-log", "cg"), signature_version="v4", region="us-west-1"
    )
    h = lower(req.headers)
    assert h["authorization"].startswith(
        "SLS4-HMAC-SHA256 Credential=LTAIexampleKeyId0001/20240905/us-west-1/sls/aliyun_v4_request,Signature="
    )
    assert h["x-log-date"] == "20240905T083015Z"
    assert h["x-log-content-sha256"] == signing.EMPTY_SHA256
    assert "date" not in h
    assert "x-log-signaturemethod" not in h
    assert "content-md5" not in h


def test_v4_needs_a_region() -> None:
    with pytest.raises(ValueError, match="region"):
        build(_sansio.list_shards("my-project", "app-log"), signature_version="v4", region=None)
    with pytest.raises(ValueError, match="region"):
        signing.sign_v4("GET", "/logstores", {}, {"Host": "p.h"}, b"", CREDS, T0, region="")


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_content_type_only_with_a_body_and_bodyrawsize_is_the_length(version: str) -> None:
    get = lower(
        build(_sansio.get_checkpoint("my-project", "app-log", "cg"), signature_version=version).headers
    )
    assert "content-type" not in get
    assert get["x-log-bodyrawsize"] == "0"
    op = _sansio.update_checkpoint("my-project", "app-log", "cg", 12, "MTUyNDE1NTM3OTM3MzkwODQ5Ng==")
    post = build(op, signature_version=version)
    assert post.body == op.body
    assert lower(post.headers)["content-type"] == "application/json"
    assert lower(post.headers)["x-log-bodyrawsize"] == str(len(op.body)) != "0"
    delete = lower(build(_sansio.delete_consumer_group("my-project", "app-log", "cg")).headers)
    assert "content-type" not in delete


def _verify(req: HttpRequest, version: str, secret: str, region: str = "cn-hangzhou") -> bool:
    """Verify ``req`` as a server would: from the wire URL, decoded with form semantics."""
    parts = urlsplit(req.url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    headers = lower(req.headers)
    if version == "v1":
        sts = signing.v1_string_to_sign(req.method, unquote(parts.path), params, headers)
        sig = headers["authorization"].rsplit(":", 1)[1]
        return sig == signing.v1_signature(secret, sts)
    canonical, _ = signing.v4_canonical_request(req.method, parts.path, params, headers)
    sig = headers["authorization"].rsplit("Signature=", 1)[1]
    return sig == signing.v4_signature(secret, region, headers["x-log-date"], canonical)


@settings(max_examples=60)
@given(
    consumer=st.text(
        st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=["Cs"]), max_size=40
    ),
    cursor=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    version=st.sampled_from(["v1", "v4"]),
)
def test_signature_covers_exactly_the_bytes_on_the_wire(consumer: str, cursor: str, version: str) -> None:
    op = _sansio.update_checkpoint("my-project", "app-log", "cg", 0, cursor, consumer=consumer)
    req = build(op, signature_version=version)
    assert _verify(req, version, CREDS.access_key_secret)
    assert not _verify(req, version, "another-secret")
    # Only unreserved characters and %XX escapes in the query.
    assert all(c.isascii() and (c.isalnum() or c in "-_.~%=&") for c in urlsplit(req.url).query)


# --- error_from_response --------------------------------------------------------------------------

# Every row of the error table in docs/protocol.md, plus the status fallbacks: (status, code, class).
SPEC_ERRORS: list[tuple[int, str | None, type[SlsError]]] = [
    (400, "RequestTimeExpired", ClockSkewError),
    (400, "InvalidRequestTime", ClientError),
    (400, "InvalidHost", ClientError),
    (400, "InvalidContentType", ClientError),
    (400, "PostBodyInvalid", ClientError),
    (400, "ParameterInvalid", ClientError),
    (400, "MissingParameter", ClientError),
    (400, "ShardNotExist", NotFoundError),
    (400, "LogStoreWithoutShard", ClientError),
    (400, "NotExistConsumerWithBody", ClientError),
    (400, "ConsumerNotExsit", NotFoundError),
    (400, "ConsumerNotExist", NotFoundError),
    (400, "ConsumerNotMatch", ClientError),
    (400, "ShardNotExsit", NotFoundError),
    (400, "ConsumerGroupAlreadyExist", AlreadyExistsError),
    (400, "ConsumerGroupQuotaExceed", ClientError),  # the 30-groups limit is not throttling
    (403, "ConsumerGroupQuotaExceed", ClientError),
    (400, "InvalidCursor", ClientError),
    (401, "SignatureNotMatch", AuthError),
    (401, "Unauthorized", AuthError),
    (401, "InvalidAccessKeyId", AuthError),
    (401, "SecurityToken.Expired", AuthError),
    (401, "SecurityTokenExpired", AuthError),
    (401, "InvalidAccessKeyId.NotFound", AuthError),
    (403, "WriteQuotaExceed", ThrottlingError),
    (403, "ReadQuotaExceed", ThrottlingError),
    (403, "ShardWriteQuotaExceed", ThrottlingError),
    (403, "ShardReadQuotaExceed", ThrottlingError),
    (403, "MetaOperationQpsLimitExceeded", ThrottlingError),
    (403, "ProjectForbidden", ClientError),
    (404, "ProjectNotExist", NotFoundError),
    (404, "LogStoreNotExist", NotFoundError),
    (404, "ConsumerGroupNotExist", NotFoundError),
    (405, "InvalidMethod", ClientError),
    (413, "PostBodyTooLarge", ClientError),
    (500, "InternalServerError", TransientError),
    (500, "RequestTimeout", TransientError),
    (503, "ServerBusy", TransientError),
    # Status fallbacks for codes we do not know (or no code at all).
    (429, None, ThrottlingError),
    (429, "SomethingNew", ThrottlingError),
    (500, None, TransientError),
    (502, None, TransientError),
    (504, "GatewayTimeout", TransientError),
    (401, "SomethingNew", AuthError),
    (404, "SomethingNew", NotFoundError),
    (409, None, ClientError),
    (302, None, SlsError),
    (501, None, SlsError),
]


@pytest.mark.parametrize(("status", "code", "cls"), SPEC_ERRORS, ids=[f"{s}-{c}" for s, c, _ in SPEC_ERRORS])
def test_every_spec_error_maps_to_its_class(status: int, code: str | None, cls: type[SlsError]) -> None:
    body = json.dumps({"errorCode": code, "errorMessage": f"text for {code}"}).encode()
    err = _sansio.error_from_response(HttpResponse(status, {"X-Log-RequestId": RID}, body), "GetCheckPoint")
    assert type(err) is cls
    assert err.status == status
    assert err.error_code == code
    assert err.request_id == RID
    assert err.message == f"GetCheckPoint: text for {code}"


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("consumernotexsit", NotFoundError),
        ("SHARDNOTEXIST", NotFoundError),
        ("consumerGroupNotExist", NotFoundError),
        ("writequotaexceed", ThrottlingError),
    ],
)
def test_codes_match_case_insensitively(code: str, cls: type[SlsError]) -> None:
    # Spellings differ between libraries (ShardNotExsit); match case-insensitively.
    err = _sansio.error_from_response(HttpResponse(400, {}, json.dumps({"errorCode": code}).encode()))
    assert type(err) is cls
    assert err.error_code == code  # reported as the server spelled it


@pytest.mark.parametrize(
    ("op", "case", "cls", "code"),
    [
        ("errors", "401-signature", AuthError, "SignatureNotMatch"),
        ("errors", "403-write-quota", ThrottlingError, "WriteQuotaExceed"),
        ("errors", "500-internal", TransientError, "InternalServerError"),
        ("errors", "503-server-busy", TransientError, "ServerBusy"),
        ("errors", "400-request-time-expired", ClockSkewError, "RequestTimeExpired"),
        ("GetCheckPoint", "404-consumer-group", NotFoundError, "ConsumerGroupNotExist"),
        ("GetCursor", "400-shard-not-exist", NotFoundError, "ShardNotExist"),
    ],
)
def test_recorded_error_samples(op: str, case: str, cls: type[SlsError], code: str) -> None:
    response = sample(op, case)
    err = _sansio.error_from_response(response)
    assert type(err) is cls
    assert (err.status, err.error_code, err.request_id) == (
        response.status,
        code,
        response.headers["x-log-requestid"],
    )
    assert err.message == json.loads(response.body)["errorMessage"]
    assert str(err) == f"{code} ({response.status}, request {err.request_id}): {err.message}"


def test_html_502_page_is_transient_with_a_short_excerpt() -> None:
    err = _sansio.error_from_response(sample("errors", "502-html"), "GetCheckPoint")
    assert type(err) is TransientError
    assert (err.status, err.error_code, err.request_id) == (502, None, None)
    assert err.message.startswith("GetCheckPoint: HTTP 502 without an SLS error body: '<html> <head>")
    assert "502 Bad Gateway" in err.message
    assert "\n" not in err.message
    assert str(err).startswith("(502): GetCheckPoint: HTTP 502")


def test_tengine_404_page_is_not_found_and_keeps_the_request_id() -> None:
    err = _sansio.error_from_response(sample("errors", "404-tengine"))
    assert type(err) is NotFoundError
    assert err.error_code is None
    assert err.request_id == "66D96B2E4A9B0C1D2E3F4A5B"
    assert "404 Not Found" in err.message
    assert err.message.endswith("...'")  # the page is longer than the excerpt


@pytest.mark.parametrize(
    "body",
    [
        b"<html>" + b"x" * 5_000_000 + b"</html>",
        json.dumps({"errorCode": "ServerBusy", "errorMessage": "y" * 5_000_000}).encode(),
        json.dumps({"errorMessage": "z" * 5_000_000}).encode(),
    ],
    ids=["html", "json-message", "json-no-code"],
)
def test_a_huge_body_is_truncated_in_the_message(body: bytes) -> None:
    err = _sansio.error_from_response(HttpResponse(503, {}, body))
    assert isinstance(err, TransientError)
    assert len(str(err)) < 2_000
    assert "..." in err.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "HTTP 418 without an SLS error body with an empty body"),
        (b"[1, 2]", "HTTP 418 without an SLS error body: '[1, 2]'"),
        (b'{"errorCode": 5, "errorMessage": ["x"]}', "without an SLS error body"),
        (b"\xff\xfe not utf-8", "without an SLS error body: '\ufffd\ufffd not utf-8'"),
    ],
)
def test_odd_error_bodies(body: bytes, expected: str) -> None:
    err = _sansio.error_from_response(HttpResponse(418, {}, body))
    assert type(err) is ClientError
    assert err.error_code is None
    assert expected in err.message


def test_json_error_without_message_keeps_the_code() -> None:
    err = _sansio.error_from_response(HttpResponse(404, {}, b'{"errorCode": "LogStoreNotExist"}'))
    assert type(err) is NotFoundError
    assert err.error_code == "LogStoreNotExist"
    assert "HTTP 404" in err.message


@settings(max_examples=200)
@given(status=st.integers(100, 599), body=st.binary(max_size=300), rid=st.none() | st.text(max_size=30))
def test_error_from_response_never_fails(status: int, body: bytes, rid: str | None) -> None:
    headers = {} if rid is None else {"x-log-requestid": rid}
    err = _sansio.error_from_response(HttpResponse(status, headers, body), "Op")
    assert isinstance(err, SlsError)
    assert err.status == status
    assert err.request_id == (None if rid is None else safe_text(rid, 128))
    assert err.message.startswith("Op: ")
    assert str(err).isprintable()  # renders, escaped


# --- parsing --------------------------------------------------------------------------------------


def test_parse_checkpoints_sample_all_shards() -> None:
    cps = _sansio.parse_checkpoints(sample("GetCheckPoint", "200-all-shards"))
    assert cps == [
        ShardCheckpoint(0, "MTUyNDE1NTM3OTM3MzkwODQ5Ng==", 1524224984800922, "consumer_1"),
        ShardCheckpoint(1, "", 1524224984800922, ""),
    ]
    assert cps[0].update_time == datetime(2018, 4, 20, 11, 49, 44, 800922, tzinfo=UTC)
    assert base64.b64decode(cps[0].checkpoint) == b"1524155379373908496"
    assert [cp.committed for cp in cps] == [True, False]


def test_parse_checkpoints_other_samples() -> None:
    assert _sansio.parse_checkpoints(sample("GetCheckPoint", "200-one-shard"))[0].shard == 0
    assert _sansio.parse_checkpoints(sample("GetCheckPoint", "200-missing-shard")) == []
    (cp,) = _sansio.parse_checkpoints(sample("GetCheckPoint", "200-no-consumer"))
    assert cp.consumer == ""
    assert cp.update_time == datetime(2021, 6, 2, 12, 29, 25, 80584, tzinfo=UTC)
    with pytest.raises(NotFoundError) as info:
        _sansio.parse_checkpoints(sample("GetCheckPoint", "404-consumer-group"))
    assert info.value.message.startswith("GetCheckPoint: consumer group")


def test_parse_other_samples() -> None:
    assert _sansio.parse_consumer_groups(sample("ListConsumerGroup", "200")) == [
        ConsumerGroup("consumer-group-1", 300, False),
        ConsumerGroup("cg-main_1", 60, True),
    ]
    shards = _sansio.parse_shards(sample("ListShards", "200"))
    assert [(s.shard_id, s.status) for s in shards] == [(0, "readwrite"), (1, "readonly")]
    assert shards[1].exclusive_end_key == "ffffffffffffffffffffffffffffffff"
    assert shards[0].create_time == datetime(2018, 4, 19, 16, 29, 39, tzinfo=UTC)
    assert _sansio.parse_logstores_page(sample("ListLogStores", "200")) == (["access-log", "error-log"], 2)
    assert _sansio.parse_cursor(sample("GetCursor", "200")) == "MTQ0NzI5OTYwNjg5NjYzMjM1Ng=="
    assert _sansio.parse_cursor_time(sample("GetCursorTime", "200")) == 1554260243
    assert _sansio.parse_heartbeat(sample("ConsumerGroupHeartBeat", "200")) == [0, 1]
    ok_empty = sample("ConsumerGroupUpdateCheckPoint", "200")
    _sansio.parse_empty(ok_empty, "ConsumerGroupUpdateCheckPoint")  # does not raise
    with pytest.raises(NotFoundError, match="ShardNotExist"):
        _sansio.parse_empty(sample("GetCursor", "400-shard-not-exist"), "ConsumerGroupUpdateCheckPoint")
    with pytest.raises(NotFoundError):
        _sansio.parse_cursor(sample("GetCursor", "400-shard-not-exist"))


def _ok(body: bytes) -> HttpResponse:
    return HttpResponse(200, {"x-log-requestid": RID}, body)


@pytest.mark.parametrize(
    ("parse", "body", "why"),
    [
        (_sansio.parse_checkpoints, b"<html>", "not JSON"),
        (_sansio.parse_checkpoints, b'{"shard": 0}', "expected a JSON array, got dict"),
        (_sansio.parse_checkpoints, b'[{"shard": "0", "checkpoint": "", "updateTime": 1}]', "shard"),
        (_sansio.parse_checkpoints, b'[{"shard": 0, "checkpoint": ""}]', "required field missing"),
        (
            _sansio.parse_checkpoints,
            b'[{"shard": 0, "checkpoint": "", "updateTime": -1}]',
            "updateTime -1 is out of range",
        ),
        (
            _sansio.parse_checkpoints,
            b'[{"shard": 0, "checkpoint": "", "updateTime": 9999999999999999999}]',
            "out of range",
        ),
        (_sansio.parse_checkpoints, b"[5]", "expected ShardCheckpoint @ $[0]"),
        (_sansio.parse_consumer_groups, b'[{"name": "cg", "timeout": 60, "order": 1}]', "order"),
        (_sansio.parse_shards, b'[{"shardID": true}]', "shardID"),
        (_sansio.parse_heartbeat, b'["0"]', "expected an array of shard ids"),
        (_sansio.parse_heartbeat, b"[-1]", "expected an array of shard ids"),
        (_sansio.parse_heartbeat, b"{}", "expected an array of shard ids"),
        (_sansio.parse_logstores_page, b"[]", "expected a JSON object"),
        (_sansio.parse_logstores_page, b'{"logstores": ["a"]}', "missing or mistyped"),
        (_sansio.parse_logstores_page, b'{"logstores": [1], "total": 1}', "missing or mistyped"),
        (_sansio.parse_logstores_page, b'{"logstores": ["a"], "total": true}', "missing or mistyped"),
        (_sansio.parse_cursor, b"[]", "missing cursor"),
        (_sansio.parse_cursor, b'{"cursor": 5}', "missing cursor"),
        (_sansio.parse_cursor_time, b'{"cursor_time": "1"}', "missing cursor_time"),
        (_sansio.parse_cursor_time, b"null", "missing cursor_time"),
    ],
)
def test_malformed_bodies_raise_response_parse_error(parse: Any, body: bytes, why: str) -> None:
    with pytest.raises(ResponseParseError) as info:
        parse(_ok(body))
    err = info.value
    assert why in err.message
    assert (err.status, err.error_code, err.request_id) == (200, "BadResponse", RID)


def test_parse_error_keeps_the_cattrs_error_as_cause() -> None:
    import cattrs

    with pytest.raises(
        ResponseParseError, match=r"expected an integer, got str '0' @ \$\[0\]\.shard"
    ) as info:
        _sansio.parse_checkpoints(_ok(b'[{"shard": "0", "checkpoint": "", "updateTime": 1}]'))
    assert isinstance(info.value.__cause__, cattrs.BaseValidationError)


# --- properties -----------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_near_checkpoint = st.fixed_dictionaries(
    {},
    optional={
        "shard": _json_values | st.integers(),
        "checkpoint": _json_values,
        "updateTime": _json_values | st.integers(-(2**63), 2**63),
        "consumer": _json_values,
    },
)


def _parses_or_parse_error(body: bytes) -> None:
    failure: ResponseParseError | None = None
    try:
        result = _sansio.parse_checkpoints(_ok(body))
    except ResponseParseError as exc:  # anything else fails the test
        failure, result = exc, []
    if failure is not None:
        assert (failure.status, failure.error_code, failure.request_id) == (200, "BadResponse", RID)
    assert isinstance(result, list)
    assert all(isinstance(cp, ShardCheckpoint) and isinstance(cp.update_time, datetime) for cp in result)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_response_parse_error(body: bytes) -> None:
    _parses_or_parse_error(body)


@settings(max_examples=300)
@given(_json_values | st.lists(_near_checkpoint | _json_values, max_size=4))
def test_any_json_value_parses_or_raises_response_parse_error(value: Any) -> None:
    _parses_or_parse_error(json.dumps(value).encode())


def test_deeply_nested_json_is_a_parse_error() -> None:
    with pytest.raises(ResponseParseError):
        _sansio.parse_checkpoints(_ok(b"[" * 5000 + b"]" * 5000))
    deep = b'[{"shard": ' + b"[" * 1000 + b"]" * 1000 + b', "checkpoint": "", "updateTime": 1}]'
    with pytest.raises(ResponseParseError):
        _sansio.parse_checkpoints(_ok(deep))


_us = st.integers(10**14, 253402300799999999)
_models = st.one_of(
    st.builds(ShardCheckpoint, st.integers(0, 2**31), st.text(), _us, st.text()),
    st.builds(ConsumerGroup, st.text(), st.integers(1, 86400), st.booleans()),
    st.builds(
        Shard,
        st.integers(0, 2**31),
        st.sampled_from(["readwrite", "readonly"]),
        st.text(),
        st.text(),
        st.integers(0, 10**10),
    ),
)


@given(_models)
def test_structure_unstructure_round_trip(model: Any) -> None:
    wire = CONVERTER.unstructure(model)
    assert set(wire) == {
        a.metadata.get("wire") or _camel(a.name) for a in attrs.fields(type(model)) if a.init
    }
    assert json.loads(json.dumps(wire)) == wire
    back = CONVERTER.structure(wire, type(model))
    assert back == model
    assert attrs.asdict(back) == attrs.asdict(model)  # including the derived datetimes


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


@given(st.integers(10**14, 253402300799999999))
def test_update_time_microseconds_are_exact(us: int) -> None:
    cp = ShardCheckpoint(0, "", us)
    delta = cp.update_time - datetime(1970, 1, 1, tzinfo=UTC)
    assert delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds == us
    assert math.isclose(cp.update_time.timestamp(), us / 1e6, rel_tol=0, abs_tol=1e-3)


def test_every_sample_has_a_body_and_a_note() -> None:
    cases = all_samples()
    assert len(cases) >= 15
    for op, case in cases:
        meta = json.loads((SAMPLES / op / f"{case}.json").read_text())
        assert meta["note"]
        response = sample(op, case)
        assert str(response.status) == case[:3]
        assert response.headers["content-length"] == str(len(response.body))


# --- GetCheckPoint shard ids (issue 11 item 6) -----------------------------------------------------


def _entries(*shards: int) -> bytes:
    return json.dumps(
        [{"shard": s, "checkpoint": "", "updateTime": 1524224984800922, "consumer": ""} for s in shards]
    ).encode()


@pytest.mark.parametrize(
    ("shards", "why"),
    [
        ((-1,), "shard id -1 is out of range"),
        ((0, 1, -5), "shard id -5 is out of range"),
        ((2**31,), "shard id 2147483648 is out of range"),
        ((0, 1, 1), "duplicate shard id 1"),
        ((3, 2, 3, 2), "duplicate shard id 2"),
    ],
)
def test_negative_out_of_range_or_duplicate_shard_ids_are_parse_errors(
    shards: tuple[int, ...], why: str
) -> None:
    with pytest.raises(ResponseParseError) as info:
        _sansio.parse_checkpoints(_ok(_entries(*shards)))
    assert why in info.value.message
    assert (info.value.status, info.value.error_code, info.value.request_id) == (200, "BadResponse", RID)


def test_distinct_shard_ids_in_any_order_parse() -> None:
    assert [cp.shard for cp in _sansio.parse_checkpoints(_ok(_entries(7, 0, 2**31 - 1)))] == [7, 0, 2**31 - 1]


def test_parse_error_names_the_failing_entry_and_wire_field() -> None:
    body = json.dumps(
        [
            {"shard": 0, "checkpoint": "", "updateTime": 1524224984800922},
            {"shard": 1, "checkpoint": "", "updateTime": -3},
        ]
    ).encode()
    with pytest.raises(ResponseParseError, match=r"updateTime -3 is out of range @ \$\[1\]\)"):
        _sansio.parse_checkpoints(_ok(body))


def test_list_hooks_are_looked_up_once_per_model() -> None:
    assert _sansio._list_hook(ShardCheckpoint) is _sansio._list_hook(ShardCheckpoint)
