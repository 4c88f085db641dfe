"""Endpoints: where to connect and what ``Host`` to send for a project (``docs/protocol.md``).

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

__all__ = ["Endpoint", "derive_region", "parse_endpoint", "redact_endpoint"]

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


# An IPv6 zone id (RFC 6874: "fe80::1%eth0"): an interface name or number. Anything else, above
# all CR, LF, NUL or a space, would end up in the Host header (header injection).
_ZONE_ID: Final = re.compile(r"[A-Za-z0-9._~-]{1,64}")
_SHOWN_MAX: Final = 100


def redact_endpoint(endpoint: object) -> str:
    """``endpoint`` fit for an error message or a log line: any ``user:password@`` dropped,
    control characters escaped, at most 100 characters."""
    text = endpoint if isinstance(endpoint, str) else str(endpoint)
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    shown = f"{scheme}{sep}{authority}{slash}{tail}"
    if len(shown) > _SHOWN_MAX:
        shown = shown[:_SHOWN_MAX] + "..."
    return repr(shown)


def _bad(reason: str, endpoint: str) -> ValueError:
    return ValueError(f"{reason}: {redact_endpoint(endpoint)}")


def _ipv6(host: str) -> bool:
    """True for a valid IPv6 address, with an optional well-formed zone id."""
    address, pct, zone = host.partition("%")
    if pct and not _ZONE_ID.fullmatch(zone):
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def parse_endpoint(endpoint: str) -> Endpoint:
    """Parse ``host``, ``host:port``, ``https://host`` or ``http://host:port`` (IPv6 in brackets).

    No scheme means https. A path, query or credentials in the endpoint are refused; error
    messages never show credentials (``user:password@`` is redacted).

    :raises ValueError: the endpoint is not of one of those forms.
    """
    text = endpoint.strip()
    scheme = "https"
    if "://" in text:
        scheme, _, text = text.partition("://")
        scheme = scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise _bad("endpoint scheme must be http or https", endpoint)
    text = text.rstrip("/")
    if not text or any(c in text for c in "/?#@ ") or not text.isprintable():
        raise _bad("endpoint must be a host with an optional scheme and port", endpoint)
    port: int | None = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise _bad("unclosed IPv6 bracket in endpoint", endpoint)
        if rest:
            if not rest.startswith(":"):
                raise _bad("bad endpoint", endpoint)
            port = _port(rest[1:], endpoint)
        if not _ipv6(host):
            raise _bad("bad IPv6 address in endpoint", endpoint)
    elif text.count(":") > 1:
        host = text  # a bare IPv6 address without brackets (no port possible)
        if not _ipv6(host):
            raise _bad("bad endpoint", endpoint)
    else:
        host, sep, port_text = text.partition(":")
        if sep:
            port = _port(port_text, endpoint)
        if not _HOST_LABEL.fullmatch(host):
            raise _bad("bad host in endpoint", endpoint)
        host = host.lower()
    return Endpoint(scheme, host, port)


def _port(text: str, endpoint: str) -> int:
    # str.isdigit alone also accepts "²" and fullwidth digits; a port is ASCII.
    if not (text.isascii() and text.isdigit() and len(text) <= 5) or not 0 < int(text) < 65536:
        raise _bad("bad port in endpoint", endpoint)
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
