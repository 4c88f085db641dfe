"""The per-call total timeout (one loop timer per call): it fires as ReadTimeout, leaves the
task's cancellation count as it found it, and never swallows somebody else's cancellation."""

from __future__ import annotations

import asyncio

import pytest
from helpers import checkpoints_body, ok

from aiosls import CheckpointService, Credentials, HttpRequest, HttpResponse, ReadTimeout, Timeouts
from aiosls.transport.memory import InMemoryTransport

CREDS = Credentials("LTAI-test-id", "test-secret")


def service(handler, timeouts: Timeouts) -> CheckpointService:
    return CheckpointService(
        "cn-hangzhou.log.aliyuncs.com",
        CREDS,
        region="cn-hangzhou",
        transport=InMemoryTransport(handler),
        timeouts=timeouts,
    )


async def never(_req: HttpRequest) -> HttpResponse:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def test_total_timeout_leaves_the_task_uncancelled() -> None:
    task = asyncio.current_task()
    assert task is not None
    async with service(never, Timeouts(total=0.01)) as svc:
        with pytest.raises(ReadTimeout, match=r"total timeout of 0\.01s") as caught:
            await svc.get_checkpoints("my-project", "app-log", "cg-main")
        # The timer's cancel() was taken back: the task goes on as if never cancelled.
        assert task.cancelling() == 0
        assert isinstance(caught.value.__cause__, TimeoutError)
        assert caught.value.attempts == 1


async def test_an_outer_timeout_is_the_callers_not_ours() -> None:
    async with service(never, Timeouts(total=3600)) as svc:
        with pytest.raises(TimeoutError) as caught:
            async with asyncio.timeout(0.01):
                await svc.get_checkpoints("my-project", "app-log", "cg-main")
    assert type(caught.value) is TimeoutError  # asyncio's, not our ReadTimeout


async def test_a_call_that_finishes_in_time_disarms_its_timer() -> None:
    async with service(lambda _req: ok(checkpoints_body(2)), Timeouts(total=3600)) as svc:
        loop = asyncio.get_running_loop()
        for _ in range(3):
            assert len(await svc.get_checkpoints("my-project", "app-log", "cg-main")) == 2
        # Every call's timer handle was cancelled (none is left to fire in an hour).
        live = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        assert all(h.when() < loop.time() + 3000 for h in live)
