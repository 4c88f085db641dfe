"""Seed files: the JSON that describes an emulator's starting state (a public format).

::

    {"access_keys": {"AKID": "SECRET"},
     "projects": {"demo-project": {"description": "optional",
       "logstores": {"app-log": {"shards": 4, "ttl": 30,
         "consumer_groups": {"cg-main": {"timeout": 60, "order": false,
           "checkpoints": {"0": {"checkpoint": "MTUy...Ng==", "consumer": "c-1",
                                 "update_time": 1524224984800922}}}}}}}}}

Everything but ``shards`` (per logstore) and ``checkpoint`` or ``lag_seconds`` (per checkpoint
entry) is optional. Shards without a checkpoint entry answer ``checkpoint: ""``, as
never-committed shards do. Validation happens before any state is touched and names the
offending JSON path.

Lag: data, writers and simulated consumers (see :mod:`.simulate` for how they behave)::

    "app-log": {"shards": 4, "write_rate": 2, "history_seconds": 3600, "history_rate": 1,
                "idle_seconds": 0, "ttl_seconds": 86400, "readonly_shards": [0],
      "consumer_groups": {"cg-slow": {"simulate": "slow",
        "checkpoints": {"1": {"lag_seconds": 120, "consumer": "c-1"}}}}}

Per logstore:

- ``write_rate`` (number >= 0, default 0): packages per second written to each readwrite shard
  while the emulator runs (evenly spaced, driven by the emulator's clock).
- ``history_seconds`` (number >= 0, default 0): data already in every shard at seed time,
  written over that many seconds at ``history_rate`` packages per second (default
  ``write_rate``, or 1 when ``write_rate`` is 0), the newest package ``idle_seconds`` (default
  0) before the seed time; so an idle logstore holding old data is ``write_rate: 0,
  idle_seconds: 600``. The logstore's ``createTime`` is backdated to the oldest package.
- ``ttl_seconds`` (integer >= 1): retention in seconds, overriding ``ttl`` (days): older
  packages expire at seed time and as the clock moves, moving the ``begin`` cursor, so a
  checkpoint older than the oldest retained data can be seeded.
- ``readonly_shards`` (list of shard ids): shards that ListShards shows ``readonly`` (as after a
  split) and that get no live writes (history still fills them).

Per checkpoint entry, ``lag_seconds: N`` (number >= 0) instead of ``checkpoint``: the cursor
just after the package written N seconds before the shard's newest one, so a client measures
a lag of N seconds (0, or an empty shard: the end cursor, caught up). N beyond the oldest
retained package gives a cursor before it: an expired checkpoint (GetCursorTime of the cursor
before it answers 400 ``InvalidCursor``). ``consumer`` and ``update_time`` may accompany it;
``update_time`` defaults to the seed time, or, in a ``stopped`` group, to the receive time of
the last package it consumed (it stopped committing then, so STOP shows from one reading).

Per consumer group, ``simulate``: ``healthy``, ``slow``, ``stalled``, ``stopped`` or
``rewinding`` (:data:`.simulate.SIMULATIONS`); the group then heartbeats and commits every 2 s
as the first non-empty ``consumer`` of its checkpoint entries (default ``sim-consumer-1``).

GetCursorTime answers for the edge cases: a cursor after ``end``, or before ``begin - 1``
(expired data), is 400 ``InvalidCursor``; ``begin - 1`` answers the oldest package's time; an
empty shard answers the current time for ``end - 1`` and ``end``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .. import names
from ..errors import ValidationError
from ..models import MAX_EPOCH_VALUE
from .simulate import SIMULATIONS, start_positions, write_step
from .state import MAX_SHARDS, EmulatorState, encode_cursor, is_decimal, to_ns

__all__ = ["SeedError", "apply_seed", "load_seed", "validate_seed"]

#: Largest write or history rate (packages per second per shard).
MAX_RATE = 1_000_000
#: Longest ``history_seconds`` / ``idle_seconds`` / ``lag_seconds`` (ten years).
MAX_SECONDS = 3650 * 86400


class SeedError(ValueError):
    """A seed file that is not valid JSON or does not follow the seed format."""


def _fail(path: str, message: str) -> SeedError:
    return SeedError(f"seed {path}: {message}")


def _obj(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, f"must be a JSON object, got {type(value).__name__}")
    return value


def _keys(value: Mapping[str, Any], allowed: set[str], path: str) -> None:
    extra = sorted(set(value) - allowed)
    if extra:
        raise _fail(path, f"unknown key(s) {extra}; allowed: {sorted(allowed)}")


def _int(value: object, path: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _fail(path, f"must be an integer in {lo}..{hi}, got {value!r:.40}")
    return value


def _num(value: object, path: str, lo: float, hi: float, *, above: bool = False) -> float:
    """A JSON number in ``lo..hi`` (``lo`` excluded when ``above``), never a bool or NaN."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and not (lo < value <= hi if above else lo <= value <= hi):  # type: ignore[operator]
        ok = False  # NaN fails both comparisons too
    if not ok:
        rng = f"{'>' if above else '>='} {lo} and <= {hi}"
        raise _fail(path, f"must be a number {rng}, got {value!r:.40}")
    return float(value)  # type: ignore[arg-type]


