"""The pure protocol core: operations -> signed ``HttpRequest``; ``HttpResponse`` -> models/errors.

No sockets, no clock (``now`` is an argument), no asyncio, no logging. Builders validate every
name first (``docs/protocol.md``, "Names"), percent-encode each path segment and query value
(RFC 3986), and the signature is computed over exactly the path and query bytes that go on the
wire. Server text that ends up in an error is escaped and capped (:func:`aiosls._text.safe_text`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Final, TypeVar
from urllib.parse import quote

import attrs
import cattrs
from cattrs.v import format_exception

from . import names, signing
from ._http import HttpRequest, HttpResponse
from ._serde import CONVERTER, DETAILED_CONVERTER, dumps, loads
from ._text import safe_text
from .credentials import Credentials
from .endpoint import Endpoint
from .errors import ResponseParseError, SlsError, ValidationError, error_class
from .models import MAX_EPOCH_VALUE, ConsumerGroup, Shard, ShardCheckpoint

__all__ = [
    "API_VERSION",
    "Operation",
    "build_request",
    "error_from_response",
]

API_VERSION: Final = "0.6.0"
_JSON: Final = "application/json"
_T = TypeVar("_T")


@attrs.frozen
class Operation:
    """One SLS call, validated and encoded but not yet signed.

    ``path`` is percent-encoded; ``params`` hold *raw* values (V1 signs them raw, V4 re-encodes).
    ``idempotent`` says whether a read timeout may be retried (the request may have landed).
    """

    name: str
    method: str
    project: str
    path: str
    params: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    idempotent: bool = True
    logstore: str | None = None


def _seg(value: str) -> str:
    # A no-op for valid names (all RFC 3986 unreserved); a safety net for anything else.
    return quote(value, safe="")


def _json_body(value: Any) -> bytes:
    return dumps(value)


def _checked_logstore_path(project: str, logstore: str) -> str:
    names.validate_project(project)
    names.validate_logstore(logstore)
    return f"/logstores/{_seg(logstore)}"


def _checked_group_path(project: str, logstore: str, consumer_group: str) -> str:
    path = _checked_logstore_path(project, logstore)
    names.validate_consumer_group(consumer_group)
    return f"{path}/consumergroups/{_seg(consumer_group)}"


# A fleet repeats the same few names across thousands of targets: remember valid ones. Only
# valid names are cached (a ValidationError is raised, not returned), and the cache is bounded.
_cached_logstore_path = lru_cache(maxsize=4096)(_checked_logstore_path)
_cached_group_path = lru_cache(maxsize=16384)(_checked_group_path)


def _logstore_path(project: str, logstore: str) -> str:
    """Validate ``project`` and ``logstore``; return the logstore's encoded path."""
    try:
        return _cached_logstore_path(project, logstore)
    except TypeError:  # unhashable, so certainly not a name: let the validators say why
        return _checked_logstore_path(project, logstore)


def _group_path(project: str, logstore: str, consumer_group: str) -> str:
    """Validate all three names; return the consumer group's encoded path."""
    try:
        return _cached_group_path(project, logstore, consumer_group)
    except TypeError:
        return _checked_group_path(project, logstore, consumer_group)


# --- builders -------------------------------------------------------------------------------------


def _get_checkpoint(project: str, logstore: str, consumer_group: str, shard: int | None) -> Operation:
    path = _group_path(project, logstore, consumer_group)
    params = {} if shard is None else {"shard": str(names.validate_shard(shard))}
    # Read-only params: the same Operation is handed out again by the cache below.
    return Operation("GetCheckPoint", "GET", project, path, MappingProxyType(params), logstore=logstore)


# A fan-out or a repeated sweep asks for the same targets again and again, and an Operation is
# immutable: remember the valid ones (typed: a True shard is refused, never taken for 1).
_cached_get_checkpoint = lru_cache(maxsize=16384, typed=True)(_get_checkpoint)


def get_checkpoint(project: str, logstore: str, consumer_group: str, shard: int | None = None) -> Operation:
    """GetCheckPoint: every shard's checkpoint, or one shard's (``[]`` if it does not exist)."""
    try:
        return _cached_get_checkpoint(project, logstore, consumer_group, shard)
    except TypeError:  # unhashable, so certainly not a name: let the validators say why
        return _get_checkpoint(project, logstore, consumer_group, shard)


