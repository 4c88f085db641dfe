"""Credentials snapshots and providers; the refreshing provider runs on an injected clock."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiosls import (
    AuthError,
    Credentials,
    CredentialsProvider,
    EnvironmentCredentialsProvider,
    RefreshingCredentialsProvider,
    StaticCredentialsProvider,
)
from aiosls.providers import DefaultCredentialsProvider

T0 = datetime(2024, 9, 5, 8, 30, tzinfo=UTC)
SECRET = "s3cret/0001+abcdEFGH"
TOKEN = "CAIS-sts-token-value"


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Fetcher:
    """An STS stand-in: hands out numbered credentials, optionally held at a gate or failing."""

    def __init__(self, clock: Clock, lifetime: timedelta = timedelta(minutes=15)) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.fail: Exception | None = None

    async def __call__(self) -> Credentials:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return Credentials(
            f"STS.key{self.calls}",
            f"{SECRET}-{self.calls}",
            f"{TOKEN}-{self.calls}",
            expiration=self.clock() + self.lifetime,
        )


def provider(clock: Clock, fetch: Fetcher) -> RefreshingCredentialsProvider:
    return RefreshingCredentialsProvider(
        fetch, advisory=timedelta(minutes=5), mandatory=timedelta(minutes=1), clock=clock
    )


async def _open_later(gate: asyncio.Event) -> None:
    # Scheduled after the callers: by the time it runs, each caller has run up to its first wait.
    gate.set()


# --- Credentials ----------------------------------------------------------------------------------


def test_repr_and_str_show_the_key_id_only() -> None:
    creds = Credentials("LTAIkey", SECRET, TOKEN, expiration=T0)
    for text in (repr(creds), str(creds), f"{creds}", f"{[creds]}"):
        assert SECRET not in text
        assert TOKEN not in text
        assert "LTAIkey" in text
    assert repr(creds) == (
        "Credentials(access_key_id='LTAIkey', access_key_secret='***', security_token='***', "
        "expiration=2024-09-05T08:30:00+00:00)"
    )
    assert repr(Credentials("k", "s")) == (
        "Credentials(access_key_id='k', access_key_secret='***', security_token=None)"
    )


_PRINTABLE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)


@given(secret=_PRINTABLE, other_secret=_PRINTABLE, token=_PRINTABLE, other_token=_PRINTABLE)
def test_repr_never_depends_on_secret_or_token(
    secret: str, other_secret: str, token: str, other_token: str
) -> None:
    one = Credentials("LTAIkey", secret, token)
    two = Credentials("LTAIkey", other_secret, other_token)
    # If the secret leaked, two credentials differing only in secret and token would render differently.
    assert repr(one) == repr(two) == str(one)
    assert repr(StaticCredentialsProvider(one)) == repr(StaticCredentialsProvider(two))


@pytest.mark.parametrize("field", ["access_key_id", "access_key_secret", "security_token"])
@pytest.mark.parametrize("bad", ["tok3n-value\n", "tok3n\r\nvalue", "\x00tok3n"])
def test_control_characters_are_refused_without_echoing_the_value(field: str, bad: str) -> None:
    values = {"access_key_id": "LTAIkey", "access_key_secret": "secret", "security_token": "token"}
    values[field] = bad
    with pytest.raises(ValueError, match=f"Credentials.{field} must be printable") as info:
        Credentials(values["access_key_id"], values["access_key_secret"], values["security_token"])
    assert "tok3n" not in str(info.value)


@pytest.mark.parametrize("field", ["access_key_id", "access_key_secret", "security_token"])
@pytest.mark.parametrize(
    "bad", ["tok3n-s\u00e9cret", "tok3n\u00a0value", "\u043a\u043b\u044e\u0447tok3n", "tok3n\u2028"]
)
def test_non_ascii_is_refused_without_echoing_the_value(field: str, bad: str) -> None:
    # One transport sent such a value as Latin-1 and the other as UTF-8 (issue 11 item 6).
    values = {"access_key_id": "LTAIkey", "access_key_secret": "secret", "security_token": "token"}
    values[field] = bad
    with pytest.raises(ValueError, match=f"Credentials.{field} must be printable ASCII") as info:
        Credentials(values["access_key_id"], values["access_key_secret"], values["security_token"])
    assert "tok3n" not in str(info.value)
    assert "tok3n" not in repr(info.value.args)


def test_environment_values_are_stripped() -> None:
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": " LTAIkey\n",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret\n",
        "ALIBABA_CLOUD_SECURITY_TOKEN": "token\n",
    }
    creds = EnvironmentCredentialsProvider(env).load()
    assert (creds.access_key_id, creds.access_key_secret, creds.security_token) == (
        "LTAIkey",
        "secret",
        "token",
    )


@pytest.mark.parametrize(("key_id", "secret"), [("", "s"), ("k", ""), ("", "")])
def test_credentials_need_a_key_pair(key_id: str, secret: str) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        Credentials(key_id, secret)


def test_expires_within() -> None:
    creds = Credentials("k", "s", "t", expiration=T0 + timedelta(minutes=10))
    assert not creds.expires_within(timedelta(minutes=5), T0)
    assert creds.expires_within(timedelta(minutes=10), T0)
    assert creds.expires_within(timedelta(0), T0 + timedelta(minutes=11))
    assert not Credentials("k", "s").expires_within(timedelta(days=365), T0)


async def test_static_provider() -> None:
    creds = Credentials("k", "s")
    p = StaticCredentialsProvider(creds)
    assert isinstance(p, CredentialsProvider)
    assert await p.get_credentials() is creds


# --- environment ----------------------------------------------------------------------------------


async def test_env_provider_reads_the_given_mapping_on_every_call() -> None:
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIenv", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}
    p = EnvironmentCredentialsProvider(env)
    assert isinstance(p, CredentialsProvider)
    assert await p.get_credentials() == Credentials("LTAIenv", SECRET)
    env["ALIBABA_CLOUD_SECURITY_TOKEN"] = TOKEN  # a sidecar rotates the variables
    env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = "STS.rotated"
    assert await p.get_credentials() == Credentials("STS.rotated", SECRET, TOKEN)
    env["ALIBABA_CLOUD_SECURITY_TOKEN"] = ""
    assert (await p.get_credentials()).security_token is None
    assert repr(p) == "EnvironmentCredentialsProvider()"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIenv"},
        {"ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET},
        {"ALIBABA_CLOUD_ACCESS_KEY_ID": "", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET},
    ],
)
async def test_env_provider_without_a_key_pair(env: dict[str, str]) -> None:
    with pytest.raises(AuthError, match="ALIBABA_CLOUD_ACCESS_KEY_ID") as info:
        await EnvironmentCredentialsProvider(env).get_credentials()
    assert info.value.error_code == "MissingCredentials"
    assert SECRET not in str(info.value)


def test_env_provider_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIproc")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
    monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
    assert EnvironmentCredentialsProvider().load() == Credentials("LTAIproc", SECRET)


# --- refreshing -----------------------------------------------------------------------------------


def test_mandatory_window_must_not_exceed_advisory() -> None:
    with pytest.raises(ValueError, match="mandatory"):
        RefreshingCredentialsProvider(Fetcher(Clock()), advisory=timedelta(1), mandatory=timedelta(2))


async def test_hundred_concurrent_first_calls_fetch_once() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    fetch.gate = asyncio.Event()
    p = provider(clock, fetch)
    callers = [asyncio.create_task(p.get_credentials()) for _ in range(100)]
    opener = asyncio.create_task(_open_later(fetch.gate))
    results = await asyncio.gather(*callers)
    await opener
    assert fetch.calls == 1
    assert p.refresh_count == 1
    assert {r.access_key_id for r in results} == {"STS.key1"}
    assert all(r is results[0] for r in results)
    # Still fresh: served from memory.
    clock.now += timedelta(minutes=9)
    assert await p.get_credentials() is results[0]
    assert fetch.calls == 1


async def test_advisory_window_one_refresh_while_the_others_use_the_current_token() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    p = provider(clock, fetch)
    first = await p.get_credentials()
    clock.now += timedelta(minutes=12)  # 3 minutes left: advisory, not mandatory
    fetch.gate = asyncio.Event()
    callers = [asyncio.create_task(p.get_credentials()) for _ in range(20)]
    opener = asyncio.create_task(_open_later(fetch.gate))
    results = await asyncio.gather(*callers)
    await opener
    assert fetch.calls == 2
    assert results[0].access_key_id == "STS.key2"  # the one that refreshed
    assert all(r is first for r in results[1:])  # nobody else waited
    assert await p.get_credentials() is results[0]


async def test_advisory_window_failed_refresh_is_logged_and_the_old_token_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    p = provider(clock, fetch)
    first = await p.get_credentials()
    clock.now += timedelta(minutes=12)
    fetch.fail = ConnectionError(f"sts down; secret {SECRET}-1 must not be logged")
    with caplog.at_level(logging.WARNING, logger="aiosls.credentials"):
        again = await p.get_credentials()
    assert again is first
    assert fetch.calls == 2
    (record,) = [r for r in caplog.records if r.name == "aiosls.credentials"]
    assert record.levelno == logging.WARNING
    assert "credential refresh failed (ConnectionError)" in record.getMessage()
    assert SECRET not in caplog.text
    assert TOKEN not in caplog.text
    # The next call tries again, and succeeds once STS is back.
    fetch.fail = None
    assert (await p.get_credentials()).access_key_id == "STS.key3"


async def test_mandatory_window_failure_raises() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    p = provider(clock, fetch)
    await p.get_credentials()
    clock.now += timedelta(minutes=14, seconds=30)  # 30 s left
    fetch.fail = ConnectionError("sts down")
    with pytest.raises(ConnectionError, match="sts down"):
        await p.get_credentials()
    clock.now += timedelta(minutes=5)  # expired
    with pytest.raises(ConnectionError):
        await p.get_credentials()
    assert fetch.calls == 3


async def test_first_fetch_failure_raises() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    fetch.fail = PermissionError("AssumeRole denied")
    with pytest.raises(PermissionError):
        await provider(clock, fetch).get_credentials()


async def test_advisory_call_that_becomes_mandatory_raises() -> None:
    # The clock crosses into the mandatory window between the check and the refresh.
    times: Iterator[datetime] = iter(
        [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=12), T0 + timedelta(minutes=14, seconds=30)]
    )
    fetch = Fetcher(Clock())
    p = RefreshingCredentialsProvider(
        fetch, advisory=timedelta(minutes=5), mandatory=timedelta(minutes=1), clock=lambda: next(times)
    )
    await p.get_credentials()
    fetch.fail = ConnectionError("sts down")
    with pytest.raises(ConnectionError):
        await p.get_credentials()


async def test_credentials_without_expiry_are_never_refreshed() -> None:
    clock = Clock()
    fetch = Fetcher(clock, lifetime=timedelta(0))

    async def forever() -> Credentials:
        fetch.calls += 1
        return Credentials("k", SECRET)

    p = RefreshingCredentialsProvider(forever, clock=clock)
    first = await p.get_credentials()
    clock.now += timedelta(days=1000)
    assert await p.get_credentials() is first
    assert fetch.calls == 1


async def test_invalidate_from_many_callers_refreshes_once() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    p = provider(clock, fetch)
    stale = await p.get_credentials()
    fetch.gate = asyncio.Event()
    callers = [asyncio.create_task(p.invalidate(stale)) for _ in range(50)]
    readers = [asyncio.create_task(p.get_credentials()) for _ in range(10)]
    opener = asyncio.create_task(_open_later(fetch.gate))
    results = await asyncio.gather(*callers, *readers)
    await opener
    assert fetch.calls == 2
    assert {r.access_key_id for r in results} == {"STS.key2"}
    # A caller that kept a snapshot older than the current one gets the current one, no fetch.
    assert await p.invalidate(stale) is results[0]
    assert fetch.calls == 2


async def test_invalidate_failure_raises_and_drops_the_stale_token() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    p = provider(clock, fetch)
    stale = await p.get_credentials()
    fetch.fail = ConnectionError("sts down")
    with pytest.raises(ConnectionError):
        await p.invalidate(stale)
    with pytest.raises(ConnectionError):  # the rejected token is not handed out again
        await p.get_credentials()
    fetch.fail = None
    assert (await p.get_credentials()).access_key_id == "STS.key4"  # fetches 2 and 3 failed


async def test_refreshing_provider_repr_hides_secrets() -> None:
    clock = Clock()
    p = provider(clock, Fetcher(clock))
    assert repr(p) == "RefreshingCredentialsProvider(current=None)"
    await p.get_credentials()
    assert "STS.key1" in repr(p)
    assert SECRET not in repr(p)
    assert TOKEN not in repr(p)


async def test_short_lived_tokens_do_not_make_every_waiter_fetch() -> None:
    # A token handed out with less time left than the advisory window (e.g. by a metadata
    # service close to rotation) must still be fetched once for a crowd of callers.
    clock = Clock()
    fetch = Fetcher(clock, lifetime=timedelta(minutes=3))
    fetch.gate = asyncio.Event()
    p = provider(clock, fetch)
    callers = [asyncio.create_task(p.get_credentials()) for _ in range(100)]
    opener = asyncio.create_task(_open_later(fetch.gate))
    results = await asyncio.gather(*callers)
    await opener
    assert fetch.calls == 1
    assert {r.access_key_id for r in results} == {"STS.key1"}
    # Alone, a caller in the advisory window still refreshes it.
    assert (await p.get_credentials()).access_key_id == "STS.key2"


async def test_a_fetched_token_already_in_the_mandatory_window_is_fetched_again() -> None:
    clock = Clock()
    fetch = Fetcher(clock, lifetime=timedelta(seconds=30))
    fetch.gate = asyncio.Event()
    p = provider(clock, fetch)
    callers = [asyncio.create_task(p.get_credentials()) for _ in range(3)]
    opener = asyncio.create_task(_open_later(fetch.gate))
    await asyncio.gather(*callers)
    await opener
    assert fetch.calls == 3  # unusable tokens are not shared


async def test_refreshing_provider_defaults_to_the_wall_clock() -> None:
    clock = Clock(datetime.now(UTC))
    fetch = Fetcher(clock, lifetime=timedelta(hours=1))
    p = RefreshingCredentialsProvider(fetch)  # real clock: the token is fresh for an hour
    first = await p.get_credentials()
    assert await p.get_credentials() is first
    assert fetch.calls == 1


# --- DefaultCredentialsProvider: the official default chain --------------------------------------

auth_util = pytest.importorskip("alibabacloud_credentials.utils.auth_util")


@pytest.fixture
def isolated_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    """The official chain reads its environment variables once, at import: set its copies.

    ECS metadata and the CLI profile are switched off, so nothing touches the network or the
    real home directory; returns a setter for the chain's environment variables.
    """
    names = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "environment_access_key_id",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "environment_access_key_secret",
        "ALIBABA_CLOUD_SECURITY_TOKEN": "environment_security_token",
        "ALIBABA_CLOUD_CREDENTIALS_FILE": "environment_credentials_file",
    }
    for attr in names.values():
        monkeypatch.setattr(auth_util, attr, None)
    monkeypatch.setattr(auth_util, "environment_credentials_file", str(tmp_path / "missing.ini"))
    monkeypatch.setattr(auth_util, "enable_oidc_credential", False)
    monkeypatch.setattr(auth_util, "environment_ecs_metadata_disabled", "true")
    monkeypatch.setattr(auth_util, "environment_cli_profile_disabled", "true")
    monkeypatch.setattr(auth_util, "environment_credentials_uri", None)

    def setenv(name: str, value: str) -> None:
        monkeypatch.setattr(auth_util, names[name], value)

    return setenv


async def test_default_chain_from_environment_variables(isolated_chain: Any) -> None:
    isolated_chain("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIenvkey")
    isolated_chain("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
    isolated_chain("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
    clock = Clock()
    p = DefaultCredentialsProvider(clock=clock)
    creds = await p.get_credentials()
    assert (creds.access_key_id, creds.access_key_secret, creds.security_token) == (
        "LTAIenvkey",
        SECRET,
        TOKEN,
    )
    # Cached: the chain is not asked again until the snapshot nears its (cache) expiry.
    assert await p.get_credentials() is creds
    assert p.refresh_count == 1
    assert creds.expiration == T0 + timedelta(minutes=10)
    clock.now += timedelta(minutes=6)  # inside the advisory window: asked again
    await p.get_credentials()
    assert p.refresh_count == 2
    for text in (repr(p), str(p)):
        assert SECRET not in text
        assert TOKEN not in text
    assert "LTAIenvkey" in repr(p)


async def test_default_chain_from_a_credentials_file(isolated_chain: Any, tmp_path: Any) -> None:
    path = tmp_path / "credentials.ini"
    path.write_text(
        f"[default]\ntype = access_key\naccess_key_id = LTAIfilekey\naccess_key_secret = {SECRET}\n"
    )
    isolated_chain("ALIBABA_CLOUD_CREDENTIALS_FILE", str(path))
    creds = await DefaultCredentialsProvider().get_credentials()
    assert (creds.access_key_id, creds.access_key_secret, creds.security_token) == (
        "LTAIfilekey",
        SECRET,
        None,
    )


async def test_default_chain_with_nothing_configured_is_an_auth_error(isolated_chain: Any) -> None:
    p = DefaultCredentialsProvider()
    with pytest.raises(AuthError, match="default credential chain found no credentials") as info:
        await p.get_credentials()
    assert info.value.error_code == "MissingCredentials"
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert "\n" not in str(info.value)


class FakeChain:
    """Stands in for the official chain: the library's own credential objects, recorded calls."""

    def __init__(self, *, expiration: int | None = None, secret: str = SECRET) -> None:
        from alibabacloud_credentials.provider.refreshable import Credentials as LibCredentials

        self.make = lambda n: LibCredentials(
            access_key_id=f"STS.key{n}",
            access_key_secret=secret,
            security_token=f"{TOKEN}-{n}",
            expiration=expiration,
        )
        self.threads: list[int] = []
        self.fail: Exception | None = None

    def get_credentials(self) -> Any:
        self.threads.append(threading.get_ident())
        if self.fail is not None:
            raise self.fail
        return self.make(len(self.threads))


