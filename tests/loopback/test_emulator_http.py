"""The emulator over real loopback HTTP: APIs, signatures, errors, malformed input."""

from __future__ import annotations

import http.client
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import yarl
from helpers import EMULATOR_CREDS, EmulatorThread
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiosls import _sansio, signing
from aiosls.credentials import Credentials
from aiosls.emulator import DEMO_ACCESS_KEY_ID, Emulator, decode_cursor
from aiosls.endpoint import parse_endpoint

P, L, G = "demo-project", "app-log", "cg-main"


async def _setup(call: Any, shards: int = 4, version: str = "v1") -> None:
    assert (await call(_sansio.create_project(P), version))[0] == 200
    assert (await call(_sansio.create_logstore(P, L, shard_count=shards), version))[0] == 200
    assert (await call(_sansio.create_consumer_group(P, L, G, timeout=60), version))[0] == 200


def _err(result: tuple[int, dict[str, str], bytes]) -> tuple[int, str]:
    status, headers, body = result
    assert re.fullmatch(r"[0-9A-F]{24}", headers["x-log-requestid"])
    assert headers["content-type"] == "application/json"
    data = json.loads(body)
    assert set(data) == {"errorCode", "errorMessage"}
    return status, data["errorCode"]


@pytest.mark.parametrize("version", ["v1", "v4"])
async def test_create_update_and_read_back_checkpoints(emulator_call, version) -> None:
    await _setup(emulator_call, version=version)
    status, _, _ = await emulator_call(
        _sansio.update_checkpoint(P, L, G, 2, "MTUyNDE1NTM3OTM3MzkwODQ5Ng==", consumer="c-1"), version
    )
    assert status == 200
    status, headers, body = await emulator_call(_sansio.get_checkpoint(P, L, G), version)
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert re.fullmatch(r"[0-9A-F]{24}", headers["x-log-requestid"])
    assert "date" in headers
    data = json.loads(body)
    assert [d["shard"] for d in data] == [0, 1, 2, 3]
    assert data[0] == {"shard": 0, "checkpoint": "", "updateTime": 0, "consumer": ""}
    assert data[2]["checkpoint"] == "MTUyNDE1NTM3OTM3MzkwODQ5Ng=="
    assert data[2]["consumer"] == "c-1"
    now_us = datetime.now(UTC).timestamp() * 1e6
    assert abs(data[2]["updateTime"] - now_us) < 60e6  # microseconds, not seconds
    one = json.loads((await emulator_call(_sansio.get_checkpoint(P, L, G, shard=2), version))[2])
    assert one == [data[2]]
    assert json.loads((await emulator_call(_sansio.get_checkpoint(P, L, G, shard=9), version))[2]) == []


async def test_request_ids_are_unique(emulator_call) -> None:
    ids = {(await emulator_call(_sansio.create_project(f"p-{i}x")))[1]["x-log-requestid"] for i in range(5)}
    assert len(ids) == 5


async def test_not_found_errors(emulator_call) -> None:
    assert _err(await emulator_call(_sansio.get_checkpoint("nope", L, G))) == (404, "ProjectNotExist")
    await emulator_call(_sansio.create_project(P))
    assert _err(await emulator_call(_sansio.get_checkpoint(P, L, G))) == (404, "LogStoreNotExist")
    await emulator_call(_sansio.create_logstore(P, L))
    assert _err(await emulator_call(_sansio.get_checkpoint(P, L, G))) == (404, "ConsumerGroupNotExist")
    assert _err(await emulator_call(_sansio.delete_consumer_group(P, L, G))) == (404, "ConsumerGroupNotExist")


async def test_group_crud_conflict_and_quota(emulator_call) -> None:
    await _setup(emulator_call)
    assert _err(await emulator_call(_sansio.create_consumer_group(P, L, G, timeout=5))) == (
        400,
        "ConsumerGroupAlreadyExist",
    )
    assert (await emulator_call(_sansio.update_consumer_group(P, L, G, timeout=99, order=True)))[0] == 200
    groups = json.loads((await emulator_call(_sansio.list_consumer_groups(P, L)))[2])
    assert groups == [{"name": G, "timeout": 99, "order": True}]
    for i in range(29):
        assert (await emulator_call(_sansio.create_consumer_group(P, L, f"g{i}", timeout=5)))[0] == 200
    assert _err(await emulator_call(_sansio.create_consumer_group(P, L, "one-too-many", timeout=5))) == (
        400,
        "ConsumerGroupQuotaExceed",
    )
    assert (await emulator_call(_sansio.delete_consumer_group(P, L, G)))[0] == 200
    names = [g["name"] for g in json.loads((await emulator_call(_sansio.list_consumer_groups(P, L)))[2])]
    assert G not in names
    assert len(names) == 29