def update_checkpoint(
    project: str,
    logstore: str,
    consumer_group: str,
    shard: int,
    checkpoint: str,
    *,
    consumer: str = "",
    force_success: bool = True,
) -> Operation:
    """ConsumerGroupUpdateCheckPoint. ``forceSuccess`` goes out lower-case (``true``/``false``)."""
    path = _group_path(project, logstore, consumer_group)
    names.validate_shard(shard)
    _text(checkpoint, "checkpoint")
    _check_consumer(consumer)
    return Operation(
        "ConsumerGroupUpdateCheckPoint",
        "POST",
        project,
        path,
        {"type": "checkpoint", "consumer": consumer, "forceSuccess": "true" if force_success else "false"},
        _json_body({"shard": shard, "checkpoint": checkpoint}),
        # Setting the same value twice is harmless; the retry policy keeps retries prompt.
        idempotent=True,
        logstore=logstore,
    )


def _text(value: object, argument: str, *, allow_empty: bool = False, max_length: int = 4096) -> str:
    """A free-text query or body value: a str that UTF-8 can encode (no lone surrogate)."""
    if not isinstance(value, str) or (not value and not allow_empty) or len(value) > max_length:
        kind = "a str" if allow_empty else "a non-empty str"
        raise ValidationError(
            f"{argument} must be {kind} of at most {max_length} characters", error_code="ParameterInvalid"
        )
    # str.isascii() is the fast path; otherwise a lone surrogate is what UTF-8 cannot encode.
    # Raised outside the handler so the value (a cursor, a consumer name) is not kept on
    # __context__ either.
    if not value.isascii() and not _encodes(value):
        raise ValidationError(f"{argument} is not valid text (it holds a lone surrogate)")
    return value


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_consumer(consumer: object) -> str:
    _text(consumer, "consumer", allow_empty=True, max_length=256)
    assert isinstance(consumer, str)
    if any(ord(c) < 32 for c in consumer):
        raise ValidationError(
            "consumer must be a str of at most 256 printable characters",
            error_code="ParameterInvalid",
        )
    return consumer


def heartbeat(
    project: str, logstore: str, consumer_group: str, consumer: str, shards: Iterable[int]
) -> Operation:
    """ConsumerGroupHeartBeat: report held shards, learn the assigned ones."""
    path = _group_path(project, logstore, consumer_group)
    if not _check_consumer(consumer):
        raise ValidationError("consumer must not be empty", error_code="ParameterInvalid")
    held = [names.validate_shard(s, "shards[]") for s in shards]
    return Operation(
        "ConsumerGroupHeartBeat",
        "POST",
        project,
        path,
        {"type": "heartbeat", "consumer": consumer},
        _json_body(held),
        logstore=logstore,
    )


def _check_timeout(timeout: object) -> int:
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 0 < timeout <= 86400:
        raise ValidationError(
            f"invalid timeout {timeout!r}: must be an int of seconds in 1..86400",
            error_code="ParameterInvalid",
        )
    return timeout


def create_consumer_group(
    project: str, logstore: str, consumer_group: str, *, timeout: int, order: bool = False
) -> Operation:
    """CreateConsumerGroup. Not idempotent: a replay answers ``ConsumerGroupAlreadyExist``."""
    _group_path(project, logstore, consumer_group)  # validates all three names
    body = {"consumerGroup": consumer_group, "timeout": _check_timeout(timeout), "order": bool(order)}
    return Operation(
        "CreateConsumerGroup",
        "POST",
        project,
        f"{_logstore_path(project, logstore)}/consumergroups",
        body=_json_body(body),
        idempotent=False,
        logstore=logstore,
    )


def update_consumer_group(
    project: str,
    logstore: str,
    consumer_group: str,
    *,
    timeout: int | None = None,
    order: bool | None = None,
) -> Operation:
    """UpdateConsumerGroup: change ``timeout`` and/or ``order``."""
    path = _group_path(project, logstore, consumer_group)
    body: dict[str, Any] = {}
    if order is not None:
        body["order"] = bool(order)
    if timeout is not None:
        body["timeout"] = _check_timeout(timeout)
    if not body:
        raise ValidationError("give timeout and/or order to update", error_code="ParameterInvalid")
    return Operation(
        "UpdateConsumerGroup",
        "PUT",
        project,
        path,
        body=_json_body(body),
        logstore=logstore,
    )


def delete_consumer_group(project: str, logstore: str, consumer_group: str) -> Operation:
    """DeleteConsumerGroup."""
    path = _group_path(project, logstore, consumer_group)
    return Operation(
        "DeleteConsumerGroup",
        "DELETE",
        project,
        path,
        logstore=logstore,
    )


def list_consumer_groups(project: str, logstore: str) -> Operation:
    """ListConsumerGroup (no paging: at most 30 groups per logstore)."""
    path = _logstore_path(project, logstore)
    return Operation(
        "ListConsumerGroup",
        "GET",
        project,
        f"{path}/consumergroups",
        logstore=logstore,
    )


