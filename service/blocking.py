"""The ``block`` middleware's rules, below every fetch client: what a client is given to enforce
(``BlockRules``: the session's ``Block`` steps), how a URL glob matches, and how a browser's
request is typed (``resource_type``). ``middleware.Chain`` is a ``BlockRules`` with the rest of
the open frame's middleware; a client sees only the rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from service.errors import Forbidden

# Characters a Chrome block pattern cannot hold: its declarativeNetRequest urlFilter gives | and ^
# a meaning of their own, with no escape (clients/chrome_blocking.py); refused at the handshake.
UNSAYABLE = frozenset("|^")

# What a browser reports for a sub-resource (BiDi ``request.destination``, then
# ``request.initiatorType`` when the destination is empty) -> our resource type. Measured:
# Chromium 156 gives a font destination "" and initiatorType "font", and a media element's
# request neither (only its ``Range`` header tells it apart); Firefox ESR 153 gives destinations.
DESTINATIONS = {
    "image": "image",
    "font": "font",
    "audio": "media",
    "video": "media",
    "track": "media",
    "style": "stylesheet",
    "script": "script",
    "iframe": "subdocument",
    "frame": "subdocument",
}
INITIATORS = {
    "fetch": "fetch",
    "xmlhttprequest": "fetch",
    "beacon": "fetch",
    "img": "image",
    "css": "stylesheet",
    "font": "font",
    "audio": "media",
    "video": "media",
}
RESOURCE_TYPES = ("image", "font", "media", "stylesheet", "script", "fetch", "subdocument", "other")


def glob(pattern: str) -> re.Pattern[str]:
    """A URL glob as a regular expression: ``*`` is any run of characters, nothing else is special."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def resource_type(destination: str | None, initiator: str | None, has_range: bool = False) -> str:
    """Our resource type for a browser request's destination, initiator type and whether it
    asked for a byte range."""
    if destination:
        return DESTINATIONS.get(destination, "other")
    if initiator:
        return INITIATORS.get(initiator.lower(), "other")
    return "media" if has_range else "other"


@dataclass(frozen=True)
class Block:
    url_patterns: tuple[str, ...] = ()
    resource_types: frozenset[str] = frozenset()
    _compiled: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def build(cls, url_patterns: Iterable[str], resource_types: Iterable[str]) -> Block:
        patterns = tuple(url_patterns)
        return cls(patterns, frozenset(resource_types), tuple(glob(p) for p in patterns))

    def url_matches(self, url: str) -> bool:
        return any(p.fullmatch(url) for p in self._compiled)

    def blocks_subresource(self, url: str, kind: str) -> bool:
        """A browser sub-resource: its URL and its type both match (an empty list matches all)."""
        url_ok = not self.url_patterns or self.url_matches(url)
        return url_ok and (not self.resource_types or kind in self.resource_types)


@dataclass
class BlockRules:
    """A session's ``block`` steps, as a fetch client enforces them."""

    blocks: tuple[Block, ...] = ()

    def check_url(self, url: str) -> None:
        """The standard client: a goto whose URL a ``block`` pattern matches is refused."""
        for block in self.blocks:
            if block.url_matches(url):
                raise Forbidden(f"{url} is blocked by the session's block middleware")

    def blocks_subresource(self, url: str, kind: str) -> bool:
        return any(block.blocks_subresource(url, kind) for block in self.blocks)