def _name(validate: Any, value: str, path: str) -> None:
    try:
        validate(value)
    except ValidationError as exc:
        raise _fail(path, exc.message) from None


def _str(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"must be a string, got {type(value).__name__}")
    return value


def validate_seed(seed: object) -> Mapping[str, Any]:
    """Check ``seed`` against the format; return it unchanged. :raises SeedError:"""
    root = _obj(seed, "(root)")
    _keys(root, {"access_keys", "projects"}, "(root)")
    for key_id, secret in _obj(root.get("access_keys", {}), "access_keys").items():
        if not isinstance(key_id, str) or not key_id or not isinstance(secret, str) or not secret:
            raise _fail(f"access_keys.{key_id}", "must map a non-empty key id to a non-empty secret")
    for pname, project in _obj(root.get("projects", {}), "projects").items():
        ppath = f"projects.{pname}"
        _name(names.validate_project, pname, ppath)
        project = _obj(project, ppath)
        _keys(project, {"description", "logstores"}, ppath)
        _str(project.get("description", ""), f"{ppath}.description")
        for lname, store in _obj(project.get("logstores", {}), f"{ppath}.logstores").items():
            lpath = f"{ppath}.logstores.{lname}"
            _name(names.validate_logstore, lname, lpath)
            store = _obj(store, lpath)
            _keys(store, _LOGSTORE_KEYS, lpath)
            if "shards" not in store:
                raise _fail(lpath, "missing 'shards' (the shard count)")
            shards = _int(store["shards"], f"{lpath}.shards", 1, MAX_SHARDS)
            _int(store.get("ttl", 30), f"{lpath}.ttl", 1, 3650)
            _num(store.get("write_rate", 0), f"{lpath}.write_rate", 0, MAX_RATE)
            _num(store.get("history_seconds", 0), f"{lpath}.history_seconds", 0, MAX_SECONDS)
            if "history_rate" in store:
                _num(store["history_rate"], f"{lpath}.history_rate", 0, MAX_RATE, above=True)
            _num(store.get("idle_seconds", 0), f"{lpath}.idle_seconds", 0, MAX_SECONDS)
            if "ttl_seconds" in store:
                _int(store["ttl_seconds"], f"{lpath}.ttl_seconds", 1, 3650 * 86400)
            readonly = store.get("readonly_shards", [])
            if not isinstance(readonly, list):
                raise _fail(f"{lpath}.readonly_shards", "must be a list of shard ids")
            for i, sid in enumerate(readonly):
                _int(sid, f"{lpath}.readonly_shards[{i}]", 0, shards - 1)
            groups = _obj(store.get("consumer_groups", {}), f"{lpath}.consumer_groups")
            if len(groups) > 30:
                raise _fail(f"{lpath}.consumer_groups", "at most 30 consumer groups per logstore")
            for gname, group in groups.items():
                gpath = f"{lpath}.consumer_groups.{gname}"
                _name(names.validate_consumer_group, gname, gpath)
                group = _obj(group, gpath)
                _keys(group, {"timeout", "order", "checkpoints", "simulate"}, gpath)
                if "simulate" in group and group["simulate"] not in SIMULATIONS:
                    raise _fail(f"{gpath}.simulate", f"must be one of {list(SIMULATIONS)}")
                _int(group.get("timeout", 60), f"{gpath}.timeout", 1, 86400)
                if not isinstance(group.get("order", False), bool):
                    raise _fail(f"{gpath}.order", "must be true or false")
                for shard, cp in _obj(group.get("checkpoints", {}), f"{gpath}.checkpoints").items():
                    cpath = f"{gpath}.checkpoints.{shard}"
                    # Keys are strings, as in JSON: an int key (a seed built in Python) is an
                    # error rather than accepted, so {0: ..., "0": ...} cannot both be given.
                    if not isinstance(shard, str):
                        raise _fail(cpath, f"shard key must be a string, got {type(shard).__name__}")
                    if not is_decimal(shard) or int(shard) >= shards:
                        raise _fail(cpath, f"shard must be a decimal shard id in 0..{shards - 1}")
                    cp = _obj(cp, cpath)
                    _keys(cp, {"checkpoint", "lag_seconds", "consumer", "update_time"}, cpath)
                    if ("checkpoint" in cp) == ("lag_seconds" in cp):
                        raise _fail(cpath, "give exactly one of 'checkpoint' and 'lag_seconds'")
                    if "lag_seconds" in cp:
                        _num(cp["lag_seconds"], f"{cpath}.lag_seconds", 0, MAX_SECONDS)
                    elif not _str(cp.get("checkpoint"), f"{cpath}.checkpoint"):
                        raise _fail(f"{cpath}.checkpoint", "must not be empty (omit the entry instead)")
                    _str(cp.get("consumer", ""), f"{cpath}.consumer")
                    if "update_time" in cp:
                        # No later than a client can represent (aiosls.models.MAX_EPOCH_VALUE).
                        _int(cp["update_time"], f"{cpath}.update_time", 0, MAX_EPOCH_VALUE)
    return root


