"""SLS request signing, V1 (``LOG``, hmac-sha1/hmac-sha256) and V4 (``SLS4-HMAC-SHA256``).

Pure functions: no clock (``now`` is passed in), no I/O. The same string-building functions
serve the client (to sign) and the emulator (to verify), and both are pinned byte for byte by
the official SDK's vectors in ``tests/unit/signature_vectors.json``. References: V1
https://www.alibabacloud.com/help/en/sls/developer-reference/request-signatures, V4
https://help.aliyun.com/en/sls/developer-reference/request-signature-v4, and
``docs/protocol.md`` ("Signatures") for what the pages leave out.

Header names may come in any case: the canonicalisers lower-case them. The headers we add use
the official py SDK's wire casing (``Date``, ``Content-MD5``, ``Authorization``, lower-case
``x-log-*``), so a verifier that looks names up case-sensitively agrees with us too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final, Literal
from urllib.parse import quote

from .credentials import Credentials

__all__ = [
    "EMPTY_SHA256",
    "SignatureVersion",
    "V1Digest",
    "content_md5",
    "content_sha256",
    "http_date",
    "sign_v1",
    "sign_v4",
    "v1_signature",
    "v1_string_to_sign",
    "v4_canonical_query",
    "v4_canonical_request",
    "v4_signature",
    "v4_timestamp",
]

SignatureVersion = Literal["v1", "v4"]
V1Digest = Literal["hmac-sha1", "hmac-sha256"]

V4_ALGORITHM: Final = "SLS4-HMAC-SHA256"
EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()

# RFC 1123 dates must use English names whatever the process locale (strftime's %a/%b do not).
_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _utc(now: datetime) -> datetime:
    if now.tzinfo is UTC:
        return now  # the common case; astimezone() would make a copy
    if now.tzinfo is None:
        raise ValueError("signing needs an aware datetime (UTC), not a naive one")
    return now.astimezone(UTC)


# Both date strings change once a second while a fan-out signs thousands of requests in it:
# remember the last one. A (second, text) tuple is swapped in whole, so threads cannot tear it.
# The key is exact integer arithmetic (int(timestamp()) would truncate toward zero before 1970).


def _second(t: datetime) -> int:
    return t.toordinal() * 86400 + t.hour * 3600 + t.minute * 60 + t.second


_last_http_date: tuple[int, str] = (-1, "")
_last_v4_timestamp: tuple[int, str] = (-1, "")


def http_date(now: datetime) -> str:
    """``Thu, 05 Sep 2024 08:30:15 GMT``: the V1 ``Date`` header."""
    global _last_http_date
    t = _utc(now)
    second = _second(t)
    cached = _last_http_date
    if cached[0] == second:
        return cached[1]
    text = (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT"
    )
    _last_http_date = (second, text)
    return text


def v4_timestamp(now: datetime) -> str:
    """``20240905T083015Z``: the V4 ``x-log-date`` header."""
    global _last_v4_timestamp
    t = _utc(now)
    second = _second(t)
    cached = _last_v4_timestamp
    if cached[0] == second:
        return cached[1]
    text = f"{t.year:04d}{t.month:02d}{t.day:02d}T{t.hour:02d}{t.minute:02d}{t.second:02d}Z"
    _last_v4_timestamp = (second, text)
    return text


def content_md5(body: bytes) -> str:
    """Upper-case hex MD5 of the body: SLS's ``Content-MD5`` (hex, not base64)."""
    return hashlib.md5(body, usedforsecurity=False).hexdigest().upper()


def content_sha256(body: bytes) -> str:
    """Lower-case hex SHA-256 of the body: V4's ``x-log-content-sha256``."""
    return hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256


# --- V1 ------------------------------------------------------------------------------------------


def _v1_header_included(name: str) -> bool:
    # x-log-date is excluded: the py SDK sends it *after* signing, so it is never signed in V1.
    return (
        name.startswith(("x-log-", "x-acs-")) and name != "x-log-date" and not name.startswith("x-log-meta-")
    )