def list_shards(project: str, logstore: str) -> Operation:
    """ListShards."""
    path = _logstore_path(project, logstore)
    return Operation("ListShards", "GET", project, f"{path}/shards", logstore=logstore)


MAX_LOGSTORE_PAGE: Final = 500


def list_logstores(
    project: str, *, offset: int = 0, size: int = MAX_LOGSTORE_PAGE, name_filter: str | None = None
) -> Operation:
    """ListLogStores, one page (``size`` at most 500); ``name_filter`` is a substring match."""
    names.validate_project(project)
    names.validate_shard(offset, "offset")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_LOGSTORE_PAGE:
        raise ValidationError(
            f"invalid size {size!r}: must be 1..{MAX_LOGSTORE_PAGE}", error_code="ParameterInvalid"
        )
    params = {"offset": str(offset), "size": str(size)}
    if name_filter:
        params["logstoreName"] = _text(name_filter, "name_filter", max_length=128)
    return Operation("ListLogStores", "GET", project, "/logstores", params)


def get_cursor(project: str, logstore: str, shard: int, from_: str | int) -> Operation:
    """GetCursor: ``from_`` is ``"begin"``, ``"end"`` or unix seconds."""
    path = _logstore_path(project, logstore)
    names.validate_shard(shard)
    if isinstance(from_, bool) or not (from_ in ("begin", "end") or (isinstance(from_, int) and from_ >= 0)):
        raise ValidationError(
            f"invalid from_ {from_!r}: must be 'begin', 'end' or unix seconds >= 0",
            error_code="ParameterInvalid",
        )
    return Operation(
        "GetCursor",
        "GET",
        project,
        f"{path}/shards/{shard}",
        {"type": "cursor", "from": str(from_)},
        logstore=logstore,
    )


def get_cursor_time(project: str, logstore: str, shard: int, cursor: str) -> Operation:
    """GetCursorTime: the server receive time (unix seconds) of the package at ``cursor``."""
    path = _logstore_path(project, logstore)
    names.validate_shard(shard)
    _text(cursor, "cursor")
    return Operation(
        "GetCursorTime",
        "GET",
        project,
        f"{path}/shards/{shard}",
        {"type": "cursor_time", "cursor": cursor},
        logstore=logstore,
    )


def create_project(project: str, *, description: str = "") -> Operation:
    """CreateProject (``POST /`` on the project's host)."""
    names.validate_project(project)
    body = {"projectName": project, "description": description}
    return Operation("CreateProject", "POST", project, "/", body=_json_body(body), idempotent=False)


def create_logstore(project: str, logstore: str, *, shard_count: int = 2, ttl: int = 30) -> Operation:
    """CreateLogStore with ``shard_count`` shards and ``ttl`` days of retention."""
    _logstore_path(project, logstore)  # validates both names; the call itself posts to /logstores
    if isinstance(shard_count, bool) or not isinstance(shard_count, int) or not 0 < shard_count <= 256:
        raise ValidationError("shard_count must be 1..256", error_code="ParameterInvalid")
    body = {"logstoreName": logstore, "shardCount": shard_count, "ttl": ttl}
    return Operation(
        "CreateLogStore",
        "POST",
        project,
        "/logstores",
        body=_json_body(body),
        idempotent=False,
        logstore=logstore,
    )


# --- requests -------------------------------------------------------------------------------------


def encode_query(params: Mapping[str, str]) -> str:
    """RFC 3986 query string (``%20`` for space, ``%2B``/``%3D``/``%2F``), in insertion order."""
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in params.items())


@lru_cache(maxsize=1024)
def _addresses(endpoint: Endpoint, project: str) -> tuple[str, str]:
    # (Host header, base URL): pure functions of immutable values, and base_url parses the host
    # as an IP address on every call, so a fan-out over a few projects computes them once each.
    return endpoint.host_header(project), endpoint.base_url(project)


def build_request(
    op: Operation,
    *,
    endpoint: Endpoint,
    credentials: Credentials,
    now: datetime,
    signature_version: signing.SignatureVersion,
    region: str | None,
    user_agent: str,
) -> HttpRequest:
    """Sign ``op`` for ``now`` and return the exact request to send."""
    body = op.body
    host, base_url = _addresses(endpoint, op.project)
    headers: dict[str, str] = {
        "Host": host,
        "User-Agent": user_agent,
        "x-log-apiversion": API_VERSION,
        "x-log-bodyrawsize": str(len(body)),
    }
    if body:
        headers["Content-Type"] = _JSON
    if signature_version == "v4":
        if not region:
            raise ValueError("signature V4 needs a region")
        signing.sign_v4(op.method, op.path, op.params, headers, body, credentials, now, region=region)
    else:
        signing.sign_v1(op.method, op.path, op.params, headers, body, credentials, now)
    url = base_url + op.path
    if op.params:
        url += "?" + encode_query(op.params)
    return HttpRequest(op.method, url, headers, body, operation=op.name)


