"""The exporter's configuration: a TOML file (``tomllib``) and the command-line flags that twin it.

Every flag has a config key of the same name (``--allowed-lag`` is ``allowed_lag``); a flag given
on the command line wins over the file. Top-level connection and filter keys are the defaults of
every ``[[targets]]`` entry; without ``[[targets]]`` the top-level ``projects`` are the one target.
A bad value raises :class:`ConfigError` whose message names the key, before anything starts.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal

import attrs

from .. import names
from ..endpoint import derive_region, parse_endpoint
from ..errors import ValidationError

__all__ = [
    "ENV_ENDPOINT",
    "GRANULARITIES",
    "RESERVED_LABELS",
    "ConfigError",
    "ExporterConfig",
    "TargetConfig",
    "load_config",
]

ENV_ENDPOINT: Final = "ALIBABA_CLOUD_SLS_ENDPOINT"
GRANULARITIES: Final = ("group", "shard")
Granularity = Literal["group", "shard"]
#: Labels the exporter sets itself; an extra label may not reuse them.
RESERVED_LABELS: Final = frozenset(
    {"project", "logstore", "consumer_group", "shard", "le", "job", "instance"}
)
_LABEL_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_LISTEN: Final = re.compile(r"(?P<host>\[[0-9a-fA-F:.]+\]|[^:\[\]]*):(?P<port>[0-9]{1,5})")
MAX_CONCURRENCY: Final = 10_000


class ConfigError(ValueError):
    """A bad flag or config key; the message is one line naming it (the command exits 2)."""


@attrs.frozen
class TargetConfig:
    """One set of projects on one endpoint, with its filters and extra labels."""

    endpoint: str
    projects: tuple[str, ...]
    region: str | None = None
    signature_version: Literal["v1", "v4"] = "v4"
    logstore_include: re.Pattern[str] | None = None
    logstore_exclude: re.Pattern[str] | None = None
    consumer_group_include: re.Pattern[str] | None = None
    consumer_group_exclude: re.Pattern[str] | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict)
    concurrency: int = 64
    timeout: float | None = None

    def logstore_wanted(self, name: str) -> bool:
        """True when ``name`` passes the logstore allow/deny regexes (``re.search``)."""
        return _wanted(name, self.logstore_include, self.logstore_exclude)

    def consumer_group_wanted(self, name: str) -> bool:
        """True when ``name`` passes the consumer-group allow/deny regexes (``re.search``)."""
        return _wanted(name, self.consumer_group_include, self.consumer_group_exclude)


def _wanted(name: str, include: re.Pattern[str] | None, exclude: re.Pattern[str] | None) -> bool:
    if include is not None and include.search(name) is None:
        return False
    return exclude is None or exclude.search(name) is None


@attrs.frozen
class ExporterConfig:
    """Everything the exporter needs to start, validated."""

    targets: tuple[TargetConfig, ...]
    host: str = "0.0.0.0"
    port: int = 9464
    interval: float = 60.0
    allowed_lag: float = 60.0
    window: int = 10
    stop_after: float | None = None
    granularity: Granularity = "shard"
    demo: bool = False
    debug: bool = False


# --- loading ------------------------------------------------------------------------------------

#: Keys allowed at the top level of the file, and their checkers.
_TOP_ONLY: Final = ("listen", "interval", "allowed_lag", "window", "stop_after", "granularity", "debug")
#: Keys a target takes, with the top-level value as its default.
_TARGET_KEYS: Final = (
    "endpoint",
    "region",
    "signature_version",
    "projects",
    "logstore_include",
    "logstore_exclude",
    "consumer_group_include",
    "consumer_group_exclude",
    "labels",
    "concurrency",
    "timeout",
)


def load_config(
    flags: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    read_file: Callable[[str], bytes] | None = None,
) -> ExporterConfig:
    """Merge the file named by ``flags["config"]`` (if any) with the flags that were given.

    ``flags`` maps config keys to values; ``None`` means "not given on the command line".

    :raises ConfigError: naming the first bad key.
    """
    env = os.environ if environ is None else environ
    top: dict[str, Any] = {}
    file_targets: list[Any] = []
    path = flags.get("config")
    if path:
        top, file_targets = _read_toml(str(path), read_file)
    for key, value in flags.items():
        if key != "config" and value is not None and value != [] and value != {}:
            top[key] = value
    demo = bool(top.pop("demo", False))
    host, port = _listen(top.get("listen", "0.0.0.0:9464"))
    granularity = top.get("granularity", "shard")
    if granularity not in GRANULARITIES:
        raise ConfigError(f"granularity: must be 'group' or 'shard', not {granularity!r}")
    window = _number(top, "window", 10, integer=True, low=1, high=10_000)
    stop_after = top.get("stop_after")
    cfg_kwargs: dict[str, Any] = {
        "host": host,
        "port": port,
        # The demo's fleet lives in seconds, not minutes: sweep it every 5 s unless told.
        "interval": _number(top, "interval", 5.0 if demo else 60.0, low=0.01, high=86_400.0),
        "allowed_lag": _number(top, "allowed_lag", 60.0, low=0.0, high=1e9),
        "window": window,
        "stop_after": None if stop_after is None else _number(top, "stop_after", 0.0, low=0.0, high=1e9),
        "granularity": granularity,
        "demo": demo,
        "debug": _bool(top, "debug"),
    }
    unknown = sorted(set(top) - set(_TOP_ONLY) - set(_TARGET_KEYS) - {"targets"})
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key")
    defaults: dict[str, Any] = {k: top[k] for k in _TARGET_KEYS if k in top}
    targets: list[TargetConfig] = []
    if demo:
        return ExporterConfig(targets=(), **cfg_kwargs)
    if not isinstance(file_targets, list):
        raise ConfigError("targets: must be an array of tables ([[targets]])")
    for i, entry in enumerate(file_targets):
        if not isinstance(entry, dict):
            raise ConfigError(f"targets[{i}]: must be a table")
        bad = sorted(set(entry) - set(_TARGET_KEYS))
        if bad:
            raise ConfigError(f"targets[{i}].{bad[0]}: unknown key")
        targets.append(_target({**defaults, **entry}, f"targets[{i}].", env))
    # Projects given as flags (or at the top of a file without [[targets]]) are one more target.
    if "projects" in top or not targets:
        targets.append(_target(defaults, "", env))
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for i, target in enumerate(targets):
        for project in target.projects:
            series = (project, tuple(sorted(target.labels.items())))
            if series in seen:
                where = f"targets[{i}]." if i < len(file_targets) else ""
                raise ConfigError(
                    f"{where}projects: {project!r} is swept twice with the same labels "
                    "(give the targets different labels, e.g. region)"
                )
            seen.add(series)
    return ExporterConfig(targets=tuple(targets), **cfg_kwargs)


def _read_toml(path: str, read_file: Callable[[str], bytes] | None) -> tuple[dict[str, Any], list[Any]]:
    try:
        raw = read_file(path) if read_file is not None else _read(path)
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path!r}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config: {path!r} is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path!r} is not valid TOML: {exc}") from None
    targets = data.pop("targets", [])
    for key in ("config", "demo"):
        if key in data:
            raise ConfigError(f"{key}: a command-line flag only, not a config key")
    return data, targets


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _listen(value: object) -> tuple[str, int]:
    if not isinstance(value, str) or (match := _LISTEN.fullmatch(value)) is None:
        raise ConfigError(f"listen: must be HOST:PORT (e.g. 0.0.0.0:9464), not {value!r}")
    port = int(match["port"])
    if port > 65535:
        raise ConfigError(f"listen: port must be 0..65535, not {port}")
    return match["host"].strip("[]") or "0.0.0.0", port


def _bool(values: Mapping[str, Any], key: str, prefix: str = "") -> bool:
    value = values.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{prefix}{key}: must be true or false")
    return value


def _number(
    values: Mapping[str, Any],
    key: str,
    default: float,
    *,
    low: float,
    high: float,
    integer: bool = False,
    prefix: str = "",
) -> Any:
    value = values.get(key, default)
    if isinstance(value, str):  # a flag given as text
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            raise ConfigError(f"{prefix}{key}: not a number: {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{prefix}{key}: must be a number")
    if integer and not isinstance(value, int):
        raise ConfigError(f"{prefix}{key}: must be an integer")
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"{prefix}{key}: must be in {low:g}..{high:g}, not {value}")
    return value if integer else float(value)


def _regex(values: Mapping[str, Any], key: str, prefix: str) -> re.Pattern[str] | None:
    value = values.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{prefix}{key}: must be a regular expression string")
    try:
        return re.compile(value)
    except re.error as exc:
        raise ConfigError(f"{prefix}{key}: bad regular expression: {exc}") from None


def _labels(value: object, prefix: str) -> dict[str, str]:
    if isinstance(value, Sequence) and not isinstance(value, str):  # --label KEY=VALUE flags
        pairs: dict[str, str] = {}
        for item in value:
            key, sep, val = str(item).partition("=")
            if not sep:
                raise ConfigError(f"{prefix}labels: expected KEY=VALUE, not {item!r}")
            pairs[key] = val
        value = pairs
    if not isinstance(value, Mapping):
        raise ConfigError(f'{prefix}labels: must be a table of name = "value"')
    out: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not _LABEL_NAME.fullmatch(key) or key.startswith("__"):
            raise ConfigError(f"{prefix}labels.{key}: not a valid Prometheus label name")
        if key in RESERVED_LABELS:
            raise ConfigError(f"{prefix}labels.{key}: reserved (the exporter sets it)")
        if not isinstance(val, str):
            raise ConfigError(f"{prefix}labels.{key}: value must be a string")
        out[key] = val
    return out


def _target(values: Mapping[str, Any], prefix: str, env: Mapping[str, str]) -> TargetConfig:
    endpoint = values.get("endpoint") or env.get(ENV_ENDPOINT)
    if not endpoint or not isinstance(endpoint, str):
        raise ConfigError(f"{prefix}endpoint: missing (pass --endpoint or set {ENV_ENDPOINT})")
    projects = values.get("projects")
    if isinstance(projects, str):
        projects = [projects]
    if not projects or not isinstance(projects, list | tuple):
        raise ConfigError(f"{prefix}projects: at least one project is needed (--project NAME)")
    for project in projects:
        try:
            names.validate_project(project)
        except (ValidationError, TypeError) as exc:
            raise ConfigError(f"{prefix}projects: {exc}") from None
    if len(set(projects)) != len(projects):
        raise ConfigError(f"{prefix}projects: a project is listed twice")
    signature = values.get("signature_version", "v4")
    if signature not in ("v1", "v4"):
        raise ConfigError(f"{prefix}signature_version: must be 'v1' or 'v4', not {signature!r}")
    region = values.get("region")
    if region is not None and not isinstance(region, str):
        raise ConfigError(f"{prefix}region: must be a string")
    try:
        host = parse_endpoint(endpoint).host
    except ValueError as exc:
        raise ConfigError(f"{prefix}endpoint: {exc}") from None
    if signature == "v4" and not region and not derive_region(host):
        raise ConfigError(
            f"{prefix}region: signature V4 needs a region and none can be derived from {endpoint!r} "
            "(set region, or signature_version = 'v1')"
        )
    timeout = values.get("timeout")
    return TargetConfig(
        endpoint=endpoint,
        projects=tuple(projects),
        region=region,
        signature_version=signature,
        logstore_include=_regex(values, "logstore_include", prefix),
        logstore_exclude=_regex(values, "logstore_exclude", prefix),
        consumer_group_include=_regex(values, "consumer_group_include", prefix),
        consumer_group_exclude=_regex(values, "consumer_group_exclude", prefix),
        labels=_labels(values.get("labels", {}), prefix),
        concurrency=_number(
            values, "concurrency", 64, integer=True, low=1, high=MAX_CONCURRENCY, prefix=prefix
        ),
        timeout=None
        if timeout is None
        else _number(values, "timeout", 0.0, low=0.001, high=3600.0, prefix=prefix),
    )