async def test_update_checkpoint_on_missing_shard(emulator_call) -> None:
    await _setup(emulator_call, shards=2)
    assert _err(await emulator_call(_sansio.update_checkpoint(P, L, G, 5, "MTIz"))) == (400, "ShardNotExist")


async def test_heartbeat_assigns_evenly_and_expires(emulator, emulator_call) -> None:
    await _setup(emulator_call, shards=4)
    first = json.loads((await emulator_call(_sansio.heartbeat(P, L, G, "a", [])))[2])
    assert first == [0, 1, 2, 3]
    b = json.loads((await emulator_call(_sansio.heartbeat(P, L, G, "b", [])))[2])
    a = json.loads((await emulator_call(_sansio.heartbeat(P, L, G, "a", first)))[2])
    assert len(a) == len(b) == 2
    assert sorted(a + b) == [0, 1, 2, 3]
    assert set(a) <= set(first)  # stable: "a" kept part of what it had
    # "a" may commit its own shard without forceSuccess; not one of b's.
    ok = _sansio.update_checkpoint(P, L, G, a[0], "MTIz", consumer="a", force_success=False)
    assert (await emulator_call(ok))[0] == 200
    bad = _sansio.update_checkpoint(P, L, G, b[0], "MTIz", consumer="a", force_success=False)
    assert _err(await emulator_call(bad)) == (400, "ConsumerNotMatch")
    # "b" keeps beating (40 s, 70 s); "a" does not, so at 70 s it has expired and "b" gets all.
    emulator.clock_offset = timedelta(seconds=40)
    now = datetime.now(UTC) + emulator.clock_offset
    assert (await emulator_call(_sansio.heartbeat(P, L, G, "b", b), now=now))[0] == 200
    emulator.clock_offset = timedelta(seconds=70)
    now = datetime.now(UTC) + emulator.clock_offset
    assert json.loads((await emulator_call(_sansio.heartbeat(P, L, G, "b", b), now=now))[2]) == [0, 1, 2, 3]
    gone = _sansio.update_checkpoint(P, L, G, a[0], "MTIz", consumer="a", force_success=False)
    assert _err(await emulator_call(gone, now=now)) == (400, "ConsumerNotExist")
    assert _err(await emulator_call(_sansio.heartbeat(P, L, G, "a", [0]), now=now)) == (
        400,
        "NotExistConsumerWithBody",
    )


async def test_cursors_are_consistent_and_lag_is_real(emulator, emulator_call) -> None:
    await _setup(emulator_call, shards=1)
    begin = json.loads((await emulator_call(_sansio.get_cursor(P, L, 0, "begin")))[2])["cursor"]
    end0 = json.loads((await emulator_call(_sansio.get_cursor(P, L, 0, "end")))[2])["cursor"]
    assert begin == end0  # nothing written yet
    t = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    emulator.state.append(P, L, 0, 10, at=t)
    emulator.state.append(P, L, 0, 5, at=t + timedelta(hours=1))
    emulator.clock_offset = timedelta(hours=2)  # the server (and we) are now past both batches
    now = datetime.now(UTC) + emulator.clock_offset

    async def get(op: Any) -> Any:
        status, _, body = await emulator_call(op, now=now)
        assert status == 200
        return json.loads(body)

    end = (await get(_sansio.get_cursor(P, L, 0, "end")))["cursor"]
    assert decode_cursor(end) - decode_cursor(end0) >= 15
    ts = int(t.timestamp()) + 60
    mid = (await get(_sansio.get_cursor(P, L, 0, ts)))["cursor"]
    # The first package received at or after ts is the second batch's first.
    assert (await get(_sansio.get_cursor_time(P, L, 0, mid)))["cursor_time"] == ts + 3600 - 60
    first = (await get(_sansio.get_cursor(P, L, 0, int(t.timestamp()))))["cursor"]
    assert (await get(_sansio.get_cursor_time(P, L, 0, first)))["cursor_time"] == int(t.timestamp())
    assert decode_cursor(end) - decode_cursor(mid) == 5  # lag: the 5 packages of the second batch
    emulator.clock_offset = timedelta(0)
    assert _err(await emulator_call(_sansio.get_cursor_time(P, L, 0, "not-a-cursor!"))) == (
        400,
        "InvalidCursor",
    )
    assert _err(await emulator_call(_sansio.get_cursor(P, L, 7, "end"))) == (400, "ShardNotExist")