# --- responses ------------------------------------------------------------------------------------

_EXCERPT: Final = 200
# Server text is escaped (no ANSI escape or newline reaches a terminal or forges a log line) and
# cut: a proxy or a bug can send megabytes, and it ends up in logs and exception reprs. A code
# stays short enough to use as one (every real SLS code is under 40 characters).
_MAX_MESSAGE: Final = 1000
_MAX_CODE: Final = 128
_MAX_REQUEST_ID: Final = 128


def _request_id(response: HttpResponse) -> str | None:
    rid = response.request_id
    return None if rid is None else safe_text(rid, _MAX_REQUEST_ID)


def _excerpt(body: bytes) -> str:
    text = body[:_EXCERPT].decode("utf-8", "replace")
    text = " ".join(text.split())
    return text + ("..." if len(body) > _EXCERPT else "")


def error_from_response(response: HttpResponse, operation: str = "") -> SlsError:
    """The typed error for a non-200 answer (JSON ``errorCode``/``errorMessage`` or any page)."""
    code: str | None = None
    message: str | None = None
    try:
        data = loads(response.body) if response.body else None
    except (ValueError, RecursionError):  # RecursionError: stdlib json on absurd nesting
        data = None
    if isinstance(data, dict):
        raw_code, raw_msg = data.get("errorCode"), data.get("errorMessage")
        code = safe_text(raw_code, _MAX_CODE) if isinstance(raw_code, str) and raw_code else None
        message = safe_text(raw_msg, _MAX_MESSAGE) if isinstance(raw_msg, str) else None
    if message is None:
        shown = f": {_excerpt(response.body)!r}" if response.body else " with an empty body"
        message = f"HTTP {response.status} without an SLS error body{shown}"
    if operation:
        message = f"{operation}: {message}"
    cls = error_class(response.status, code)
    return cls(message, error_code=code, status=response.status, request_id=_request_id(response))


def _parse_error(response: HttpResponse, operation: str, why: str) -> ResponseParseError:
    why = safe_text(why, _MAX_MESSAGE)
    return ResponseParseError(
        f"{operation}: unexpected response body ({why}): {_excerpt(response.body)!r}",
        error_code="BadResponse",
        status=response.status,
        request_id=_request_id(response),
    )


def _json(response: HttpResponse, operation: str) -> Any:
    if response.status != 200:
        raise error_from_response(response, operation)
    try:
        return loads(response.body)
    except (ValueError, RecursionError) as exc:  # RecursionError: stdlib json on absurd nesting
        raise _parse_error(response, operation, "not JSON") from exc


def _reason(exc: BaseException, type_: type | None) -> str:
    # Our own validators and strict hooks explain themselves ("updateTime -5 is out of range",
    # "expected an integer, got str '0'"); cattrs' default would say only "invalid value".
    text = str(exc)
    if (type(exc) is ValueError and text) or (type(exc) is TypeError and text.startswith("expected ")):
        return text
    return format_exception(exc, type_)


def _wire_path(path: str, renames: Mapping[str, str]) -> str:
    """cattrs names our fields (``$[1].update_time_us``); say the key the response has
    (``$[1].updateTime``)."""
    head, dot, last = path.rpartition(".")
    return f"{head}{dot}{renames[last]}" if dot and last in renames else path


def _why(data: list[Any], list_type: Any, fallback: BaseException) -> tuple[str, BaseException]:
    """Why ``data`` does not structure as ``list_type``: the detailed converter (same hooks)
    re-runs it to name each failing entry and field. Only malformed responses come here."""
    try:
        DETAILED_CONVERTER.structure(data, list_type)
    except cattrs.BaseValidationError as exc:  # detailed validation wraps every error in one
        item = list_type.__args__[0]
        renames = {a.name: a.metadata["wire"] for a in attrs.fields(item) if "wire" in a.metadata}
        messages = []
        for message in cattrs.transform_error(exc, format_exception=_reason):
            head, sep, path = message.rpartition(" @ ")
            messages.append(f"{head}{sep}{_wire_path(path, renames)}" if sep else message)
        return "; ".join(messages), exc
    return str(fallback), fallback  # pragma: no cover - both converters share every hook


