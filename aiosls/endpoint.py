"""Endpoints: where to connect and what ``Host`` to send for a project (spec §1).

Pure parsing; no DNS. ``cn-hangzhou.log.aliyuncs.com`` means ``https://`` and virtual-host
style (``{project}.{host}``). An IP address or ``localhost`` is connected to directly and the
project travels only in the ``Host`` header, as the py SDK does for bare IPv4 endpoints; we do it
for every IP form, with or without a port, and for IPv6 too.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

import attrs

__all__ = ["Endpoint", "derive_region", "parse_endpoint"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_HOST_LABEL: Final = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
_REGION_SUFFIXES: Final = (".log.aliyuncs.com", ".sls.aliyuncs.com")
_REGION_QUALIFIERS: Final = ("-intranet", "-share", "-vpc")


def _is_direct(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@attrs.frozen
class Endpoint:
    """A parsed endpoint: scheme, host (no brackets), optional explicit port."""

    scheme: str
    host: str
    port: int | None = None

    @property
    def direct(self) -> bool:
        """True for IP and ``localhost`` endpoints: connect to them, project only in ``Host``."""
        return _is_direct(self.host)

    def _netloc(self, host: str) -> str:
        shown = f"[{host}]" if ":" in host else host
        if self.port is not None and self.port != _DEFAULT_PORTS[self.scheme]:
            return f"{shown}:{self.port}"
        return shown

    def host_header(self, project: str) -> str:
        """``Host`` for a project-scoped request: ``{project}.{host}[:port]``."""
        return f"{project}.{self._netloc(self.host)}"

    def base_url(self, project: str) -> str:
        """``scheme://netloc`` to connect to for ``project`` (no trailing slash)."""
        if self.direct:
            return f"{self.scheme}://{self._netloc(self.host)}"
        return f"{self.scheme}://{self._netloc(f'{project}.{self.host}')}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self._netloc(self.host)}"


def parse_endpoint(endpoint: str) -> Endpoint:
    """Parse ``host``, ``host:port``, ``https://host`` or ``http://host:port`` (IPv6 in brackets).

    No scheme means https. A path, query or credentials in the endpoint are refused.

    :raises ValueError: the endpoint is not of one of those forms.
    """
    text = endpoint.strip()
    scheme = "https"
    if "://" in text:
        scheme, _, text = text.partition("://")
        scheme = scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"endpoint scheme must be http or https, not {scheme!r}")
    text = text.rstrip("/")
    if not text or any(c in text for c in "/?#@ "):
        raise ValueError(f"endpoint must be a host with an optional scheme and port: {endpoint!r}")
    port: int | None = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"unclosed IPv6 bracket in endpoint {endpoint!r}")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad endpoint {endpoint!r}")
            port = _port(rest[1:], endpoint)
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ValueError(f"bad IPv6 address in endpoint {endpoint!r}") from exc
    elif text.count(":") > 1:
        host = text  # a bare IPv6 address without brackets (no port possible)
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ValueError(f"bad endpoint {endpoint!r}") from exc
    else:
        host, sep, port_text = text.partition(":")
        if sep:
            port = _port(port_text, endpoint)
        if not _HOST_LABEL.fullmatch(host):
            raise ValueError(f"bad host in endpoint {endpoint!r}")
        host = host.lower()
    return Endpoint(scheme, host, port)


def _port(text: str, endpoint: str) -> int:
    # str.isdigit alone also accepts "²" and fullwidth digits; a port is ASCII.
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise ValueError(f"bad port in endpoint {endpoint!r}")
    return int(text)


def derive_region(host: str) -> str | None:
    """The V4 region of a standard SLS host, or None (custom domains, IPs, ``log-global``).

    ``cn-shanghai-intranet.log.aliyuncs.com`` -> ``cn-shanghai``, as the Tea SDK derives it.
    """
    for suffix in _REGION_SUFFIXES:
        if host.endswith(suffix):
            region = host[: -len(suffix)]
            break
    else:
        return None
    for qualifier in _REGION_QUALIFIERS:
        if region.endswith(qualifier):
            region = region[: -len(qualifier)]
            break
    if not region or "." in region or region == "log-global":
        return None
    return region
