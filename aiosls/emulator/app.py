"""The HTTP face of the emulator: one low-level aiohttp handler that routes, verifies, injects
faults and answers in SLS's wire format (``docs/protocol.md``).

A plain ``aiohttp.web.Server`` handler (no Application, router or middlewares) keeps the hot
path short: split the raw path, form-decode the raw query, verify, look up, dump JSON.
Every failure becomes an SLS error answer with a 4xx status; nothing a client sends can make
the handler raise, and only an emulator bug (logged) answers 500 without an injected fault.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from .._serde import dumps, loads
from .._text import safe_text
from ..signing import http_date
from .auth import Verifier
from .faults import Counters, FaultInjector
from .state import ApiError, EmulatorState, is_decimal

__all__ = ["MAX_BODY", "EmulatorHandler"]

logger = logging.getLogger("aiosls.emulator")

#: Request bodies above this get 413 ``PostBodyTooLarge`` [D: 10 MiB].
MAX_BODY: Final = 10 * 1024 * 1024
_JSON: Final = "application/json"
_SERVER: Final = "aiosls-emulator"
_BAD_GATEWAY_PAGE: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_TYPED_FAULTS: Final = {
    "throttle": (403, "ReadQuotaExceed", "read quota exceeded (injected fault)"),
    "internal_error": (500, "InternalServerError", "internal server error (injected fault)"),
    "server_busy": (503, "ServerBusy", "server is busy, retry later (injected fault)"),
}


@lru_cache(maxsize=1024)
def project_from_host(host: str) -> str | None:
    """``proj.127.0.0.1:8080`` -> ``proj``; a bare IP, ``localhost`` or one label -> None."""
    if host.startswith("["):
        return None  # [IPv6]:port carries no project label
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.rstrip(".").lower()
    if name == "localhost":
        return None
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return None
    label, dot, rest = name.partition(".")
    return label if dot and rest and label else None


class _SlowClient(Exception):
    """The client did not send its body within the body timeout: drop the connection."""


def _bad(message: str, code: str = "ParameterInvalid") -> ApiError:
    return ApiError(400, code, message)


def _json_body(body: bytes) -> Any:
    if not body:
        raise _bad("request body must be JSON, got an empty body", "PostBodyInvalid")
    try:
        return loads(body)
    # orjson's and json's decode errors are both ValueErrors; stdlib json (the fallback when
    # orjson is not installed) raises RecursionError on deeply nested input instead.
    except (ValueError, RecursionError):
        raise _bad("request body is not valid JSON", "PostBodyInvalid") from None


def _object(body: bytes) -> dict[str, Any]:
    data = _json_body(body)
    if not isinstance(data, dict):
        raise _bad("request body must be a JSON object", "PostBodyInvalid")
    return data


def _int(value: object, what: str, lo: int = 0, hi: int = 1 << 62) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise _bad(f"{what} must be an integer in {lo}..{hi}")
    return value


def _int_param(params: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not is_decimal(raw) or len(raw) > 18:
        raise _bad(f"query parameter {name} must be an integer in {lo}..{hi}")
    return _int(int(raw), f"query parameter {name}", lo, hi)


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"{what} must be a string")
    return value


def _shard_segment(text: str) -> int:
    if not is_decimal(text) or len(text) > 9:
        raise _bad(f"shard {text[:32]!r} must be a non-negative integer")
    return int(text)


def _require(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise ApiError(400, "MissingParameter", f"missing query parameter {name}")
    return value


# A route result: the API name and the function that runs it.
_Op = Callable[[str, list[str], dict[str, str], bytes], Any]


class EmulatorHandler:
    """The request handler: route -> read body -> verify -> fault -> run -> answer."""

    def __init__(
        self,
        state: EmulatorState,
        verifier: Verifier | None,
        faults: FaultInjector,
        counters: Counters,
        now: Callable[[], datetime],
        *,
        max_body: int = MAX_BODY,
        body_timeout: float = 20.0,
    ) -> None:
        self.state = state
        self.verifier = verifier
        self.faults = faults
        self.counters = counters
        self.now = now
        self.max_body = max_body
        self.body_timeout = body_timeout
        self._rid_prefix = os.urandom(4).hex().upper()
        self._rid_seq = 0

    def _request_id(self) -> str:
        # 24 upper-hex characters like SLS's: a per-instance prefix and a sequence number.
        self._rid_seq += 1
        return f"{self._rid_prefix}{self._rid_seq:016X}"

    # --- responses -------------------------------------------------------------------------

    def _ok(self, api: str, payload: Any) -> web.Response:
        self.counters.served[api] += 1
        body = b"" if payload is None else dumps(payload)
        return web.Response(
            body=body,
            headers=self._headers(),
        )

    def _headers(self) -> dict[str, str]:
        # Date is the emulator's own time (clock + offset), as a server with that clock would
        # send: clients that learn their skew from it (aiosls does) see the emulated skew.
        return {
            "Content-Type": _JSON,
            "x-log-requestid": self._request_id(),
            "Date": http_date(self.now()),
            "Server": _SERVER,
        }

    def _error(self, status: int, code: str, message: str) -> web.Response:
        self.counters.errors[code] += 1
        # A message may quote what the client sent: no surrogate-escaped bytes in the JSON.
        text = message.encode("utf-8", "backslashreplace").decode("utf-8")
        return web.Response(
            status=status,
            body=dumps({"errorCode": code, "errorMessage": text}),
            headers=self._headers(),
        )

    # --- entry point -----------------------------------------------------------------------

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        self.counters.requests_total += 1
        protocol = request.protocol
        started = getattr(protocol, "request_started", None)
        if started is not None:
            started()  # the head is complete: the connection's header timer stops
        try:
            return await self._handle(request)
        except ApiError as exc:
            logger.debug(
                "%s %s -> %s %s", request.method, safe_text(request.raw_path, 120), exc.status, exc.code
            )
            resp = self._error(exc.status, exc.code, exc.message)
            if request.body_exists and not request.content.is_eof():
                resp.force_close()  # the body was not read (or not all): do not wait for it
            return resp
        except _SlowClient:
            logger.info(
                "closing the connection from %s: request body not received within %ss",
                safe_text(request.remote),
                self.body_timeout,
            )
            return self._drop(request)
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:  # an emulator bug: log it, answer like the service would
            logger.exception(
                "emulator bug while handling %s %s", request.method, safe_text(request.raw_path, 120)
            )
            return self._error(500, "InternalServerError", "emulator internal error")
        finally:
            finished = getattr(protocol, "request_finished", None)
            if finished is not None:
                finished()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        raw_path, _, raw_query = request.raw_path.partition("?")
        raw_path = raw_path.partition("#")[0]
        params = dict(parse_qsl(raw_query, keep_blank_values=True)) if raw_query else {}
        method = request.method
        api, op = self._route(method, raw_path, params)
        self.counters.requests[api] += 1
        headers = {k.lower(): v for k, v in request.headers.items()}
        # Authenticate what the head allows (key id, date) before buffering any body.
        head = None if self.verifier is None else self.verifier.check_head(headers, self.now())
        body = await self._read_body(request)
        if self.verifier is not None and head is not None:
            self.verifier.check_body(head, method, raw_path, params, headers, body)
        project = project_from_host(headers.get("host", ""))
        fault = self.faults.decide(api)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            kind = fault.kind
            if kind in _TYPED_FAULTS:
                status, code, message = _TYPED_FAULTS[kind]
                return self._error(status, code, message)
            if kind == "bad_gateway":
                return web.Response(status=502, body=_BAD_GATEWAY_PAGE, content_type="text/html")
            if kind == "reset":
                return self._drop(request)
            if kind == "reset_mid_body":
                return await self._cut(request, self._ok(api, self._run(op, project, raw_path, params, body)))
        return self._ok(api, self._run(op, project, raw_path, params, body))

    @staticmethod
    def _run(op: _Op, project: str | None, path: str, params: dict[str, str], body: bytes) -> Any:
        segments = [unquote(s) if "%" in s else s for s in path.split("/")]
        return op(project or "", segments, params, body)

    async def _read_body(self, request: web.BaseRequest) -> bytes:
        if not request.body_exists:
            return b""
        length = request.content_length
        if length is not None and length > self.max_body:
            raise ApiError(413, "PostBodyTooLarge", f"request body is larger than {self.max_body} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                async for chunk in request.content.iter_any():
                    size += len(chunk)
                    if size > self.max_body:
                        raise ApiError(
                            413, "PostBodyTooLarge", f"request body is larger than {self.max_body} bytes"
                        )
                    chunks.append(chunk)
        except TimeoutError:
            raise _SlowClient from None
        return b"".join(chunks)

    @staticmethod
    def _drop(request: web.BaseRequest) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        # Nothing can be written any more; aiohttp ignores the write to the closed transport.
        return web.Response(status=200)

    @staticmethod
    async def _cut(request: web.BaseRequest, full: web.Response) -> web.StreamResponse:
        body = bytes(full.body) if isinstance(full.body, (bytes, bytearray)) else b""
        resp = web.StreamResponse(status=200, headers=full.headers)
        resp.content_length = max(len(body), 2)
        await resp.prepare(request)
        await resp.write(body[: len(body) // 2])
        transport = request.transport
        if transport is not None:
            if transport.get_write_buffer_size():
                transport.close()  # flush what was written, then FIN: still a short body
            else:
                transport.abort()  # RST right after the partial body
        return resp

    # --- routing ---------------------------------------------------------------------------

    def _route(self, method: str, path: str, params: dict[str, str]) -> tuple[str, _Op]:
        parts = path.split("/")
        n = len(parts)
        if n == 2 and parts[1] == "":
            if method == "POST":
                return "CreateProject", self._create_project
            raise ApiError(405, "InvalidMethod", f"method {method} is not allowed on /")
        if n < 2 or parts[0] != "" or parts[1] != "logstores" or n > 5 or "" in parts[2:]:
            raise ApiError(404, "NotFound", "no such API")  # code for unknown paths is [U]
        if n == 2:
            if method == "GET":
                return "ListLogStores", self._list_logstores
            if method == "POST":
                return "CreateLogStore", self._create_logstore
        elif n == 3:
            if method == "GET":
                return "GetLogStore", self._get_logstore
            if method == "DELETE":
                return "DeleteLogStore", self._delete_logstore
        elif parts[3] == "consumergroups":
            if n == 4:
                if method == "GET":
                    return "ListConsumerGroup", self._list_groups
                if method == "POST":
                    return "CreateConsumerGroup", self._create_group
            else:
                if method == "GET":
                    return "GetCheckPoint", self._get_checkpoint
                if method == "POST":
                    kind = _require(params, "type")
                    if kind == "checkpoint":
                        return "ConsumerGroupUpdateCheckPoint", self._update_checkpoint
                    if kind == "heartbeat":
                        return "ConsumerGroupHeartBeat", self._heartbeat
                    raise _bad(f"type must be checkpoint or heartbeat, not {kind[:32]!r}")
                if method == "PUT":
                    return "UpdateConsumerGroup", self._update_group
                if method == "DELETE":
                    return "DeleteConsumerGroup", self._delete_group
        elif parts[3] == "shards":
            if n == 4:
                if method == "GET":
                    return "ListShards", self._list_shards
            elif method == "GET":
                kind = _require(params, "type")
                if kind == "cursor":
                    return "GetCursor", self._get_cursor
                if kind == "cursor_time":
                    return "GetCursorTime", self._get_cursor_time
                raise _bad(f"type must be cursor or cursor_time, not {kind[:32]!r}")
        else:
            raise ApiError(404, "NotFound", "no such API")
        raise ApiError(405, "InvalidMethod", f"method {method} is not allowed on this resource")

    # --- operations (project, path segments, decoded query, body) -> JSON-ready value ------
    # Segments: ['', 'logstores', logstore, 'consumergroups'|'shards', name-or-shard]

    def _create_project(self, project: str, seg: list[str], q: dict[str, str], body: bytes) -> None:
        data = _object(body)
        name = _str(data.get("projectName", project), "projectName")
        if project and name != project:
            raise _bad(f"projectName {name!r} does not match the Host project {project!r}")
        self.state.create_project(name, _str(data.get("description", ""), "description"))

    def _list_logstores(self, project: str, seg: list[str], q: dict[str, str], body: bytes) -> Any:
        offset = _int_param(q, "offset", 0, 0, 1 << 31)
        size = _int_param(q, "size", 200, 1, 500)
        return self.state.list_logstores(project, offset, size, q.get("logstoreName", ""))

    def _create_logstore(self, project: str, seg: list[str], q: dict[str, str], body: bytes) -> None:
        data = _object(body)
        self.state.project(project)
        name = _str(data.get("logstoreName"), "logstoreName")
        shard_count = _int(data.get("shardCount", 2), "shardCount", 1, 256)
        ttl = _int(data.get("ttl", 30), "ttl", 1, 3650)
        self.state.create_logstore(project, name, shard_count, ttl)

    def _get_logstore(self, project: str, seg: list[str], q: dict[str, str], body: bytes) -> Any:
        ls = self.state.logstore(project, seg[2])
        created = min((s.create_time_s for s in ls.shards.values()), default=0)
        return {
            "logstoreName": ls.name,
            "ttl": ls.ttl,
            "shardCount": len(ls.shards),
            "createTime": created,
            "lastModifyTime": created,
        }

    def _delete_logstore(self, project: str, seg: list[str], q: dict[str, str], body: bytes) -> None:
        self.state.logstore(project, seg[2])
        del self.state.projects[project].logstores[seg[2]]

    def _list_shards(self, project: str, seg: list[str], q: dict[str, str], body: bytes) -> Any:
        return self.state.list_shards(project, seg[2])

    def _get_cursor(self, project: str, seg: list[str], q: dict[str, str], body: bytes) -> Any:
        from_ = _require(q, "from")
        return {"cursor": self.state.get_cursor(project, seg[2], _shard_segment(seg[4]), from_)}

    def _get_cursor_time(self, project: str, seg: list[str], q: dict[str, str], body: bytes) -> Any:
        cursor = _require(q, "cursor")
        t = self.state.get_cursor_time(project, seg[2], _shard_segment(seg[4]), cursor)
        return {"cursor_time": t}

    def _list_groups(self, project: str, seg: list[str], q: dict[str, str], body: bytes) -> Any:
        return self.state.list_consumer_groups(project, seg[2])

    def _create_group(self, project: str, seg: list[str], q: dict[str, str], body: bytes) -> None:
        data = _object(body)
        name = _str(data.get("consumerGroup"), "consumerGroup")
        timeout = _int(data.get("timeout"), "timeout", 1, 86400)
        order = data.get("order", False)
        if not isinstance(order, bool):
            raise _bad("order must be a boolean")
        self.state.create_consumer_group(project, seg[2], name, timeout, order)

    def _update_group(self, project: str, seg: list[str], q: dict[str, str], body: bytes) -> None:
        data = _object(body)
        timeout = data.get("timeout")
        order = data.get("order")
        if timeout is None and order is None:
            raise _bad("give timeout and/or order")
        if timeout is not None:
            timeout = _int(timeout, "timeout", 1, 86400)
        if order is not None and not isinstance(order, bool):
            raise _bad("order must be a boolean")
        self.state.update_consumer_group(project, seg[2], seg[4], timeout, order)

    def _delete_group(self, project: str, seg: list[str], q: dict[str, str], body: bytes) -> None:
        self.state.delete_consumer_group(project, seg[2], seg[4])

    def _get_checkpoint(self, project: str, seg: list[str], q: dict[str, str], body: bytes) -> Any:
        raw = q.get("shard")
        # Some clients send shard=-1 for "all shards" (the py SDK's default never goes out, but
        # be tolerant); anything else non-numeric is a bad parameter.
        shard = None if raw is None or raw in ("", "-1") else _shard_segment(raw)
        return self.state.get_checkpoints(project, seg[2], seg[4], shard)

    def _update_checkpoint(self, project: str, seg: list[str], q: dict[str, str], body: bytes) -> None:
        data = _object(body)
        shard = _int(data.get("shard"), "shard", 0, 1 << 31)
        checkpoint = _str(data.get("checkpoint"), "checkpoint")
        if not checkpoint:
            raise _bad("checkpoint must not be empty")
        consumer = q.get("consumer", "")
        # py and tea send True/False, others true/false (docs/protocol.md). Absent is taken as false:
        # what the service does then is [U], and the official SDKs always send it, so the emulator
        # takes the strict default. It also closes a V1 hole: V1 signs the query unencoded, so a
        # signed "consumer=c1&forceSuccess=false" re-encoded as "consumer=c1%26forceSuccess%3Dfalse"
        # still verifies; with a lenient default that would turn into a forced update.
        force = q.get("forceSuccess", "false").lower()
        if force not in ("true", "false"):
            raise _bad("forceSuccess must be true or false")
        self.state.update_checkpoint(project, seg[2], seg[4], shard, checkpoint, consumer, force == "true")

    def _heartbeat(self, project: str, seg: list[str], q: dict[str, str], body: bytes) -> Any:
        consumer = _require(q, "consumer")
        held = _json_body(body) if body else []
        if not isinstance(held, list) or not all(type(s) is int and s >= 0 for s in held):
            raise _bad("heartbeat body must be a JSON array of shard ids", "PostBodyInvalid")
        return self.state.heartbeat(project, seg[2], seg[4], consumer, held)
