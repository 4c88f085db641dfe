"""Every error aiosls raises, and the one table that maps SLS answers onto them.

The class tells a caller what to do; the attributes tell support what happened::

    SlsError                       error_code, message, status, request_id
    ├── ThrottlingError            403 *QuotaExceed, MetaOperationQpsLimitExceeded, 429: retried, long backoff
    ├── TransientError             500/502/503/504, InternalServerError, RequestTimeout, ServerBusy: retried
    │   └── TransportError         no (complete) HTTP response at all; status is None
    │       ├── ConnectError       the request never left: always safe to retry
    │       └── ReadTimeout        the request may have landed: retried for idempotent operations only
    ├── ClientError                any other 4xx: never retried
    │   ├── AuthError              401, SignatureNotMatch, Unauthorized, InvalidAccessKeyId, expired token
    │   ├── NotFoundError          ProjectNotExist, LogStoreNotExist, ConsumerGroupNotExist, ...
    │   ├── AlreadyExistsError     ConsumerGroupAlreadyExist, ProjectAlreadyExist, LogStoreAlreadyExist
    │   ├── ClockSkewError         RequestTimeExpired: the local clock is more than 15 minutes off
    │   ├── CertificateError       the server's TLS certificate did not verify (no HTTP status)
    │   └── ValidationError        (also ValueError) rejected locally, before any byte was sent
    └── ResponseParseError         a body that does not fit the model, or is too large

:class:`ServiceClosedError` (a ``RuntimeError``) is not an ``SlsError``: it is a bug in the
caller, not an answer from SLS.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AlreadyExistsError",
    "AuthError",
    "CertificateError",
    "ClientError",
    "ClockSkewError",
    "ConnectError",
    "NotFoundError",
    "ReadTimeout",
    "ResponseParseError",
    "ServiceClosedError",
    "SlsError",
    "ThrottlingError",
    "TransientError",
    "TransportError",
    "ValidationError",
    "error_class",
]


class SlsError(Exception):
    """Base class: an SLS error answer, a failed exchange, or a rejected argument."""

    def __init__(
        self,
        message: str,
        *,
        error_code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.status = status
        self.request_id = request_id
        #: How many attempts the call made before giving up (set by the retry loop).
        self.attempts: int = 1
        #: Seconds the server asked to wait (``Retry-After``), if it did.
        self.retry_after: float | None = None

    def __str__(self) -> str:
        parts = [p for p in (self.error_code, self._where()) if p]
        head = " ".join(parts)
        tail = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"{head}: {self.message}{tail}" if head else f"{self.message}{tail}"

    def _where(self) -> str:
        inner = ", ".join(
            p
            for p in (
                str(self.status) if self.status is not None else "",
                f"request {self.request_id}" if self.request_id else "",
            )
            if p
        )
        return f"({inner})" if inner else ""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, error_code={self.error_code!r}, "
            f"status={self.status!r}, request_id={self.request_id!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only attributes would otherwise be lost when pickled across processes; the
        # state dict carries what was set after construction (``attempts``, ``__notes__``).
        return (
            _rebuild,
            (type(self), self.message, self.error_code, self.status, self.request_id),
            self.__dict__,
        )


def _rebuild(
    cls: type[SlsError], message: str, code: str | None, status: int | None, rid: str | None
) -> SlsError:
    return cls(message, error_code=code, status=status, request_id=rid)


class ThrottlingError(SlsError):
    """The project's quota or QPS limit was hit: retry later, with a long jittered backoff."""


class TransientError(SlsError):
    """The service (or a proxy in front of it) failed this time: retry soon."""


class TransportError(TransientError):
    """No complete HTTP response arrived (connection refused, reset, timed out)."""


class ConnectError(TransportError):
    """The request never reached the server: safe to retry any operation."""


class ReadTimeout(TransportError, TimeoutError):
    """No response in time; the request may have been applied, so only idempotent calls retry."""


class ClientError(SlsError):
    """The request was refused as it stands (4xx): retrying the same request will not help."""