async def test_list_logstores_paging_and_filter(emulator_call) -> None:
    await emulator_call(_sansio.create_project(P))
    for name in ("alpha-log", "beta-log", "gamma-metric"):
        await emulator_call(_sansio.create_logstore(P, name, shard_count=1))
    page = json.loads((await emulator_call(_sansio.list_logstores(P, offset=1, size=1)))[2])
    assert page == {"count": 1, "total": 3, "logstores": ["beta-log"]}
    page = json.loads((await emulator_call(_sansio.list_logstores(P, name_filter="log")))[2])
    assert page == {"count": 2, "total": 2, "logstores": ["alpha-log", "beta-log"]}
    shards = json.loads((await emulator_call(_sansio.list_shards(P, "alpha-log")))[2])
    assert shards[0]["shardID"] == 0
    assert shards[0]["status"] == "readwrite"


# --- signatures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v4"])
async def test_wrong_secret_and_unknown_key(emulator_call, version) -> None:
    wrong = Credentials(DEMO_ACCESS_KEY_ID, "not-the-secret")
    assert _err(await emulator_call(_sansio.create_project(P), version, creds=wrong)) == (
        401,
        "SignatureNotMatch",
    )
    unknown = Credentials("LTAIunknown", "whatever")
    assert _err(await emulator_call(_sansio.create_project(P), version, creds=unknown)) == (
        401,
        "Unauthorized",
    )


@pytest.mark.parametrize("version", ["v1", "v4"])
async def test_clock_skew_is_rejected(emulator, emulator_call, version) -> None:
    late = datetime.now(UTC) - timedelta(minutes=16)
    assert _err(await emulator_call(_sansio.create_project(P), version, now=late)) == (
        400,
        "RequestTimeExpired",
    )
    assert (
        await emulator_call(_sansio.create_project(P), version, now=datetime.now(UTC) - timedelta(minutes=14))
    )[0] == 200
    emulator.clock_offset = timedelta(minutes=30)
    assert _err(await emulator_call(_sansio.get_checkpoint(P, L, G), version)) == (
        400,
        "RequestTimeExpired",
    )


@pytest.mark.parametrize("version", ["v1", "v4"])
async def test_sts_tokens(version) -> None:
    async with Emulator(access_keys={"STS.key": "sts-secret"}, sts_tokens={"STS.key": "tok-1"}) as emu:
        endpoint = emu.endpoint
        good = Credentials("STS.key", "sts-secret", "tok-1")
        bad = Credentials("STS.key", "sts-secret", "tok-2")
        missing = Credentials("STS.key", "sts-secret")
        from aiosls.endpoint import parse_endpoint

        async with aiohttp.ClientSession() as session:

            async def status(creds: Credentials) -> int:
                req = _sansio.build_request(
                    _sansio.create_project(P),
                    endpoint=parse_endpoint(endpoint),
                    credentials=creds,
                    now=datetime.now(UTC),
                    signature_version=version,
                    region="eu-central-1",
                    user_agent="t",
                )
                async with session.post(req.url, headers=dict(req.headers), data=req.body) as r:
                    return r.status

            assert await status(bad) == 401
            assert await status(missing) == 401
            assert await status(good) == 200
        assert emu.counters.errors["Unauthorized"] == 2


# --- malformed input -----------------------------------------------------------------------------


