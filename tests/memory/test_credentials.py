"""Credentials snapshots and providers; the refreshing provider runs on an injected clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

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


_PRINTABLE = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")), min_size=1
)


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
