"""Exporter configuration: TOML + flag twins, and one clear line naming the bad key."""

from __future__ import annotations

import pytest

from aiosls.exporter.config import ConfigError, load_config

ENV = {"ALIBABA_CLOUD_SLS_ENDPOINT": "cn-hangzhou.log.aliyuncs.com"}

FILE = b"""
listen = "127.0.0.1:9999"
interval = 30
allowed_lag = 120
window = 5
granularity = "group"
region = "cn-hangzhou"
labels = { env = "prod" }

[[targets]]
endpoint = "cn-hangzhou.log.aliyuncs.com"
projects = ["prod-logs", "prod-audit"]
logstore_include = "^app-"
consumer_group_exclude = "-test$"

[[targets]]
endpoint = "cn-shanghai.log.aliyuncs.com"
region = "cn-shanghai"
projects = ["sh-logs"]
labels = { env = "prod", region = "cn-shanghai" }
concurrency = 16
"""


def load(flags: dict[str, object], file: bytes | None = None, env: dict[str, str] | None = None):
    return load_config(
        {"config": "x.toml" if file is not None else None, **flags},
        environ=ENV if env is None else env,
        read_file=lambda _path: file or b"",
    )


def test_flags_alone_make_one_target() -> None:
    cfg = load(
        {
            "projects": ["prod-logs", "prod-audit"],
            "interval": "60",
            "allowed_lag": "120",
            "labels": ["team=core"],
        }
    )
    assert (cfg.host, cfg.port, cfg.interval, cfg.allowed_lag, cfg.granularity) == (
        "0.0.0.0",
        9464,
        60.0,
        120.0,
        "shard",
    )
    (target,) = cfg.targets
    assert target.projects == ("prod-logs", "prod-audit")
    assert target.endpoint == "cn-hangzhou.log.aliyuncs.com"
    assert dict(target.labels) == {"team": "core"}


def test_file_targets_inherit_top_level_keys_and_flags_win() -> None:
    cfg = load({"interval": "15"}, FILE)
    assert (cfg.host, cfg.port, cfg.interval, cfg.window, cfg.granularity) == (
        "127.0.0.1",
        9999,
        15.0,
        5,
        "group",
    )
    first, second = cfg.targets
    assert first.region == "cn-hangzhou"
    assert dict(first.labels) == {"env": "prod"}
    assert first.logstore_wanted("app-log")
    assert not first.logstore_wanted("audit")
    assert first.consumer_group_wanted("cg-main")
    assert not first.consumer_group_wanted("cg-test")
    assert (second.region, second.concurrency) == ("cn-shanghai", 16)
    assert dict(second.labels) == {"env": "prod", "region": "cn-shanghai"}


@pytest.mark.parametrize(
    ("flags", "file", "starts"),
    [
        ({"projects": ["ppp"], "interval": "0"}, None, "interval: must be in"),
        ({"projects": ["ppp"], "interval": "soon"}, None, "interval: not a number"),
        ({"projects": ["ppp"], "listen": "9464"}, None, "listen: must be HOST:PORT"),
        ({"projects": ["ppp"], "listen": "0.0.0.0:99999"}, None, "listen: port must be"),
        ({"projects": ["ppp"], "granularity": "topic"}, None, "granularity: must be"),
        ({"projects": ["Bad_Project"]}, None, "projects: "),
        ({}, None, "projects: at least one project"),
        ({"projects": ["ppp"], "labels": ["project=x"]}, None, "labels.project: reserved"),
        ({"projects": ["ppp"], "labels": ["bad-name=x"]}, None, "labels.bad-name: not a valid"),
        ({"projects": ["ppp"], "labels": ["novalue"]}, None, "labels: expected KEY=VALUE"),
        ({"projects": ["ppp"], "logstore_include": "("}, None, "logstore_include: bad regular expression"),
        ({"projects": ["ppp"], "window": "2.5"}, None, "window: not a number"),
        ({}, b"interval = 'x'\nprojects=['ppp']", "interval: not a number"),
        ({}, b"intervall = 3\nprojects=['ppp']", "intervall: unknown key"),
        (
            {},
            b"projects=['ppp']\n[[targets]]\nprojects=['qqq']\nendpont='x'",
            "targets[0].endpont: unknown key",
        ),
        ({}, b"[[targets]]\nprojects=['qqq']\nconcurrency=0", "targets[0].concurrency: must be in"),
        ({}, b"[[targets]]\nprojects=['qqq']\nlabels={shard='1'}", "targets[0].labels.shard: reserved"),
        (
            {},
            b"[[targets]]\nprojects=['qqq']\nendpoint='http://127.0.0.1:1'",
            "targets[0].region: signature V4",
        ),
        ({}, b"projects = [", "config: 'x.toml' is not valid TOML"),
        ({}, b"demo = true", "demo: a command-line flag only"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(flags, file, starts) -> None:
    with pytest.raises(ConfigError) as info:
        load(flags, file)
    message = str(info.value)
    assert message.startswith(starts), message
    assert "\n" not in message


def test_no_endpoint_anywhere() -> None:
    with pytest.raises(ConfigError, match=r"^endpoint: missing"):
        load({"projects": ["ppp"]}, env={})


def test_unreadable_file() -> None:
    def fail(_path: str) -> bytes:
        raise FileNotFoundError(2, "No such file or directory")

    with pytest.raises(ConfigError, match=r"^config: cannot read 'x.toml': No such file"):
        load_config({"config": "x.toml"}, environ=ENV, read_file=fail)


def test_demo_needs_no_target() -> None:
    cfg = load({"demo": True}, env={})
    assert cfg.demo
    assert cfg.targets == ()
    assert cfg.interval == 5.0
    assert load({"demo": True, "interval": "2"}, env={}).interval == 2.0


def test_the_shipped_example_config_loads() -> None:
    from pathlib import Path

    path = Path(__file__).parents[2] / "examples" / "exporter.toml"
    cfg = load_config({"config": str(path)}, environ={})
    assert len(cfg.targets) == 2
    assert all(t.projects for t in cfg.targets)


def test_a_project_swept_twice_with_the_same_labels_is_refused() -> None:
    twice = b"[[targets]]\nprojects=['ppp']"
    twice += b"\n[[targets]]\nprojects=['ppp']\nendpoint='cn-beijing.log.aliyuncs.com'"
    with pytest.raises(ConfigError, match=r"^targets\[1\]\.projects: 'ppp' is swept twice"):
        load({}, twice)
    cfg = load({}, twice.replace(b"endpoint=", b"labels={region='bj'}\nendpoint="))
    assert len(cfg.targets) == 2
