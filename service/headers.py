"""Small facts read off response headers."""

from __future__ import annotations

import re
from collections.abc import Iterable

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # fullmatch: "$" would let a final "\n" through
_VALUE = re.compile(r"[^\r\n\x00]*")


def header_value(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first value of header ``name`` (case-insensitive), or None."""
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


def media_type(headers: Iterable[tuple[str, str]]) -> str | None:
    """``Content-Type`` without parameters, lower-case (``text/html``); None when absent or empty."""
    value = header_value(headers, "content-type")
    if value is None:
        return None
    media = value.split(";", 1)[0].strip().lower()
    return media or None


def reportable(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers a reply can carry: a browser passes lines an HTTP parser would refuse
    (``Bad Name: x``, ``: no name``); those have no [name, value] form in the protocol and are
    left out, as the standard client's parser leaves out the whole answer (502)."""
    return [(name, value) for name, value in headers if _TOKEN.fullmatch(name) and _VALUE.fullmatch(value)]