class AuthError(ClientError):
    """Credentials were missing, wrong, expired or not allowed for this resource."""


class NotFoundError(ClientError):
    """The project, logstore, consumer group, shard or consumer does not exist."""


class AlreadyExistsError(ClientError):
    """A create call named something that already exists."""


class ClockSkewError(ClientError):
    """The request's date is more than 15 minutes off the server's (``RequestTimeExpired``)."""


class CertificateError(ClientError):
    """The server's TLS certificate failed verification: retrying cannot fix it, so it never is."""


class ValidationError(ClientError, ValueError):
    """An argument broke an SLS rule; raised before anything was sent."""


class ResponseParseError(SlsError):
    """The response body was not what the API promises (not JSON, wrong shape, too large)."""


class ServiceClosedError(RuntimeError):
    """The service (or transport) was used after ``aclose()``."""


# --- code/status -> class ----------------------------------------------------------------------
# Codes and statuses: https://www.alibabacloud.com/help/en/sls/developer-reference/error-codes
# and each operation's API reference page; docs/protocol.md ("Errors") says which are unconfirmed.
# Codes win over statuses: a 403 is throttling only for the quota codes, and ConsumerGroupQuotaExceed
# (the 30-groups-per-logstore limit) is a plain client error even though its name ends in QuotaExceed.

_BY_CODE: Final[dict[str, type[SlsError]]] = {
    # throttling (retry with the long curve)
    "ReadQuotaExceed": ThrottlingError,
    "WriteQuotaExceed": ThrottlingError,
    "ShardReadQuotaExceed": ThrottlingError,
    "ShardWriteQuotaExceed": ThrottlingError,
    "ProjectQuotaExceed": ThrottlingError,
    "MetaOperationQpsLimitExceeded": ThrottlingError,
    # transient (retry with the short curve)
    "InternalServerError": TransientError,
    "RequestTimeout": TransientError,
    "ServerBusy": TransientError,
    # auth: the docs report an expired STS token as Unauthorized; the other spellings come from
    # the py SDK's list of "refresh credentials" codes and are kept so we classify them right too.
    "Unauthorized": AuthError,
    "SignatureNotMatch": AuthError,
    "InvalidAccessKeyId": AuthError,
    "InvalidAccessKeyId.NotFound": AuthError,
    "SecurityToken.Expired": AuthError,
    "SecurityTokenExpired": AuthError,
    # not found; "Exsit" is the spelling some SLS answers (and the go SDK) use
    "ProjectNotExist": NotFoundError,
    "LogStoreNotExist": NotFoundError,
    "ConsumerGroupNotExist": NotFoundError,
    "ShardNotExist": NotFoundError,
    "ShardNotExsit": NotFoundError,
    "ConsumerNotExist": NotFoundError,
    "ConsumerNotExsit": NotFoundError,
    # conflicts and clocks
    "ConsumerGroupAlreadyExist": AlreadyExistsError,
    "ProjectAlreadyExist": AlreadyExistsError,
    "LogStoreAlreadyExist": AlreadyExistsError,
    "RequestTimeExpired": ClockSkewError,
}

# Spellings differ between SLS answers and SDKs (ShardNotExsit, ...): match case-insensitively.
_BY_FOLDED_CODE: Final = {code.casefold(): cls for code, cls in _BY_CODE.items()}

_TRANSIENT_STATUSES: Final = frozenset({500, 502, 503, 504})


def error_class(status: int, error_code: str | None) -> type[SlsError]:
    """The class for an error answer: by SLS code first (any case), then by HTTP status."""
    if error_code:
        cls = _BY_FOLDED_CODE.get(error_code.casefold())
        if cls is not None:
            return cls
    if status == 429:
        return ThrottlingError
    if status in _TRANSIENT_STATUSES:
        return TransientError
    if status == 401:
        return AuthError
    if status == 404:
        return NotFoundError
    if 400 <= status < 500:
        return ClientError
    return SlsError
