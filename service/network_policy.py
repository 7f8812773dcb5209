"""Which hosts a goto may reach.

By default only public addresses: a host is refused (403) when any address it resolves to is
loopback, private, link-local, multicast, reserved, unspecified or otherwise not globally
routable. Every redirect hop is checked again. ``allow_private`` (``INNDX_ALLOW_PRIVATE_NETWORKS``)
lifts the rule. The scheme rule (http and https only) is the protocol's, checked earlier.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from service.errors import BadRequest, Forbidden, UpstreamError


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UpstreamError(f"cannot resolve host {host!r}: {exc}") from exc
    return sorted({info[4][0] for info in infos})


def check_url(url: str, allow_private: bool) -> None:
    """Raise Forbidden when ``url``'s host is not allowed; UpstreamError when it does not resolve."""
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise BadRequest(f"url has no host: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise BadRequest(f"url has an invalid port: {url!r}") from exc
    allowed_addresses(host, port)


def allowed_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, or Forbidden when any of them is not public."""
    addresses = resolve(host, port)
    for address in addresses:
        if not is_public(address):
            raise Forbidden(f"{host} resolves to {address}, a non-public address the network policy blocks")
    return addresses