def load_seed(source: Mapping[str, Any] | str | os.PathLike[str]) -> Mapping[str, Any]:
    """Read (if a path) and validate a seed. :raises SeedError: with the file and JSON path."""
    if isinstance(source, Mapping):
        return validate_seed(source)
    path = Path(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SeedError(f"cannot read seed file {str(path)!r}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SeedError(f"seed file {str(path)!r} is not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. a huge integer, or absurdly deep nesting
        raise SeedError(f"seed file {str(path)!r} is not valid JSON: {type(exc).__name__}") from None
    try:
        return validate_seed(data)
    except SeedError as exc:
        raise SeedError(f"{path}: {exc}") from None


def apply_seed(
    state: EmulatorState, seed: Mapping[str, Any], *, now: datetime | None = None
) -> dict[str, str]:
    """Create the seed's projects, logstores, history, groups and checkpoints as of ``now``
    (default the state's clock); return its access keys."""
    validate_seed(seed)
    when = now or state.clock()
    now_ns = to_ns(when)
    for pname, project in seed.get("projects", {}).items():
        if pname not in state.projects:
            state.create_project(pname, project.get("description", ""))
        for lname, store in project.get("logstores", {}).items():
            _apply_logstore(state, pname, lname, store, when, now_ns)
    return dict(seed.get("access_keys", {}))


def _apply_logstore(
    state: EmulatorState, pname: str, lname: str, store: Mapping[str, Any], when: datetime, now_ns: int
) -> None:
    write_rate = float(store.get("write_rate", 0))
    history = float(store.get("history_seconds", 0))
    idle = float(store.get("idle_seconds", 0))
    history_rate = float(store.get("history_rate", write_rate or 1))
    newest_ns = now_ns - round(idle * _NS)
    created = when - timedelta(seconds=history + idle) if history else when
    ls = state.create_logstore(pname, lname, store["shards"], store.get("ttl", 30), created=created)
    ls.write_rate = write_rate
    ls.ttl_seconds = store.get("ttl_seconds")
    if write_rate:
        ls.next_write_ns = now_ns + write_step(write_rate)
    for sid in store.get("readonly_shards", []):
        ls.shards[sid].status = "readonly"
    if history:
        step = write_step(history_rate)
        count = int(history * _NS) // step + 1
        for shard in ls.shards.values():
            shard.append(count, newest_ns - (count - 1) * step, step)
    for gname, group in store.get("consumer_groups", {}).items():
        cg = state.create_consumer_group(
            pname, lname, gname, group.get("timeout", 60), group.get("order", False)
        )
        for shard, cp in group.get("checkpoints", {}).items():
            sid = int(shard)
            checkpoint = cp.get("checkpoint")
            update_time_us = now_ns // 1000
            if checkpoint is None:
                cursor = _lag_cursor(state, pname, lname, sid, float(cp["lag_seconds"]))
                checkpoint = encode_cursor(cursor)
                if group.get("simulate") == "stopped":
                    # It stopped when it last committed: when the data it last consumed was new.
                    consumed = state.shard(pname, lname, sid).package_at_or_before(cursor - 1)
                    update_time_us = min(now_ns, cursor - 1 if consumed is None else consumed) // 1000
            state.set_checkpoint(
                pname,
                lname,
                gname,
                sid,
                checkpoint,
                consumer=cp.get("consumer", ""),
                update_time_us=cp.get("update_time", update_time_us),
            )
        if "simulate" in group:
            cg.simulate = group["simulate"]
            consumers = [cp.get("consumer", "") for cp in group.get("checkpoints", {}).values()]
            cg.sim_consumer = next((c for c in consumers if c), cg.sim_consumer)
            start_positions(cg, ls)
    ls.expire(now_ns)


def _lag_cursor(state: EmulatorState, pname: str, lname: str, sid: int, lag_s: float) -> int:
    """The checkpoint that is ``lag_s`` seconds behind the newest package of the shard."""
    shard = state.shard(pname, lname, sid)
    newest = shard.newest
    if newest is None or lag_s == 0:
        return shard.end_cursor
    target = newest - round(lag_s * _NS)
    if target < shard.begin_cursor:
        return target + 1  # before the oldest data: an expired checkpoint
    return shard.cursor_at(target + 1)


_NS = 1_000_000_000
_LOGSTORE_KEYS = {
    "shards",
    "ttl",
    "consumer_groups",
    "write_rate",
    "history_seconds",
    "history_rate",
    "idle_seconds",
    "ttl_seconds",
    "readonly_shards",
}