@lru_cache(maxsize=64)
def _v1_layout(keys: tuple[str, ...]) -> tuple[tuple[tuple[str, str], ...], tuple[str | None, ...]]:
    # For one set of header names (a client sends the same few on every request): the signed
    # (lower-case name, key) pairs in order, and the keys of Content-MD5, Content-Type and Date.
    # The last spelling of a name wins, as in the dict comprehension of the general path.
    last = {k.lower(): k for k in keys}
    signed = tuple((n, last[n]) for n in sorted(filter(_v1_header_included, last)))
    return signed, (last.get("content-md5"), last.get("content-type"), last.get("date"))


def v1_string_to_sign(method: str, path: str, params: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """The V1 string-to-sign. ``params`` holds *decoded* values; ``path`` is as sent."""
    resource = path
    if params:
        resource += "?" + "&".join(f"{k}={params[k]}" for k in sorted(params))
    if type(headers) is dict:
        # The client's path: the name layout is cached, only the values are read.
        signed, (md5, ctype, date) = _v1_layout(tuple(headers))
        canonical_headers = "".join([f"{n}:{headers[k]}\n" for n, k in signed])
        return (
            f"{method}\n{headers[md5] if md5 else ''}\n{headers[ctype] if ctype else ''}\n"
            f"{headers[date] if date else ''}\n{canonical_headers}{resource}"
        )
    lower = {k.lower(): v for k, v in headers.items()}
    canonical_headers = "".join(
        f"{name}:{lower[name]}\n" for name in sorted(filter(_v1_header_included, lower))
    )
    return (
        f"{method}\n{lower.get('content-md5', '')}\n{lower.get('content-type', '')}\n"
        f"{lower.get('date', '')}\n{canonical_headers}{resource}"
    )


def v1_signature(secret: str, string_to_sign: str, digest: V1Digest = "hmac-sha1") -> str:
    """base64 of HMAC(secret, string-to-sign); sha1 by default, sha256 for the Tea flavour."""
    algo = "sha1" if digest == "hmac-sha1" else "sha256"
    # hmac.digest: the one-shot C path, same bytes as hmac.new(...).digest() without the object.
    mac = hmac.digest(secret.encode(), string_to_sign.encode(), algo)
    return base64.b64encode(mac).decode("ascii")


def sign_v1(
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: MutableMapping[str, str],
    body: bytes,
    credentials: Credentials,
    now: datetime,
    *,
    digest: V1Digest = "hmac-sha1",
) -> None:
    """Add the V1 signing headers (``Date``, ``x-log-signaturemethod``, ``Content-MD5``,
    the STS token, ``Authorization``) to ``headers`` in place.

    No ``x-log-date`` copy is sent: the py SDK adds it unsigned after signing, and a verifier
    built on that SDK's code would then count it as a signed header and disagree.
    """
    if credentials.security_token:
        headers["x-acs-security-token"] = credentials.security_token
    headers["x-log-signaturemethod"] = digest
    headers["Date"] = http_date(now)
    if body:
        headers["Content-MD5"] = content_md5(body)
    sts = v1_string_to_sign(method, path, params, headers)
    signature = v1_signature(credentials.access_key_secret, sts, digest)
    headers["Authorization"] = f"LOG {credentials.access_key_id}:{signature}"


# --- V4 ------------------------------------------------------------------------------------------


# V4 signs host, content-type and every x-log-*/x-acs-* header but x-log-meta-*.
_V4_ALWAYS_SIGNED: Final = frozenset({"host", "content-type"})


def v4_canonical_query(params: Mapping[str, str]) -> str:
    """Keys sorted, values RFC 3986-encoded (only ``A-Za-z0-9-_.~`` kept); ``key`` alone if empty."""
    if not params:
        return ""
    return "&".join(f"{k}={quote(v, safe='-_.~')}" if v else k for k, v in sorted(params.items()))


def _v4_signed(name: str) -> bool:
    return name in _V4_ALWAYS_SIGNED or (
        name.startswith(("x-log-", "x-acs-")) and not name.startswith("x-log-meta-")
    )


@lru_cache(maxsize=64)
def _v4_layout(keys: tuple[str, ...]) -> tuple[tuple[tuple[str, str], ...], str, str | None]:
    # For one set of header names: the signed (lower-case name, key) pairs in order, the
    # SignedHeaders string and the key of x-log-content-sha256 (the last spelling wins).
    last = {k.lower(): k for k in keys}
    names = sorted(filter(_v4_signed, last))
    return tuple((n, last[n]) for n in names), ";".join(names), last.get("x-log-content-sha256")


def v4_canonical_request(
    method: str, path: str, params: Mapping[str, str], headers: Mapping[str, str]
) -> tuple[str, str]:
    """``(canonical_request, signed_headers)`` for V4: signed headers, canonical query, payload hash."""
    if type(headers) is dict:
        # The client's path: it sends the same header names on every request, so which are
        # signed, in which order, is cached per name tuple; only the values are read here.
        pairs, signed, sha_key = _v4_layout(tuple(headers))
        canonical_headers = "".join([f"{n}:{headers[k].strip()}\n" for n, k in pairs])
        payload = headers[sha_key] if sha_key is not None else EMPTY_SHA256
    else:
        lower = {k.lower(): v for k, v in headers.items()}
        names = sorted(filter(_v4_signed, lower))
        canonical_headers = "".join(f"{n}:{lower[n].strip()}\n" for n in names)
        signed = ";".join(names)
        payload = lower.get("x-log-content-sha256", EMPTY_SHA256)
    canonical = (
        f"{method}\n{path or '/'}\n{v4_canonical_query(params)}\n{canonical_headers}\n{signed}\n{payload}"
    )
    return canonical, signed


@lru_cache(maxsize=256)
def _v4_signing_key(secret: str, date: str, region: str) -> bytes:
    # Changes once a day per key and region; caching it saves four HMACs per request.
    def h(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    return h(h(h(h(("aliyun_v4" + secret).encode(), date), region), "sls"), "aliyun_v4_request")


def v4_signature(secret: str, region: str, timestamp: str, canonical_request: str) -> str:
    """Hex signature over the string-to-sign built from ``canonical_request`` (scope, derived key)."""
    date = timestamp[:8]
    scope = f"{date}/{region}/sls/aliyun_v4_request"
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    string_to_sign = f"{V4_ALGORITHM}\n{timestamp}\n{scope}\n{digest}"
    key = _v4_signing_key(secret, date, region)
    return hmac.digest(key, string_to_sign.encode(), "sha256").hex()


def sign_v4(
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: MutableMapping[str, str],
    body: bytes,
    credentials: Credentials,
    now: datetime,
    *,
    region: str,
) -> None:
    """Add the V4 signing headers (``x-log-date``, ``x-log-content-sha256``, the STS token,
    ``Authorization``) to ``headers`` in place. ``headers`` must already hold ``Host``."""
    if not region:
        raise ValueError("signature V4 needs a region")
    if credentials.security_token:
        headers["x-acs-security-token"] = credentials.security_token
    timestamp = v4_timestamp(now)
    headers["x-log-date"] = timestamp
    headers["x-log-content-sha256"] = content_sha256(body)
    canonical, _signed = v4_canonical_request(method, path, params, headers)
    signature = v4_signature(credentials.access_key_secret, region, timestamp, canonical)
    headers["Authorization"] = (
        f"{V4_ALGORITHM} Credential={credentials.access_key_id}/{timestamp[:8]}/{region}"
        f"/sls/aliyun_v4_request,Signature={signature}"
    )