async def _raw(
    emu: Emulator,
    method: str,
    path: str,
    params: dict[str, str],
    body: bytes,
    headers: dict[str, str] | None = None,
    host: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Sign exactly these bytes (V1) and send them: for bodies no builder would produce."""
    from urllib.parse import urlencode

    hdrs = {
        "Host": host or f"{P}.127.0.0.1:{emu.port}",
        "x-log-apiversion": "0.6.0",
        "x-log-bodyrawsize": str(len(body)),
        "Content-Type": "application/json",
        **(headers or {}),
    }
    signing.sign_v1(method, path, params, hdrs, body, EMULATOR_CREDS, datetime.now(UTC))
    url = f"{emu.endpoint}{path}" + ("?" + urlencode(params) if params else "")
    async with aiohttp.ClientSession() as session, session.request(method, url, headers=hdrs, data=body) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read()


async def test_malformed_requests_get_the_right_4xx(emulator, emulator_call) -> None:
    await _setup(emulator_call)
    cg = f"/logstores/{L}/consumergroups/{G}"
    cases = [
        ("POST", f"/logstores/{L}/consumergroups", {}, b"{not json", (400, "PostBodyInvalid")),
        ("POST", f"/logstores/{L}/consumergroups", {}, b"[1,2]", (400, "PostBodyInvalid")),
        (
            "POST",
            f"/logstores/{L}/consumergroups",
            {},
            b'{"consumerGroup": 5, "timeout": 1}',
            (400, "ParameterInvalid"),
        ),
        (
            "POST",
            f"/logstores/{L}/consumergroups",
            {},
            b'{"consumerGroup": "bad/name", "timeout": 1}',
            (400, "ParameterInvalid"),
        ),
        (
            "POST",
            cg,
            {"type": "checkpoint", "consumer": "", "forceSuccess": "maybe"},
            b'{"shard": 0, "checkpoint": "MTIz"}',
            (400, "ParameterInvalid"),
        ),
        (
            "POST",
            cg,
            {"type": "checkpoint"},
            b'{"shard": "0", "checkpoint": "MTIz"}',
            (400, "ParameterInvalid"),
        ),
        ("POST", cg, {"type": "heartbeat", "consumer": "c"}, b'{"a": 1}', (400, "PostBodyInvalid")),
        ("POST", cg, {}, b"[]", (400, "MissingParameter")),
        ("POST", cg, {"type": "bogus"}, b"[]", (400, "ParameterInvalid")),
        ("PATCH", cg, {}, b"", (405, "InvalidMethod")),
        ("GET", "/no/such/api", {}, b"", (404, "NotFound")),
        (
            "GET",
            f"/logstores/{L}/shards/x",
            {"type": "cursor", "from": "end"},
            b"",
            (400, "ParameterInvalid"),
        ),
        (
            "GET",
            f"/logstores/{L}/shards/0",
            {"type": "cursor", "from": "yesterday"},
            b"",
            (400, "ParameterInvalid"),
        ),
        ("GET", f"/logstores/{L}/shards/0", {"type": "cursor"}, b"", (400, "MissingParameter")),
        ("GET", "/logstores", {"size": "501"}, b"", (400, "ParameterInvalid")),
        ("POST", "/", {}, b'{"projectName": "other-project"}', (400, "ParameterInvalid")),
    ]
    for method, path, params, body, expected in cases:
        assert _err(await _raw(emulator, method, path, params, body)) == expected, (method, path, body)


async def test_force_success_accepts_any_case(emulator, emulator_call) -> None:
    await _setup(emulator_call)
    cg = f"/logstores/{L}/consumergroups/{G}"
    for value in ("True", "TRUE", "true"):
        params = {"type": "checkpoint", "consumer": "", "forceSuccess": value}
        assert (await _raw(emulator, "POST", cg, params, b'{"shard": 1, "checkpoint": "MTIz"}'))[0] == 200
    assert _err(
        await _raw(
            emulator,
            "POST",
            cg,
            {"type": "checkpoint", "consumer": "", "forceSuccess": "False"},
            b'{"shard": 1, "checkpoint": "MTIz"}',
        )
    ) == (400, "ParameterInvalid")


async def test_body_integrity_and_size() -> None:
    async with Emulator(max_body_size=1024) as emu:
        status, _, body = await _raw(
            emu, "POST", "/", {}, b'{"projectName": "x"}', headers={"Content-MD5": "0" * 32}
        )
        assert (status, json.loads(body)["errorCode"]) == (400, "ParameterInvalid")
        big = b'{"projectName": "' + b"a" * 2000 + b'"}'
        status, _, body = await _raw(emu, "POST", "/", {}, big)
        assert (status, json.loads(body)["errorCode"]) == (413, "PostBodyTooLarge")


async def test_host_routing_accepts_localhost_and_ip(emulator) -> None:
    body = json.dumps({"projectName": "via-localhost"}).encode()
    status, _, _ = await _raw(
        emulator, "POST", "/", {}, body, host=f"via-localhost.localhost:{emulator.port}"
    )
    assert status == 200
    body = json.dumps({"projectName": "via-ip"}).encode()
    assert (await _raw(emulator, "POST", "/", {}, body, host="via-ip.127.0.0.1"))[0] == 200
    assert set(emulator.state.projects) == {"via-localhost", "via-ip"}


# --- garbage never gets a 5xx ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def garbage_emulator():
    et = EmulatorThread(
        verify_signatures=False,
        seed={"projects": {P: {"logstores": {L: {"shards": 2, "consumer_groups": {G: {}}}}}}},
    )
    try:
        yield et
    finally:
        et.close()


_segment = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%"), max_size=12
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    tail=st.lists(st.one_of(_segment, st.sampled_from([L, G, "consumergroups", "shards", "0"])), max_size=4),
    query=st.dictionaries(
        st.sampled_from(
            [
                "type",
                "shard",
                "from",
                "cursor",
                "consumer",
                "forceSuccess",
                "offset",
                "size",
                "logstoreName",
                "x",
            ]
        ),
        st.one_of(
            st.text(max_size=10),
            st.sampled_from(["checkpoint", "heartbeat", "cursor", "cursor_time", "end", "-1"]),
        ),
    ),
    body=st.one_of(
        st.binary(max_size=64),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda c: (
                st.lists(c, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "shard",
                            "checkpoint",
                            "consumerGroup",
                            "timeout",
                            "order",
                            "logstoreName",
                            "shardCount",
                            "ttl",
                        ]
                    ),
                    c,
                    max_size=4,
                )
            ),
            max_leaves=6,
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_garbage_never_gets_5xx(garbage_emulator, method, tail, query, body) -> None:
    from urllib.parse import quote, urlencode

    path = "/logstores/" + "/".join(quote(s, safe="") for s in tail) if tail else "/"
    conn = http.client.HTTPConnection("127.0.0.1", garbage_emulator.emulator.port, timeout=10)
    try:
        conn.request(
            method,
            path + ("?" + urlencode(query) if query else ""),
            body=body,
            headers={"Host": f"{P}.127.0.0.1"},
        )
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    assert resp.status < 500, (resp.status, data)
    if resp.status != 200:
        assert set(json.loads(data)) == {"errorCode", "errorMessage"}


# --- regressions: non-ASCII digits, deep JSON, forceSuccess default ------------------------------

# U+00B2 (superscript two) is isdigit() but not int()-able: a 500 before. U+0661 (Arabic-Indic
# one) is both: it was read as 1.
_NON_ASCII_DIGITS = ["\u00b2", "\u0661", "1\u00b2", "\u0661\u0662"]


@pytest.mark.parametrize("digits", _NON_ASCII_DIGITS)
async def test_non_ascii_digits_are_parameter_invalid_not_500(emulator, emulator_call, digits) -> None:
    await _setup(emulator_call, shards=2)
    from urllib.parse import quote

    cases = [
        _sansio.Operation("GetCheckPoint", "GET", P, f"/logstores/{L}/consumergroups/{G}", {"shard": digits}),
        _sansio.Operation("ListLogStores", "GET", P, "/logstores", {"offset": digits}),
        _sansio.Operation("ListLogStores", "GET", P, "/logstores", {"size": digits}),
        _sansio.Operation(
            "GetCursor",
            "GET",
            P,
            f"/logstores/{L}/shards/{quote(digits, safe='')}",
            {"type": "cursor", "from": "end"},
        ),
        _sansio.Operation(
            "GetCursorTime",
            "GET",
            P,
            f"/logstores/{L}/shards/{quote(digits, safe='')}",
            {"type": "cursor_time", "cursor": "MTA="},
        ),
        _sansio.Operation(
            "GetCursor", "GET", P, f"/logstores/{L}/shards/0", {"type": "cursor", "from": digits}
        ),
    ]
    for op in cases:
        for version in ("v1", "v4"):
            assert _err(await emulator_call(op, version)) == (400, "ParameterInvalid"), (op, version)
    assert emulator.counters.errors["InternalServerError"] == 0


@pytest.mark.parametrize("version", ["v1", "v4"])
async def test_request_time_with_non_ascii_digits_is_invalid(emulator_call, version) -> None:
    # Before: the date parsers read Arabic-Indic digits as numbers, so the request got as far as
    # the signature check (401); a time no client would send is a bad request time.
    arabic = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))
    now = datetime.now(UTC)
    if version == "v1":
        header = {"Date": signing.http_date(now).translate(arabic)}
    else:
        header = {"x-log-date": now.strftime("%Y%m%dT%H%M%SZ").translate(arabic)}
    result = await emulator_call(_sansio.create_project(P), version, extra_headers=header)
    assert _err(result) == (400, "InvalidRequestTime")


async def test_deeply_nested_json_body_is_post_body_invalid(emulator, emulator_call) -> None:
    # The same body without orjson (stdlib json raising RecursionError) is covered in
    # test_emulator_cli.py::test_deep_json_without_orjson_is_400_not_500.
    await _setup(emulator_call)
    deep = b"[" * 100_000 + b"]" * 100_000
    cg = f"/logstores/{L}/consumergroups/{G}"
    assert _err(await _raw(emulator, "POST", cg, {"type": "heartbeat", "consumer": "c"}, deep)) == (
        400,
        "PostBodyInvalid",
    )
    assert _err(await _raw(emulator, "POST", f"/logstores/{L}/consumergroups", {}, deep)) == (
        400,
        "PostBodyInvalid",
    )
    assert emulator.counters.errors["InternalServerError"] == 0


async def test_missing_force_success_is_not_a_forced_update(emulator, emulator_call) -> None:
    await _setup(emulator_call)
    cg = f"/logstores/{L}/consumergroups/{G}"
    body = b'{"shard": 0, "checkpoint": "MTA="}'
    result = await _raw(emulator, "POST", cg, {"type": "checkpoint", "consumer": "c1"}, body)
    assert _err(result) == (400, "ConsumerNotExist")
    result = await _raw(emulator, "POST", cg, {"type": "checkpoint"}, body)
    assert _err(result) == (400, "ParameterInvalid")  # no consumer and not forced
    assert emulator.state.get_checkpoints(P, L, G, 0)[0]["checkpoint"] == ""
    # An explicit forceSuccess=true still forces.
    params = {"type": "checkpoint", "consumer": "c1", "forceSuccess": "true"}
    assert (await _raw(emulator, "POST", cg, params, body))[0] == 200
    assert emulator.state.get_checkpoints(P, L, G, 0)[0]["checkpoint"] == "MTA="


async def test_v1_query_reencoding_cannot_turn_off_force_success_checks(emulator, emulator_call) -> None:
    # V1 signs the query unencoded, so "consumer=c1&forceSuccess=false" re-encoded as one
    # consumer value "c1&forceSuccess=false" still verifies (inherent to V1). The emulator must
    # then not read the now-missing forceSuccess as true and store the checkpoint.
    await _setup(emulator_call)
    op = _sansio.update_checkpoint(P, L, G, 0, "MTA=", consumer="c1", force_success=False)
    req = _sansio.build_request(
        op,
        endpoint=parse_endpoint(emulator.endpoint),
        credentials=EMULATOR_CREDS,
        now=datetime.now(UTC),
        signature_version="v1",
        region=None,
        user_agent="t",
    )
    base = req.url.partition("?")[0]
    tampered = base + "?type=checkpoint&consumer=c1%26forceSuccess%3Dfalse"
    async with (
        aiohttp.ClientSession() as session,
        session.post(yarl.URL(tampered, encoded=True), data=req.body, headers=dict(req.headers)) as r,
    ):
        result = r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read()
    assert _err(result) == (400, "ConsumerNotExist")  # the signature held; the update did not
    assert emulator.state.get_checkpoints(P, L, G, 0)[0]["checkpoint"] == ""
