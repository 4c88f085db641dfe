"""Server-side signature verification (``docs/protocol.md``, "Signatures"), built on :mod:`aiosls.signing`.

The string-to-sign and canonical-request builders are the client's own, pinned byte for byte
by the official SDKs' vectors, so accepting what they sign is a matter of feeding them what
arrived: the path as received, the query decoded with form semantics (``+`` is a space), and
the received headers verbatim. Secrets and tokens never appear in an error message.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Final

import attrs

from ..signing import (
    V1Digest,
    content_md5,
    content_sha256,
    v1_signature,
    v1_string_to_sign,
    v4_canonical_request,
    v4_signature,
)
from .state import ApiError

__all__ = ["MAX_SKEW", "Head", "Verifier"]

#: Requests dated further than this from the server clock get ``RequestTimeExpired`` [D].
MAX_SKEW: Final = timedelta(minutes=15)
_V4_PREFIX: Final = "SLS4-HMAC-SHA256 "
_V1_PREFIX: Final = "LOG "


@lru_cache(maxsize=64)
def _parse_http_date(value: str) -> datetime | None:
    # Dates repeat for every request in the same second, so caching makes this nearly free.
    if not value.isascii():  # the parser's int() would read non-ASCII digits (U+0661 as 1)
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@lru_cache(maxsize=64)
def _parse_v4_date(value: str) -> datetime | None:
    if not value.isascii():  # strptime's %Y etc. match any Unicode digit
        return None
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _missing(what: str) -> ApiError:
    return ApiError(400, "MissingParameter", f"missing {what}")


def _invalid(message: str) -> ApiError:
    return ApiError(400, "ParameterInvalid", message)


class Verifier:
    """Checks ``Authorization`` against known access keys, optional STS tokens and the clock.

    ``sts_tokens`` maps an access key id to the token its requests must carry in
    ``x-acs-security-token``; keys not listed there are long-term keys and need no token.
    ``region``, when set, is the only region a V4 credential scope may name.
    """

    def __init__(
        self, access_keys: Mapping[str, str], sts_tokens: Mapping[str, str], *, region: str | None = None
    ) -> None:
        #: The region V4 credential scopes must name; None accepts any.
        self.region = region
        self._keys = dict(access_keys)
        self._tokens = dict(sts_tokens)
        unknown = set(self._tokens) - set(self._keys)
        if unknown:
            raise ValueError(f"sts_tokens name access keys that are not configured: {sorted(unknown)}")

    def __repr__(self) -> str:
        return f"Verifier(access_key_ids={sorted(self._keys)!r})"

    @property
    def access_key_ids(self) -> list[str]:
        return sorted(self._keys)

    def add_key(self, access_key_id: str, secret: str, security_token: str | None = None) -> None:
        """Accept another key (an STS key when ``security_token`` is given)."""
        if not access_key_id or not secret:
            raise ValueError("an access key needs a non-empty id and secret")
        self._keys[access_key_id] = secret
        if security_token is None:
            self._tokens.pop(access_key_id, None)
        else:
            self._tokens[access_key_id] = security_token

    def remove_key(self, access_key_id: str) -> None:
        """Stop accepting a key (its requests then get 401 ``Unauthorized``)."""
        self._keys.pop(access_key_id, None)
        self._tokens.pop(access_key_id, None)

    def verify(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        now: datetime,
    ) -> str:
        """Return the access key id that signed the request, or raise :class:`ApiError`.

        ``headers`` must have lower-case names. Checks, in order: the Authorization form, the
        key, the request time, the STS token (:meth:`check_head`), then the body hash and the
        signature itself (:meth:`check_body`).
        """
        return self.check_body(self.check_head(headers, now), method, path, params, headers, body)

    def check_head(self, headers: Mapping[str, str], now: datetime) -> Head:
        """What can be checked before reading the body: the Authorization form, the key id,
        the request time, the V4 scope (and region, when one is required) and the STS token.

        So a client that does not hold a key, or replays an old request, cannot make the
        server buffer its body. :raises ApiError: 400 or 401.
        """
        auth = headers.get("authorization")
        if not auth:
            raise _missing("Authorization header")
        if not _utf8(auth):
            raise _invalid("Authorization is not valid UTF-8")
        if auth.startswith(_V4_PREFIX):
            head = self._head_v4(auth, headers, now)
        elif auth.startswith(_V1_PREFIX):
            head = self._head_v1(auth, headers, now)
        else:
            raise _invalid("Authorization must start with 'LOG ' or 'SLS4-HMAC-SHA256 '")
        self._check_token(head.key_id, headers)
        return head

    def check_body(
        self,
        head: Head,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> str:
        """The body hash and the signature over the whole request; returns the key id.

        A signed header, path or query that is not valid UTF-8 cannot have been signed by a
        client: 401 ``SignatureNotMatch``, never an encoding error.
        """
        try:
            if head.version == "v1":
                md5 = headers.get("content-md5", "")
                # Tea sends an empty content-md5 on bodiless requests: only a non-empty one counts.
                if md5 and md5.upper() != content_md5(body):
                    # No documented code for a wrong Content-MD5 [U]: 400 ParameterInvalid.
                    raise _invalid("Content-MD5 does not match the request body")
                string_to_sign = v1_string_to_sign(method, path, params, headers)
                expected = v1_signature(head.secret, string_to_sign, head.digest)
            else:
                payload = headers.get("x-log-content-sha256")
                if payload is None:
                    raise _missing("x-log-content-sha256 header")
                if payload != content_sha256(body):
                    raise _invalid("x-log-content-sha256 does not match the request body")
                canonical, _signed = v4_canonical_request(method, path, params, headers)
                expected = v4_signature(head.secret, head.region, head.timestamp, canonical)
        except UnicodeError:
            raise ApiError(401, "SignatureNotMatch", "the request carries bytes that are not UTF-8") from None
        if not hmac.compare_digest(expected.encode(), _bytes(head.signature)):
            raise ApiError(401, "SignatureNotMatch", "signature does not match the request")
        return head.key_id

    def _secret(self, access_key_id: str) -> str:
        secret = self._keys.get(access_key_id)
        if secret is None:
            raise ApiError(401, "Unauthorized", "the AccessKeyId is not found or disabled")
        return secret

    def _check_token(self, access_key_id: str, headers: Mapping[str, str]) -> None:
        expected = self._tokens.get(access_key_id)
        if expected is None:
            return  # a long-term key: a stray token header is simply signed like any x-acs-*
        got = headers.get("x-acs-security-token", "")
        if not hmac.compare_digest(_bytes(got), expected.encode()):
            raise ApiError(401, "Unauthorized", "the security token is missing, invalid or expired")

    @staticmethod
    def _check_time(when: datetime | None, raw: str, now: datetime) -> None:
        if when is None:
            raise ApiError(400, "InvalidRequestTime", f"cannot parse request time {raw[:40]!r}")
        if abs(when - now) > MAX_SKEW:
            raise ApiError(
                400,
                "RequestTimeExpired",
                "request time is more than 15 minutes away from the server time",
            )

    def _head_v1(self, auth: str, headers: Mapping[str, str], now: datetime) -> Head:
        key_id, sep, signature = auth[len(_V1_PREFIX) :].strip().rpartition(":")
        if not sep or not key_id or not signature:
            raise _invalid("Authorization must be 'LOG {AccessKeyId}:{Signature}'")
        secret = self._secret(key_id)
        method_name = headers.get("x-log-signaturemethod")
        if method_name is None:
            raise _missing("x-log-signaturemethod header")
        digest: V1Digest
        if method_name == "hmac-sha1":
            digest = "hmac-sha1"
        elif method_name == "hmac-sha256":
            digest = "hmac-sha256"
        else:
            raise _invalid(f"unsupported x-log-signaturemethod {method_name[:32]!r}")
        # py sends the unsigned copy in x-log-date too; Date wins when both are present
        # (docs/protocol.md, "Signatures").
        raw_date = headers.get("date") or headers.get("x-log-date")
        if not raw_date:
            raise _missing("Date header")
        self._check_time(_parse_http_date(raw_date), raw_date, now)
        return Head("v1", key_id, secret, signature, digest=digest)

    def _head_v4(self, auth: str, headers: Mapping[str, str], now: datetime) -> Head:
        fields: dict[str, str] = {}
        for part in auth[len(_V4_PREFIX) :].split(","):
            name, _, value = part.strip().partition("=")
            fields[name] = value
        credential, signature = fields.get("Credential", ""), fields.get("Signature", "")
        scope = credential.split("/")
        if len(scope) != 5 or not signature or scope[3] != "sls" or scope[4] != "aliyun_v4_request":
            raise _invalid(
                "Authorization must be 'SLS4-HMAC-SHA256 Credential={AccessKeyId}/{date}/{region}"
                "/sls/aliyun_v4_request,Signature={hex}'"
            )
        key_id, date, region = scope[0], scope[1], scope[2]
        secret = self._secret(key_id)
        timestamp = headers.get("x-log-date")
        if not timestamp:
            raise _missing("x-log-date header")
        self._check_time(_parse_v4_date(timestamp), timestamp, now)
        if date != timestamp[:8] or not region:
            raise ApiError(401, "SignatureNotMatch", "credential scope does not match x-log-date")
        if self.region is not None and region != self.region:
            # The region signed into the key: a client that derived the wrong one is caught here.
            raise ApiError(401, "SignatureNotMatch", "the credential scope names another region")
        return Head("v4", key_id, secret, signature, region=region, timestamp=timestamp)


@attrs.frozen(repr=False)
class Head:
    """What :meth:`Verifier.check_head` learned; never printed (it holds the secret)."""

    version: str
    key_id: str
    secret: str
    signature: str
    digest: V1Digest = "hmac-sha1"
    region: str = ""
    timestamp: str = ""

    def __repr__(self) -> str:
        return f"Head({self.version}, key_id={self.key_id!r})"


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # surrogate-escaped bytes the server received
        return False
    return True


def _bytes(text: str) -> bytes:
    # compare_digest on str needs ASCII; bytes never raise, whatever the client sent.
    return text.encode("utf-8", "replace")
