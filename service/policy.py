"""The network policy: which addresses a session's traffic may reach.

One policy serves every road out: the standard client (checked on the very address it connects
to), the goto hop check of the browsers, and the egress gateway that carries every connection a
browser makes. A target is ``(host, port)`` plus the addresses ``host`` resolves to; the verdict:

1. **Deny list first** (``INNDX_NETWORK_DENY``): any address or the host name matching a deny rule
   refuses the target.
2. **Allow list** (``INNDX_NETWORK_ALLOW``): an address matching an allow rule (or every address of
   a host name matching one) is allowed.
3. **Default:** only globally routable unicast addresses. Loopback, private (RFC 1918, ULA),
   link-local, CGNAT (100.64/10), multicast, reserved, unspecified and every other non-global
   range are refused, for IPv4 and IPv6, including ranges Python 3.11's tables still call global
   (``EXTRA_NON_GLOBAL``: deprecated site-local ``fec0::/10``, documentation ``3fff::/20``).
   ``allow_private`` (``INNDX_ALLOW_PRIVATE_NETWORKS=1``) lifts this default; the deny list
   still holds.

IPv6 forms that embed an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible
``::a.b.c.d``, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``) get the default verdict of the address
they embed; a deny rule for an IPv4 address also denies every IPv6 form that may reach it (those,
plus local-use NAT64 ``64:ff9b:1::/48`` and both IPv4 addresses of a Teredo ``2001::/32``). An
**allow** rule admits only what it names, in the family it names: an IPv4 rule admits that IPv4
address and none of its IPv6 spellings, which are dialled as IPv6 and may reach something else
(a NAT64 gateway, a 6to4 relay). The IPv4-mapped form is no exception, though most stacks dial it
as IPv4: whether they do is a setting of the host (``IPV6_V6ONLY``), and one spelling per target
keeps the rule readable; an operator who wants it names it (``::ffff:10.0.0.0/104``).
A host with several addresses is refused when any one of them is refused.

A refusal names only what the client gave (the host and port), never an address the host
resolved to, and states the reason only for an address literal: the message must not be an
oracle on the service's internal DNS. The reason still labels the metrics.

Rules (comma- or space-separated in the settings): a CIDR or address (``10.0.0.0/8``, ``::1``), a
host name (``example.com``; ``*.example.com`` for its subdomains), each optionally with a port
(``127.0.0.1:8080``, ``[::1]:8080``, ``10.0.0.0/8:443``, ``example.com:443``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from service.errors import BadRequest, Forbidden, UpstreamError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: the operator picks where the IPv4 sits
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Non-global ranges that Python 3.11's ipaddress still reports as global (newer tables list some).
EXTRA_NON_GLOBAL: dict[IPNetwork, str] = {
    ipaddress.ip_network("fec0::/10"): "private",  # RFC 3879: deprecated site-local, ULA's predecessor
    ipaddress.ip_network("3fff::/20"): "private",  # RFC 9637: documentation (as 2001:db8::/32 is)
}

# The reasons a target is refused: a fixed vocabulary (they label metrics).
REASONS = (
    "deny_list", "unspecified", "loopback", "link_local", "cgnat", "multicast", "reserved", "private", "not_global",
)


class Refused(Forbidden):
    """The network policy refuses a target (403); ``reason`` is one of ``REASONS``."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def embedded(ip: IPAddress) -> IPAddress:
    """The address a packet to ``ip`` really reaches: the IPv4 address an IPv6 form embeds."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def reachable(ip: IPAddress) -> set[IPAddress]:
    """Every address a packet to ``ip`` may end up at: ``ip`` itself, the IPv4 address its
    well-known embedding names, and the IPv4 addresses that local-use NAT64 (last 32 bits, the
    /96 layout) and Teredo (server and client) carry. Deny rules look at all of them."""
    found = {ip, embedded(ip)}
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in NAT64_LOCAL:
            found.add(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.teredo is not None:
            found.update(ip.teredo)
    return found


def default_reason(ip: IPAddress) -> str | None:
    """Why the default policy refuses ``ip`` (already resolved to what it embeds), or None."""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"
    if isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT:
        return "cgnat"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not_global"
    for network, reason in EXTRA_NON_GLOBAL.items():
        if ip.version == network.version and ip in network:
            return reason
    return None


def parse_address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])


def _is_address(host: str) -> bool:
    try:
        parse_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_public(address: str) -> bool:
    """Whether the default policy lets ``address`` through."""
    return default_reason(embedded(parse_address(address))) is None


@dataclass(frozen=True)
class Rule:
    """One allow or deny rule: a network or a host name, and an optional port."""

    network: IPNetwork | None = None
    host: str | None = None  # lower-case; a leading "." matches subdomains ("*.example.com")
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> Rule:
        spec = text.strip()
        if not spec:
            raise ValueError("an empty rule")
        port = None
        if spec.startswith("["):  # [v6 or v6/len]:port
            inner, _, rest = spec[1:].partition("]")
            if rest and not rest.startswith(":"):
                raise ValueError(f"{text!r}: expected [address]:port")
            spec, port = inner, _port(rest[1:], text) if rest else None
        elif spec.count(":") == 1:  # v4, v4/len or a host name, with a port
            spec, _, port_text = spec.partition(":")
            port = _port(port_text, text)
        try:
            return cls(network=ipaddress.ip_network(spec, strict=False), port=port)
        except ValueError:
            pass
        name = spec.lower().rstrip(".")
        if name.startswith("*."):
            name = name[1:]
        label = name.lstrip(".")
        if not label or any(not part or len(part) > 63 for part in label.split(".")) or not all(
            c.isalnum() or c in "-." for c in label
        ):
            raise ValueError(f"{text!r} is neither a network, an address nor a host name")
        return cls(host=name, port=port)

    def matches(self, host: str, port: int, ip: IPAddress | None) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return ip is not None and ip.version == self.network.version and ip in self.network
        assert self.host is not None
        name = host.lower().rstrip(".")
        return name == self.host or (self.host.startswith(".") and name.endswith(self.host))


def _port(text: str, rule: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise ValueError(f"{rule!r}: the port must be 1-65535")
    return int(text)


def parse_rules(text: str | Iterable[str]) -> tuple[Rule, ...]:
    items = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    return tuple(Rule.parse(item) for item in items)


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an address literal resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise UpstreamError(f"cannot resolve host {host[:200]!r}: {exc}") from exc
    return sorted({info[4][0] for info in infos})


class Policy:
    """The verdicts of one service instance; immutable and thread-safe."""

    def __init__(self, allow: Iterable[Rule] = (), deny: Iterable[Rule] = (), allow_private: bool = False):
        self.allow = tuple(allow)
        self.deny = tuple(deny)
        self.allow_private = allow_private

    def verdict(self, host: str, port: int, address: str) -> str | None:
        """None when ``host:port`` at ``address`` may be reached, else the reason it may not."""
        raw = parse_address(address)
        for ip in reachable(raw):
            if any(rule.matches(host, port, ip) for rule in self.deny):
                return "deny_list"
        if any(rule.matches(host, port, raw) for rule in self.allow):  # the address as dialled, only
            return None
        if self.allow_private:
            return None
        return default_reason(embedded(raw))

    def check(self, host: str, port: int, addresses: Iterable[str]) -> list[str]:
        """``addresses`` when every one may be reached, else ``Refused``. Its message names the
        target as the client gave it, never a resolved address, and the reason only for an
        address literal (what a name resolves to is none of the client's business)."""
        checked = list(addresses)
        for address in checked:
            reason = self.verdict(host, port, address)
            if reason is not None:
                literal = _is_address(host)
                shown = f"[{host}]" if literal and ":" in host and not host.startswith("[") else host
                why = f" ({reason.replace('_', ' ')})" if literal else ""
                raise Refused(f"{shown[:200]}:{port} is blocked by the network policy{why}", reason)
        return checked

    def allowed_addresses(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and check every address: the addresses to connect to."""
        return self.check(host, port, resolve(host, port))

    def check_url(self, url: str) -> None:
        """Refused when ``url``'s target is not allowed; UpstreamError when it does not resolve."""
        if self.open:
            return
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            raise BadRequest(f"invalid url {url[:200]!r}: {exc}") from exc
        if not host:
            raise BadRequest(f"url has no host: {url[:200]!r}")
        self.allowed_addresses(host, port or (443 if parts.scheme == "https" else 80))

    @property
    def open(self) -> bool:
        """Whether no check can ever refuse (private networks allowed, nothing denied)."""
        return self.allow_private and not self.deny
