"""aiosls: an asyncio SDK for the consumer-group checkpoints of Alibaba Cloud SLS."""

from __future__ import annotations

from .credentials import (
    Credentials,
    CredentialsProvider,
    EnvironmentCredentialsProvider,
    RefreshingCredentialsProvider,
    StaticCredentialsProvider,
)
from .errors import (
    AlreadyExistsError,
    AuthError,
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
from .models import CheckpointResult, CheckpointTarget, ConsumerGroup, Shard, ShardCheckpoint

__version__ = "0.1.0"

__all__ = [
    "AlreadyExistsError",
    "AuthError",
    "CheckpointResult",
    "CheckpointTarget",
    "ClientError",
    "ClockSkewError",
    "ConnectError",
    "ConsumerGroup",
    "Credentials",
    "CredentialsProvider",
    "EnvironmentCredentialsProvider",
    "NotFoundError",
    "ReadTimeout",
    "RefreshingCredentialsProvider",
    "ResponseParseError",
    "ServiceClosedError",
    "Shard",
    "ShardCheckpoint",
    "SlsError",
    "StaticCredentialsProvider",
    "ThrottlingError",
    "TransientError",
    "TransportError",
    "ValidationError",
    "__version__",
]