async def test_default_chain_runs_in_a_worker_thread_and_honours_sts_expiry() -> None:
    clock = Clock()
    expiry = T0 + timedelta(minutes=7)
    chain = FakeChain(expiration=int(expiry.timestamp()))
    p = DefaultCredentialsProvider(chain, clock=clock)
    creds = await p.get_credentials()
    assert chain.threads
    assert chain.threads[0] != threading.get_ident()
    assert creds.expiration == expiry  # the STS expiry, sooner than the 10-minute cache
    assert creds.security_token == f"{TOKEN}-1"
    fresh = await p.invalidate(creds)
    assert fresh.access_key_id == "STS.key2"


@pytest.mark.parametrize("expiration", [None, 0, -5, 2**40])
async def test_default_chain_without_a_usable_expiry_caches_for_cache_ttl(expiration: int | None) -> None:
    chain = FakeChain(expiration=expiration)
    p = DefaultCredentialsProvider(chain, clock=Clock(), cache_ttl=timedelta(minutes=20))
    assert (await p.get_credentials()).expiration == T0 + timedelta(minutes=20)


async def test_default_chain_failure_is_capped_and_unchained() -> None:
    chain = FakeChain()
    chain.fail = RuntimeError(f"\x1b[31mboom\n{'x' * 5000}")
    with pytest.raises(AuthError) as info:
        await DefaultCredentialsProvider(chain).get_credentials()
    text = str(info.value)
    assert "\x1b" not in text
    assert "\n" not in text
    assert len(text) < 700
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


async def test_default_chain_refuses_non_ascii_secrets() -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        await DefaultCredentialsProvider(FakeChain(secret="s\u00e9cret")).get_credentials()


def test_default_chain_cache_ttl_must_exceed_the_advisory_window() -> None:
    with pytest.raises(ValueError, match="cache_ttl"):
        DefaultCredentialsProvider(FakeChain(), cache_ttl=timedelta(minutes=5))


def test_default_chain_without_the_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "alibabacloud_credentials.provider", None)
    with pytest.raises(ImportError, match=r"pip install 'aiosls\[credentials\]'"):
        DefaultCredentialsProvider()
