"""The host of a URL a client gives us: one set of rules, the same for every client.

``ascii_host(host)`` returns the host as it goes on the wire (lower case; an international name
in its IDNA 2008 ``xn--`` form, as httpx encodes it) or raises ``ValueError`` saying what is
wrong. It is called once, by ``protocol.check_url``, so a host that passes never makes an IDNA
codec fail further down (the standard client's resolver, httpx, a browser) and a host that fails
is a 400 in its turn on every client alike.

The rules:
- an IP literal: an IPv4 address in dotted form, or an IPv6 address in brackets (no zone id);
- otherwise a domain name of dot-separated labels (one trailing dot allowed): no empty label,
  no label over 63 bytes, at most 253 bytes in all, in its ASCII form;
- in an ASCII name, none of the characters a URL host may not hold (the WHATWG "forbidden
  domain code points": controls, space, ``# % / : < > ? @ [ \\ ] ^ |``, DEL), and a label
  starting ``xn--`` must be a valid A-label;
- a name with non-ASCII characters must be a valid IDNA 2008 name (``idna.encode``).
"""

from __future__ import annotations

import ipaddress
import re

import idna

MAX_LABEL = 63
MAX_NAME = 253
_FORBIDDEN = re.compile(r"[\x00-\x20#%/:<>?@\[\\\]^|\x7f]")
_IPV4_STYLE = re.compile(r"^[0-9.]+$")


def ascii_host(host: str) -> str:
    """The wire form of ``host`` (as ``urlsplit(...).hostname`` gives it), or ``ValueError``."""
    if not host:
        raise ValueError("the URL names no host")
    if ":" in host:  # urlsplit took it from brackets: an IPv6 literal
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValueError(f"{_show(host)} is not an IPv6 address") from None
    if _IPV4_STYLE.match(host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            pass  # digits and dots that are not a dotted quad: judged as a name below
    name = host[:-1] if host.endswith(".") else host
    if name.isascii():
        bad = _FORBIDDEN.search(name)
        if bad:
            raise ValueError(f"the host holds {bad.group()!r}, which a host name may not hold")
        wire = name.lower()
    else:
        try:
            wire = idna.encode(name.lower()).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise ValueError(f"{_show(host)} is not a valid international domain name ({exc})") from None
    labels = wire.split(".")
    for label in labels:
        if not label:
            raise ValueError(f"the host {_show(host)} has an empty label")
        if len(label) > MAX_LABEL:
            raise ValueError(f"the host has a label of {len(label)} bytes (at most {MAX_LABEL})")
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                raise ValueError(f"the host's label {_show(label)} is not a valid IDNA A-label") from None
    if len(wire) > MAX_NAME:
        raise ValueError(f"the host is {len(wire)} bytes long in its ASCII form (at most {MAX_NAME})")
    return wire + ("." if host.endswith(".") else "")


def _show(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:80] + "...")
