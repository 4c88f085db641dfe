"""The scan's discovery hook: ``on_discovery`` reports projects done of total and targets found."""

from __future__ import annotations

import itertools

from helpers import checkpoints_body, ok, sls_error, split

from aiosls import NO_RETRY, CheckpointService, Credentials, HttpRequest, HttpResponse, InMemoryTransport
from aiosls.discovery import DiscoveryProgress

CREDS = Credentials("AKID", "secret")


async def handler(request: HttpRequest) -> HttpResponse:
    project = request.headers["Host"].split(".", 1)[0]
    path, _ = split(request)
    if project == "missing":
        return sls_error(404, "ProjectNotExist")
    if path == "/logstores":
        return ok({"count": 2, "total": 2, "logstores": ["app-log", "web-log"]})
    if path.endswith("/consumergroups"):
        groups = ["cg-a", "cg-b", "skip-me"] if "app-log" in path else ["cg-c"]
        return ok([{"name": g, "timeout": 60, "order": False} for g in groups])
    return ok(checkpoints_body(1))


def service() -> CheckpointService:
    transport = InMemoryTransport(handler, record=False)
    return CheckpointService("cn-hangzhou.log.aliyuncs.com", CREDS, transport=transport, retry=NO_RETRY)


async def test_scan_reports_projects_done_and_targets_found() -> None:
    seen: list[DiscoveryProgress] = []
    async with (
        service() as svc,
        svc.scan(
            ["proj-1", "proj-2", "missing"], consumer_group_filter="cg-*", on_discovery=seen.append
        ) as stream,
    ):
        results = [r async for r in stream]
    assert len([r for r in results if r.ok]) == 6
    assert seen[-1] == DiscoveryProgress(projects_done=3, projects_total=3, targets_found=6)
    assert seen[-1].finished
    assert not any(p.finished for p in seen[:-1])
    # Monotonic: a display never goes backwards.
    assert [p.projects_done for p in seen] == sorted(p.projects_done for p in seen)
    assert [p.targets_found for p in seen] == sorted(p.targets_found for p in seen)
    assert sum(p.projects_done > q.projects_done for q, p in itertools.pairwise(seen)) == 2


async def test_scan_lag_passes_the_hook_through() -> None:
    seen: list[DiscoveryProgress] = []
    async with service() as svc, svc.scan_lag("missing", on_discovery=seen.append) as stream:
        results = [r async for r in stream]
    assert [r.ok for r in results] == [False]
    assert seen == [DiscoveryProgress(1, 1, 0)]


async def test_no_projects_is_finished_at_once() -> None:
    seen: list[DiscoveryProgress] = []
    async with service() as svc, svc.scan([], on_discovery=seen.append) as stream:
        assert [r async for r in stream] == []
    assert seen == [DiscoveryProgress(0, 0, 0)]
    assert seen[0].finished
