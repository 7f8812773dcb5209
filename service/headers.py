"""Small facts read off response headers."""

from __future__ import annotations

from collections.abc import Iterable


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
