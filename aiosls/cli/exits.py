"""The command's exit codes, and how a run's failures map onto them (pure, import-light)."""

from __future__ import annotations

import signal
from collections.abc import Iterable
from typing import Final

__all__ = [
    "EPILOG",
    "EXIT_AUTH",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_TERMINATED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "exit_code",
    "signal_exit_code",
]

EXIT_OK: Final = 0
EXIT_PARTIAL: Final = 1
EXIT_USAGE: Final = 2
EXIT_AUTH: Final = 3
EXIT_UNREACHABLE: Final = 4
EXIT_INTERRUPTED: Final = 128 + signal.SIGINT  # 130, as shells report a Ctrl-C
EXIT_TERMINATED: Final = 128 + signal.SIGTERM  # 143

EPILOG: Final = f"""\
exit codes:
  {EXIT_OK}    every target was read
  {EXIT_PARTIAL}    some targets failed (the others are still printed)
  {EXIT_USAGE}    usage or configuration error (nothing was sent)
  {EXIT_AUTH}    authentication or permission failed for every target (wrong key, RAM policy)
  {EXIT_UNREACHABLE}    the endpoint could not be reached at all (connect, TLS or timeout, every target)
  {EXIT_INTERRUPTED}  interrupted (SIGINT): what was read is printed, marked interrupted
  {EXIT_TERMINATED}  terminated (SIGTERM): the same"""


def _is_unreachable(error: BaseException) -> bool:
    from ..errors import CertificateError, TransportError

    # No SLS answer at all: refused, reset, DNS, a total timeout, or a certificate that did not
    # verify (the peer is not the SLS we were told to trust).
    return isinstance(error, TransportError | CertificateError)


def exit_code(errors: Iterable[BaseException], *, succeeded: int) -> int:
    """0 with no error; 3 or 4 when nothing succeeded and every error was an auth error or an
    unreachable endpoint; 1 otherwise. ``errors`` holds one error per failed target."""
    from ..errors import AuthError

    failed = list(errors)
    if not failed:
        return EXIT_OK
    if succeeded == 0:
        if all(isinstance(e, AuthError) for e in failed):
            return EXIT_AUTH
        if all(_is_unreachable(e) for e in failed):
            return EXIT_UNREACHABLE
    return EXIT_PARTIAL


def signal_exit_code(signum: int) -> int:
    """128 + the signal number, as a shell reports a process the signal killed."""
    return 128 + int(signum)
