"""The official SDKs, as independent clients, against the emulator (V1 and V4).

Both SDKs put the project in the host name (``{project}.localhost:PORT``); the
``emulator_localhost_dns`` fixture resolves ``*.localhost`` to 127.0.0.1 for them.
"""

from __future__ import annotations

import pytest
from aliyun.log import LogClient, LogException
from aliyun.log.auth import AUTH_VERSION_1, AUTH_VERSION_4
from darabonba.exceptions import UnretryableException

from aiosls.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, Emulator

tea_client = pytest.importorskip("alibabacloud_sls20201230.client")
tea_models = pytest.importorskip("alibabacloud_sls20201230.models")
tea_config = pytest.importorskip("alibabacloud_tea_openapi.utils_models")

CP0 = "MTUyNDE1NTM3OTM3MzkwODQ5Ng=="
CP1 = "MTcyMzA5NDEzNjg2NjM0MA=="


def _py_client(port: int, version: str, secret: str = DEMO_ACCESS_KEY_SECRET) -> LogClient:
    kwargs = (
        {"auth_version": AUTH_VERSION_4, "region": "cn-shanghai"}
        if version == "v4"
        else {"auth_version": AUTH_VERSION_1}
    )
    # source= avoids the SDK's UDP-socket probe for the local IP.
    return LogClient(f"localhost:{port}", DEMO_ACCESS_KEY_ID, secret, source="127.0.0.1", **kwargs)


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_py_sdk_round_trip(emulator_thread, emulator_localhost_dns, version) -> None:
    client = _py_client(emulator_thread.emulator.port, version)
    p, ls, cg = f"py-{version}-project", "app-log", "cg-main"
    try:
        client.create_project(p, "made by the official py SDK")
        client.create_logstore(p, ls, ttl=7, shard_count=3)
        client.create_consumer_group(p, ls, cg, timeout=60, in_order=True)
        client.update_check_point(p, ls, cg, 0, CP0, consumer="c-1", force_success=True)
        assert client.heart_beat(p, ls, cg, "c-1", []).get_shards() == [0, 1, 2]
        client.update_check_point(p, ls, cg, 1, CP1, consumer="c-1", force_success=False)
        groups = client.list_consumer_group(p, ls).get_consumer_groups()
        assert [(g.get_consumer_group_name(), g.get_timeout(), g.is_in_order()) for g in groups] == [
            (cg, 60, True)
        ]
        got = client.get_check_point(p, ls, cg).get_consumer_group_check_points()
        assert [(c["shard"], c["checkpoint"], c["consumer"]) for c in got] == [
            (0, CP0, "c-1"),
            (1, CP1, "c-1"),
            (2, "", ""),
        ]
        one = client.get_check_point(p, ls, cg, shard=1).get_consumer_group_check_points()
        assert one == [got[1]]
        cursor = client.get_cursor(p, ls, 0, "end").get_cursor()
        assert client.get_cursor_time(p, ls, 0, cursor).get_cursor_time() > 0
        assert sorted(s["shardID"] for s in client.list_shards(p, ls).get_shards_info()) == [0, 1, 2]
    finally:
        client._session.close()  # the SDK has no close(); its requests.Session holds the socket
    served = emulator_thread.run(lambda: dict(emulator_thread.emulator.counters.served))
    assert served["ConsumerGroupUpdateCheckPoint"] == 2
    assert served["ConsumerGroupHeartBeat"] == 1


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_py_sdk_wrong_secret_gets_signature_not_match(
    emulator_thread, emulator_localhost_dns, version
) -> None:
    client = _py_client(emulator_thread.emulator.port, version, secret="wrong-secret")
    try:
        with pytest.raises(LogException) as info:
            client.create_project("never-made", "")
    finally:
        client._session.close()
    assert info.value.get_error_code() == "SignatureNotMatch"
    assert emulator_thread.run(lambda: dict(emulator_thread.emulator.state.projects)) == {}


def _tea(port: int, version: str, secret: str = DEMO_ACCESS_KEY_SECRET):
    config = tea_config.Config(
        access_key_id=DEMO_ACCESS_KEY_ID,
        access_key_secret=secret,
        endpoint=f"localhost:{port}",
        protocol="http",
        region_id="ap-southeast-1",
        signature_version=version,
    )
    return tea_client.Client(config)


@pytest.mark.parametrize("version", ["v1", "v4"])
async def test_tea_async_sdk_round_trip(emulator_localhost_dns, version) -> None:
    m = tea_models
    p, ls, cg = f"tea-{version}-project", "app-log", "cg-tea"
    async with Emulator() as emu:
        client = _tea(emu.port, version)
        await client.create_project_async(m.CreateProjectRequest(project_name=p, description="tea"))
        await client.create_log_store_async(
            p, m.CreateLogStoreRequest(logstore_name=ls, shard_count=2, ttl=7)
        )
        await client.create_consumer_group_async(
            p, ls, m.CreateConsumerGroupRequest(consumer_group=cg, timeout=30, order=False)
        )
        beat = await client.consumer_group_heart_beat_async(
            p, ls, cg, m.ConsumerGroupHeartBeatRequest(body=[], consumer="t-1")
        )
        assert beat.body == [0, 1]
        for shard, cp, force in ((0, CP0, True), (1, CP1, False)):
            await client.consumer_group_update_check_point_async(
                p,
                ls,
                cg,
                m.ConsumerGroupUpdateCheckPointRequest(
                    shard=shard, checkpoint=cp, consumer="t-1", force_success=force
                ),
            )
        got = await client.get_check_point_async(p, ls, cg, m.GetCheckPointRequest())
        assert [(b.shard, b.checkpoint, b.consumer) for b in got.body] == [(0, CP0, "t-1"), (1, CP1, "t-1")]
        assert all(b.update_time > 10**15 for b in got.body)
        one = await client.get_check_point_async(p, ls, cg, m.GetCheckPointRequest(shard=1))
        assert [(b.shard, b.checkpoint) for b in one.body] == [(1, CP1)]
        groups = await client.list_consumer_group_async(p, ls)
        assert [(g.name, g.timeout, g.order) for g in groups.body] == [(cg, 30, False)]
        assert emu.counters.errors == {}
        assert emu.counters.served["ConsumerGroupUpdateCheckPoint"] == 2


@pytest.mark.parametrize("version", ["v1", "v4"])
async def test_tea_async_sdk_wrong_secret(emulator_localhost_dns, version) -> None:
    async with Emulator() as emu:
        client = _tea(emu.port, version, secret="wrong-secret")
        with pytest.raises(UnretryableException) as info:
            await client.create_project_async(
                tea_models.CreateProjectRequest(project_name="nope", description="")
            )
        # The SDK wraps the typed error (code, status) in UnretryableException.inner_exception.
        inner = info.value.inner_exception
        assert (inner.code, inner.data["httpCode"]) == ("SignatureNotMatch", 401)
        assert emu.state.projects == {}
