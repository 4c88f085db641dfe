"""An emulator seeded with every lag key, read over HTTP as a lag client would.

The emulator's clock is frozen at the real time (so signed requests stay valid) and moved
only by ``advance``: every value below is exact, and nothing sleeps to wait for the simulation.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from aiosls import AuthError, Backoff, CheckpointService, ClientError, Credentials, RetryPolicy
from aiosls.emulator import Emulator, decode_cursor, encode_cursor

P = "lag-project"
FAST = RetryPolicy(throttling=Backoff(initial=0.01, cap=0.05), transient=Backoff(initial=0.01, cap=0.05))
CREDS = Credentials("lag-key", "lag-secret")
SEED = {
    "access_keys": {"lag-key": "lag-secret"},
    "projects": {
        P: {
            "logstores": {
                # Idle, holding old data: write_rate 0, history at 2/s ending 10 min ago, 1 h kept.
                "old-log": {
                    "shards": 2,
                    "history_seconds": 5400,
                    "history_rate": 2,
                    "idle_seconds": 600,
                    "ttl_seconds": 3600,
                    "consumer_groups": {
                        "cg-lag": {
                            "checkpoints": {
                                "0": {"lag_seconds": 90, "consumer": "c-1"},
                                "1": {"lag_seconds": 0},
                            }
                        },
                        "cg-expired": {"checkpoints": {"0": {"lag_seconds": 4000}}},
                        "cg-never": {},
                    },
                },
                # Live: 4 packages/s on the readwrite shards, shard 0 read-only after a split.
                "live-log": {
                    "shards": 3,
                    "write_rate": 4,
                    "history_seconds": 300,
                    "readonly_shards": [0],
                    "consumer_groups": {
                        mode: {"simulate": mode, "checkpoints": {"1": {"lag_seconds": 60}}}
                        for mode in ("healthy", "slow", "stalled", "stopped", "rewinding")
                    },
                },
            }
        }
    },
}


@pytest.fixture
async def env():
    frozen = datetime.now(UTC).replace(microsecond=0)
    async with (
        Emulator(seed=SEED, clock=lambda: frozen, tick_interval=None, region="cn-hangzhou") as emu,
        CheckpointService(
            emu.endpoint, CREDS, region="cn-hangzhou", signature_version="v4", retry=FAST
        ) as svc,
    ):
        yield emu, svc, int(frozen.timestamp())


async def _time(svc: CheckpointService, logstore: str, shard: int, cursor: int) -> int:
    return int((await svc.get_cursor_time(P, logstore, shard, encode_cursor(cursor))).timestamp())


async def _lag(svc: CheckpointService, logstore: str, group: str, shard: int) -> int:
    """latest_time - consumed_time, from GetCursor end, GetCheckPoint and GetCursorTime."""
    end = decode_cursor(await svc.get_cursor(P, logstore, shard, "end"))
    (cp,) = await svc.get_checkpoints(P, logstore, group, shard=shard)
    consumed = await _time(svc, logstore, shard, decode_cursor(cp.checkpoint) - 1)
    return await _time(svc, logstore, shard, end - 1) - consumed


async def test_seeded_history_idle_ttl_and_lag_seconds_over_http(env) -> None:
    emu, svc, now = env
    assert await _lag(svc, "old-log", "cg-lag", 0) == 90
    assert await _lag(svc, "old-log", "cg-lag", 1) == 0
    end = decode_cursor(await svc.get_cursor(P, "old-log", 0, "end"))
    assert await _time(svc, "old-log", 0, end - 1) == now - 600  # idle for 10 minutes
    (cp,) = await svc.get_checkpoints(P, "old-log", "cg-lag", shard=1)
    assert cp.checkpoint == await svc.get_cursor(P, "old-log", 1, "end")  # caught up: the end cursor
    assert cp.update_time == datetime.fromtimestamp(now, UTC)
    # 1.5 h written, 1 h kept: the oldest retained package is an hour old.
    begin = decode_cursor(await svc.get_cursor(P, "old-log", 0, "begin"))
    assert await _time(svc, "old-log", 0, begin) == now - 3600
    assert await _time(svc, "old-log", 0, begin - 1) == now - 3600
    # A checkpoint older than the oldest retained data: InvalidCursor, 400.
    (expired,) = await svc.get_checkpoints(P, "old-log", "cg-expired", shard=0)
    assert decode_cursor(expired.checkpoint) < begin
    with pytest.raises(ClientError) as info:
        await _time(svc, "old-log", 0, decode_cursor(expired.checkpoint) - 1)
    assert (info.value.status, info.value.error_code) == (400, "InvalidCursor")
    with pytest.raises(ClientError, match="InvalidCursor"):
        await _time(svc, "old-log", 0, end + 1)
    assert [cp.checkpoint for cp in await svc.get_checkpoints(P, "old-log", "cg-never")] == ["", ""]
    # Time passes, nothing is written: caught up stays caught up, the TTL moves begin.
    emu.advance(300)
    assert await _lag(svc, "old-log", "cg-lag", 1) == 0
    begin = decode_cursor(await svc.get_cursor(P, "old-log", 0, "begin"))
    assert await _time(svc, "old-log", 0, begin) == now + 300 - 3600


async def test_live_writes_readonly_shard_and_simulated_groups_over_http(env) -> None:
    emu, svc, now = env
    shards = await svc.list_shards(P, "live-log")
    assert [(s.shard_id, s.status) for s in shards] == [(0, "readonly"), (1, "readwrite"), (2, "readwrite")]
    readonly_end = await svc.get_cursor(P, "live-log", 0, "end")
    emu.advance(8)
    assert await svc.get_cursor(P, "live-log", 0, "end") == readonly_end  # no writes after the split
    end = decode_cursor(await svc.get_cursor(P, "live-log", 1, "end"))
    assert await _time(svc, "live-log", 1, end - 1) == now + 8
    assert await _lag(svc, "live-log", "healthy", 1) == 0
    assert await _lag(svc, "live-log", "slow", 1) == 64  # 8 s written, 4 s consumed
    assert await _lag(svc, "live-log", "stalled", 1) == 68
    assert await _lag(svc, "live-log", "stopped", 1) == 68
    (stalled,) = await svc.get_checkpoints(P, "live-log", "stalled", shard=1)
    assert stalled.update_time == datetime.fromtimestamp(now + 8, UTC)
    (stopped,) = await svc.get_checkpoints(P, "live-log", "stopped", shard=1)
    # Its last commit dates from when the data it last consumed was new: a minute ago.
    assert stopped.update_time == datetime.fromtimestamp(now - 60, UTC)
    emu.advance(2)
    assert await _lag(svc, "live-log", "rewinding", 1) == 310  # back to data 300 s old
    # Simulated consumers hold the shards, as real ones do after heartbeating.
    groups = {g.name for g in await svc.list_consumer_groups(P, "live-log")}
    assert groups == {"healthy", "slow", "stalled", "stopped", "rewinding"}
    assert set(emu.state.consumer_group(P, "live-log", "healthy").owners) == {0, 1, 2}


async def test_the_region_is_checked_when_configured(env) -> None:
    emu, _, _ = env
    async with CheckpointService(emu.endpoint, CREDS, region="cn-shanghai", signature_version="v4") as wrong:
        with pytest.raises(AuthError) as info:
            await wrong.get_checkpoints(P, "old-log", "cg-lag")
    assert info.value.error_code == "SignatureNotMatch"
    async with CheckpointService(emu.endpoint, CREDS, signature_version="v1") as v1:
        assert len(await v1.get_checkpoints(P, "old-log", "cg-lag")) == 2  # V1 carries no region


async def test_the_background_task_ticks_with_the_clock_and_stops_with_the_server() -> None:
    called = asyncio.Event()
    start = datetime.now(UTC)

    def clock() -> datetime:
        called.set()
        return start

    def tickers() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if "_tick_forever" in repr(t.get_coro())]

    emu = Emulator(seed=SEED, clock=clock, tick_interval=0.01)
    async with emu:
        assert len(tickers()) == 1
        shard = emu.state.shard(P, "live-log", 1)
        assert shard.packages == 300 * 4 + 1
        emu.clock_offset = timedelta(seconds=4)
        called.clear()
        # Only the background task reads the clock here; tick() is synchronous, so once the
        # event wakes us the whole tick has run.
        await asyncio.wait_for(called.wait(), 10)
        assert shard.packages == 300 * 4 + 1 + 16
    assert tickers() == []