_SHARD_OF: Final = attrgetter("shard")
_LIST_HOOKS: Final[dict[type, tuple[Callable[[Any, Any], Any], Any]]] = {}


def _list_hook(cls: type) -> tuple[Callable[[Any, Any], Any], Any]:
    """The converter's generated hook for ``list[cls]``, looked up once: ``structure()`` would
    build the ``list[cls]`` alias and dispatch on it for every response."""
    found = _LIST_HOOKS.get(cls)
    if found is None:
        list_type = list[cls]  # type: ignore[valid-type]
        found = _LIST_HOOKS[cls] = (CONVERTER.get_structure_hook(list_type), list_type)
    return found


def _list_of(response: HttpResponse, operation: str, cls: type[_T]) -> list[_T]:
    """A JSON array of ``cls`` objects, structured by the converter in one call."""
    data = _json(response, operation)
    if type(data) is not list:
        raise _parse_error(response, operation, f"expected a JSON array, got {type(data).__name__}")
    hook, list_type = _list_hook(cls)
    try:
        result: list[_T] = hook(data, list_type)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        why, cause = _why(data, list_type, exc)
        raise _parse_error(response, operation, why) from cause
    return result


def parse_checkpoints(response: HttpResponse) -> list[ShardCheckpoint]:
    """GetCheckPoint's answer: one entry per shard, ``[]`` for a shard that does not exist.

    Shard ids are unique and in 0..2**31-1: anything else is not an answer we can attribute.
    """
    checkpoints = _list_of(response, "GetCheckPoint", ShardCheckpoint)
    if checkpoints:
        ids = set(map(_SHARD_OF, checkpoints))
        if len(ids) != len(checkpoints):
            counts = Counter(cp.shard for cp in checkpoints)
            dup = min(shard for shard, n in counts.items() if n > 1)
            raise _parse_error(response, "GetCheckPoint", f"duplicate shard id {dup}")
        low, high = min(ids), max(ids)
        if low < 0 or high > names.MAX_SHARD:
            bad = low if low < 0 else high
            raise _parse_error(response, "GetCheckPoint", f"shard id {bad} is out of range")
    return checkpoints


def parse_consumer_groups(response: HttpResponse) -> list[ConsumerGroup]:
    """ListConsumerGroup's answer."""
    return _list_of(response, "ListConsumerGroup", ConsumerGroup)


def parse_shards(response: HttpResponse) -> list[Shard]:
    """ListShards' answer."""
    return _list_of(response, "ListShards", Shard)


def parse_heartbeat(response: HttpResponse) -> list[int]:
    """ConsumerGroupHeartBeat's answer: the shard ids assigned to this consumer."""
    data = _json(response, "ConsumerGroupHeartBeat")
    if not isinstance(data, list) or not all(type(s) is int and s >= 0 for s in data):
        raise _parse_error(response, "ConsumerGroupHeartBeat", "expected an array of shard ids")
    return list(data)


def parse_logstores_page(response: HttpResponse) -> tuple[list[str], int]:
    """One ListLogStores page: ``(names, total)``."""
    data = _json(response, "ListLogStores")
    if not isinstance(data, dict):
        raise _parse_error(response, "ListLogStores", "expected a JSON object")
    stores, total = data.get("logstores"), data.get("total")
    if not isinstance(stores, list) or not all(isinstance(s, str) for s in stores) or type(total) is not int:
        raise _parse_error(response, "ListLogStores", "missing or mistyped logstores/total")
    return list(stores), total


def parse_cursor(response: HttpResponse) -> str:
    """GetCursor's answer: the cursor."""
    data = _json(response, "GetCursor")
    cursor = data.get("cursor") if isinstance(data, dict) else None
    if not isinstance(cursor, str):
        raise _parse_error(response, "GetCursor", "missing cursor")
    return cursor


def parse_cursor_time(response: HttpResponse) -> int:
    """GetCursorTime's answer: unix seconds."""
    data = _json(response, "GetCursorTime")
    value = data.get("cursor_time") if isinstance(data, dict) else None
    if type(value) is not int:
        raise _parse_error(response, "GetCursorTime", "missing cursor_time")
    if not 0 <= value <= MAX_EPOCH_VALUE // 1_000_000:
        raise _parse_error(response, "GetCursorTime", f"cursor_time {value} is out of range")
    return value


def parse_empty(response: HttpResponse, operation: str) -> None:
    """For calls whose success carries no body: raise on error, ignore any body."""
    if response.status != 200:
        raise error_from_response(response, operation)
