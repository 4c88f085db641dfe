"""A :class:`CheckpointService` from the connection flags (shared by every SLS subcommand).

Credentials come from the environment (``ALIBABA_CLOUD_*``), or the secret from stdin with
``--access-key-secret-stdin``; never from an argument, so a secret is never in ``ps`` output or
shell history.
"""

from __future__ import annotations

import argparse
import getpass
import os
from typing import TYPE_CHECKING, TextIO

from .options import ENV_ACCESS_KEY_ID, ENV_ENDPOINT
from .run import UsageError

if TYPE_CHECKING:
    from ..credentials import Credentials, CredentialsProvider
    from ..service import CheckpointService

__all__ = ["credentials", "service"]


def credentials(args: argparse.Namespace, stdin: TextIO) -> Credentials | CredentialsProvider:
    """Static keys read from stdin, or the environment provider (checked now: a missing
    variable is a usage error before anything is sent)."""
    from ..credentials import Credentials, EnvironmentCredentialsProvider
    from ..errors import SlsError

    if args.access_key_secret_stdin:
        # Typed at a terminal: read without echo. Piped in: a plain line.
        secret = getpass.getpass("AccessKey secret: ") if stdin.isatty() else stdin.readline().strip()
        key_id = args.access_key_id or os.environ.get(ENV_ACCESS_KEY_ID, "")
        if not key_id or not secret:
            raise UsageError("--access-key-secret-stdin needs an access key id and a secret line on stdin")
        return Credentials(key_id, secret, os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None)
    env = dict(os.environ)
    if args.access_key_id:
        env[ENV_ACCESS_KEY_ID] = args.access_key_id
    provider = EnvironmentCredentialsProvider(env)
    try:
        provider.load()
    except SlsError as exc:
        raise UsageError(exc.message) from None
    return provider


def service(args: argparse.Namespace, stdin: TextIO) -> CheckpointService:
    """The service the flags describe; a flag that cannot work is a :class:`UsageError`."""
    from ..endpoint import derive_region, parse_endpoint
    from ..service import CheckpointService
    from ..timeouts import Timeouts

    if not args.endpoint:
        raise UsageError(f"no endpoint: pass --endpoint or set {ENV_ENDPOINT}")
    try:
        host = parse_endpoint(args.endpoint).host
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.signature_version == "v4" and not args.region and not derive_region(host):
        raise UsageError(
            f"signature V4 needs a region and none can be derived from {args.endpoint!r}: "
            "pass --region (e.g. --region cn-hangzhou), set ALIBABA_CLOUD_REGION_ID, "
            "or use --signature-version v1"
        )
    try:
        return CheckpointService(
            args.endpoint,
            credentials(args, stdin),
            signature_version=args.signature_version,
            region=args.region,
            timeouts=Timeouts(total=args.timeout),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
