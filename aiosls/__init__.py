"""aiosls: an asyncio SDK for the consumer-group checkpoints of Alibaba Cloud SLS.

Every public name is importable from here, but each is loaded on first use (PEP 562): the
``aiosls`` command's ``--help`` must not pay for aiohttp, and a program that only needs
``aiosls.names`` should not either.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from .credentials import (
        Credentials,
        CredentialsProvider,
        EnvironmentCredentialsProvider,
        StaticCredentialsProvider,
    )
    from .errors import (
        AlreadyExistsError,
        AuthError,
        CertificateError,
        ClientError,
        ClockSkewError,
        ConnectError,
        NotFoundError,
        ReadTimeout,
        ResponseParseError,
        ServiceClosedError,
        SlsError,
        ThrottlingError,
        TransientError,
        TransportError,
        ValidationError,
    )
    from .fanout import CheckpointStream, LagStream
    from .health import GroupHealth, Health, HealthEvaluator, ShardHealth
    from .models import (
        CheckpointResult,
        CheckpointTarget,
        ConsumerGroup,
        GroupLag,
        LagResult,
        Shard,
        ShardCheckpoint,
        ShardLag,
    )
    from .providers import DefaultCredentialsProvider, RefreshingCredentialsProvider
    from .retry import DEFAULT_RETRY, NO_RETRY, UPDATE_CHECKPOINT_RETRY, Backoff, RetryPolicy
    from .service import CheckpointService
    from .timeouts import Timeouts
    from .transport import HttpRequest, HttpResponse, Transport
    from .transport.aiohttp import AiohttpTransport
    from .transport.memory import InMemoryTransport

__version__ = "0.2.0"

__all__ = [
    "DEFAULT_RETRY",
    "NO_RETRY",
    "UPDATE_CHECKPOINT_RETRY",
    "AiohttpTransport",
    "AlreadyExistsError",
    "AuthError",
    "Backoff",
    "CertificateError",
    "CheckpointResult",
    "CheckpointService",
    "CheckpointStream",
    "CheckpointTarget",
    "ClientError",
    "ClockSkewError",
    "ConnectError",
    "ConsumerGroup",
    "Credentials",
    "CredentialsProvider",
    "DefaultCredentialsProvider",
    "EnvironmentCredentialsProvider",
    "GroupHealth",
    "GroupLag",
    "Health",
    "HealthEvaluator",
    "HttpRequest",
    "HttpResponse",
    "InMemoryTransport",
    "LagResult",
    "LagStream",
    "NotFoundError",
    "ReadTimeout",
    "RefreshingCredentialsProvider",
    "ResponseParseError",
    "RetryPolicy",
    "ServiceClosedError",
    "Shard",
    "ShardCheckpoint",
    "ShardHealth",
    "ShardLag",
    "SlsError",
    "StaticCredentialsProvider",
    "ThrottlingError",
    "Timeouts",
    "TransientError",
    "Transport",
    "TransportError",
    "ValidationError",
    "__version__",
]

#: Where each public name lives; a name is imported from its module on first access.
_LAZY: dict[str, str] = {
    "Credentials": "aiosls.credentials",
    "CredentialsProvider": "aiosls.credentials",
    "EnvironmentCredentialsProvider": "aiosls.credentials",
    "StaticCredentialsProvider": "aiosls.credentials",
    "AlreadyExistsError": "aiosls.errors",
    "AuthError": "aiosls.errors",
    "CertificateError": "aiosls.errors",
    "ClientError": "aiosls.errors",
    "ClockSkewError": "aiosls.errors",
    "ConnectError": "aiosls.errors",
    "NotFoundError": "aiosls.errors",
    "ReadTimeout": "aiosls.errors",
    "ResponseParseError": "aiosls.errors",
    "ServiceClosedError": "aiosls.errors",
    "SlsError": "aiosls.errors",
    "ThrottlingError": "aiosls.errors",
    "TransientError": "aiosls.errors",
    "TransportError": "aiosls.errors",
    "ValidationError": "aiosls.errors",
    "CheckpointStream": "aiosls.fanout",
    "LagStream": "aiosls.fanout",
    "GroupHealth": "aiosls.health",
    "Health": "aiosls.health",
    "HealthEvaluator": "aiosls.health",
    "ShardHealth": "aiosls.health",
    "CheckpointResult": "aiosls.models",
    "CheckpointTarget": "aiosls.models",
    "ConsumerGroup": "aiosls.models",
    "GroupLag": "aiosls.models",
    "LagResult": "aiosls.models",
    "Shard": "aiosls.models",
    "ShardCheckpoint": "aiosls.models",
    "ShardLag": "aiosls.models",
    "DefaultCredentialsProvider": "aiosls.providers",
    "RefreshingCredentialsProvider": "aiosls.providers",
    "DEFAULT_RETRY": "aiosls.retry",
    "NO_RETRY": "aiosls.retry",
    "UPDATE_CHECKPOINT_RETRY": "aiosls.retry",
    "Backoff": "aiosls.retry",
    "RetryPolicy": "aiosls.retry",
    "CheckpointService": "aiosls.service",
    "Timeouts": "aiosls.timeouts",
    "HttpRequest": "aiosls.transport",
    "HttpResponse": "aiosls.transport",
    "Transport": "aiosls.transport",
    "AiohttpTransport": "aiosls.transport.aiohttp",
    "InMemoryTransport": "aiosls.transport.memory",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
