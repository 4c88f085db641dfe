"""SLS naming rules, checked before any request is built.

The rules are SLS's documented ones (https://www.alibabacloud.com/help/en/sls/developer-reference/
logstores and the sibling "projects" page); ``docs/protocol.md`` ("Names") says which parts are
documented and which are not.

A name that breaks a rule raises :class:`~aiosls.errors.ValidationError` naming the argument
and the rule, so a typo never turns into a request for some other resource.
"""

from __future__ import annotations

import re
from typing import Final

from .errors import ValidationError

__all__ = [
    "MAX_SHARD",
    "validate_consumer_group",
    "validate_logstore",
    "validate_project",
    "validate_shard",
]

# Project: 3-63 of [a-z0-9-], starting and ending with a letter or digit [D].
_PROJECT: Final = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
# Logstore: 3-63 of [a-z0-9_-], starting and ending with a letter or digit [D].
_LOGSTORE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]")
# Consumer group: charset and length are undocumented [U]; the java SDK (the only official one
# that validates) uses ^[0-9a-zA-Z_-]{1,128}$, so we do too.
_CONSUMER_GROUP: Final = re.compile(r"[0-9a-zA-Z_-]{1,128}")

#: Shard ids are signed 32-bit on the server (the SDKs declare them int32).
MAX_SHARD: Final = 2**31 - 1

_PROJECT_RULE: Final = "3-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"
_LOGSTORE_RULE: Final = "3-63 characters of a-z, 0-9, '_' and '-', starting and ending with a letter or digit"
_CONSUMER_GROUP_RULE: Final = "1-128 characters of A-Z, a-z, 0-9, '_' and '-'"


def _check(value: object, pattern: re.Pattern[str], argument: str, rule: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(
            f"{argument} must be a str, not {type(value).__name__}", error_code="ParameterInvalid"
        )
    if pattern.fullmatch(value) is None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ValidationError(f"invalid {argument} {shown!r}: must be {rule}", error_code="ParameterInvalid")
    return value


def validate_project(project: object) -> str:
    """Return ``project`` if it is a valid SLS project name, else raise ``ValidationError``."""
    return _check(project, _PROJECT, "project", _PROJECT_RULE)


def validate_logstore(logstore: object) -> str:
    """Return ``logstore`` if it is a valid logstore name, else raise ``ValidationError``."""
    return _check(logstore, _LOGSTORE, "logstore", _LOGSTORE_RULE)


def validate_consumer_group(consumer_group: object) -> str:
    """Return ``consumer_group`` if it is a valid consumer-group name, else raise."""
    return _check(consumer_group, _CONSUMER_GROUP, "consumer_group", _CONSUMER_GROUP_RULE)


def validate_shard(shard: object, argument: str = "shard") -> int:
    """Return ``shard`` if it is an int in 0..2**31-1 (bool is refused), else raise
    ``ValidationError``. The message stays short whatever the value (``10**5000`` included)."""
    if isinstance(shard, bool) or not isinstance(shard, int):
        raise ValidationError(
            f"invalid {argument}: must be an int in 0..{MAX_SHARD}, not {type(shard).__name__}",
            error_code="ParameterInvalid",
        )
    if not 0 <= shard <= MAX_SHARD:
        # Never str() a huge int: past 4300 digits that raises, and below it floods the message.
        shown = str(shard) if -(2**63) <= shard < 2**63 else f"of {shard.bit_length()} bits"
        raise ValidationError(
            f"invalid {argument} {shown}: must be an int in 0..{MAX_SHARD}",
            error_code="ParameterInvalid",
        )
    return int(shard)
