"""aiosls: an asyncio SDK for the consumer-group checkpoints of Alibaba Cloud SLS."""

from __future__ import annotations

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
