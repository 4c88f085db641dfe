"""Seed files: the JSON that describes an emulator's starting state (a public format).

::

    {"access_keys": {"AKID": "SECRET"},
     "projects": {"demo-project": {"description": "optional",
       "logstores": {"app-log": {"shards": 4, "ttl": 30,
         "consumer_groups": {"cg-main": {"timeout": 60, "order": false,
           "checkpoints": {"0": {"checkpoint": "MTUy...Ng==", "consumer": "c-1",
                                 "update_time": 1524224984800922}}}}}}}}}

Everything but ``shards`` (per logstore) and ``checkpoint`` (per checkpoint entry) is optional.
Shards without a checkpoint entry answer ``checkpoint: ""``, as never-committed shards do.
Validation happens before any state is touched and names the offending JSON path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import names
from ..errors import ValidationError
from ..models import MAX_EPOCH_VALUE
from .state import MAX_SHARDS, EmulatorState, is_decimal

__all__ = ["SeedError", "apply_seed", "load_seed", "validate_seed"]


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
            _keys(store, {"shards", "ttl", "consumer_groups"}, lpath)
            if "shards" not in store:
                raise _fail(lpath, "missing 'shards' (the shard count)")
            shards = _int(store["shards"], f"{lpath}.shards", 1, MAX_SHARDS)
            _int(store.get("ttl", 30), f"{lpath}.ttl", 1, 3650)
            groups = _obj(store.get("consumer_groups", {}), f"{lpath}.consumer_groups")
            if len(groups) > 30:
                raise _fail(f"{lpath}.consumer_groups", "at most 30 consumer groups per logstore")
            for gname, group in groups.items():
                gpath = f"{lpath}.consumer_groups.{gname}"
                _name(names.validate_consumer_group, gname, gpath)
                group = _obj(group, gpath)
                _keys(group, {"timeout", "order", "checkpoints"}, gpath)
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
                    _keys(cp, {"checkpoint", "consumer", "update_time"}, cpath)
                    if not _str(cp.get("checkpoint"), f"{cpath}.checkpoint"):
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


def apply_seed(state: EmulatorState, seed: Mapping[str, Any]) -> dict[str, str]:
    """Create the seed's projects, logstores, groups and checkpoints; return its access keys."""
    validate_seed(seed)
    for pname, project in seed.get("projects", {}).items():
        if pname not in state.projects:
            state.create_project(pname, project.get("description", ""))
        for lname, store in project.get("logstores", {}).items():
            state.create_logstore(pname, lname, store["shards"], store.get("ttl", 30))
            for gname, group in store.get("consumer_groups", {}).items():
                state.create_consumer_group(
                    pname, lname, gname, group.get("timeout", 60), group.get("order", False)
                )
                for shard, cp in group.get("checkpoints", {}).items():
                    state.set_checkpoint(
                        pname,
                        lname,
                        gname,
                        int(shard),
                        cp["checkpoint"],
                        consumer=cp.get("consumer", ""),
                        update_time_us=cp.get("update_time"),
                    )
    return dict(seed.get("access_keys", {}))
