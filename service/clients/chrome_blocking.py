"""The ``block`` middleware in Chrome: a declarativeNetRequest extension made for one session.

Chrome cannot take a BiDi intercept that covers every URL: when the page starts a navigation of
its own while the intercept is on (a meta refresh, ``location.href`` set during load), pausing
that navigation's request, and then continuing or failing it, wedges the browser about one time in
two (measured: no BiDi command or classic one answered again). So in Chrome the session's block
rules become the static ruleset of an unpacked extension (manifest v3, ``declarativeNetRequest``),
given to chromedriver in the capabilities (``goog:chromeOptions.extensions``, a zip in base64: it
reaches a Grid node the same way). Chrome fails a matching request itself, before it leaves the
browser, and reports it as a ``network.fetchError`` with ``net::ERR_BLOCKED_BY_CLIENT``, which the
goto counts. Nothing is paused, so no navigation ever meets an intercept.

What it means for the user (docs/protocol.md, "Middleware"):

- declarativeNetRequest never matches the top-level document (``main_frame``): the page's own
  navigation is never blocked, as in Firefox; a frame's document is ``sub_frame`` (our
  ``subdocument``).
- The extension blocks for the browser's whole life, not only during a goto.
- A pattern is our glob on the whole URL (``*`` any run, everything else literal): a ``urlFilter``
  anchored at both ends (``|...|``, case-sensitive). ``urlFilter`` gives ``|`` and ``^`` a meaning
  of their own and has no escape, so for Chrome a pattern holding either is refused at the
  handshake (``middleware.build``, 400) rather than matched differently. A pattern with a
  non-ASCII character can match no URL (a URL as the browser sends it is ASCII) and is left out;
  a rule whose patterns are all left out blocks nothing.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Iterable
from typing import TYPE_CHECKING

from service.blocking import UNSAYABLE

if TYPE_CHECKING:
    from service.blocking import Block

# our resource type -> declarativeNetRequest resource types
DNR_TYPES: dict[str, tuple[str, ...]] = {
    "image": ("image",),
    "font": ("font",),
    "media": ("media",),
    "stylesheet": ("stylesheet",),
    "script": ("script",),
    "fetch": ("xmlhttprequest", "ping"),
    "subdocument": ("sub_frame",),
    "other": ("other", "object", "csp_report", "websocket", "webtransport", "webbundle"),
}
BLOCKED_ERROR = "net::ERR_BLOCKED_BY_CLIENT"
MANIFEST = {
    "manifest_version": 3,
    "name": "inndx block middleware",
    "version": "1.0",
    "description": "The session's block rules (made by the inndx service for one session).",
    "permissions": ["declarativeNetRequest"],
    "declarative_net_request": {"rule_resources": [{"id": "block", "enabled": True, "path": "rules.json"}]},
}


# UNSAYABLE (service.blocking): urlFilter's anchor and separator, with no escape for them


def url_condition(pattern: str) -> dict | None:
    """The declarativeNetRequest URL condition that matches what ``blocking.glob`` matches, or
    None when the pattern can match no URL (a non-ASCII character)."""
    if UNSAYABLE & set(pattern):
        raise ValueError(f"a Chrome block pattern cannot hold | or ^: {pattern!r}")
    if not pattern.isascii():
        return None
    return {"urlFilter": f"|{pattern}|", "isUrlFilterCaseSensitive": True}


def dnr_rules(blocks: Iterable[Block]) -> list[dict]:
    """The static ruleset for a session's block rules (one rule per pattern)."""
    rules: list[dict] = []
    for block in blocks:
        types = sorted({t for kind in block.resource_types for t in DNR_TYPES[kind]})
        if block.url_patterns:
            conditions = [c for c in (url_condition(p) for p in block.url_patterns) if c is not None]
        else:
            conditions = [{}]  # every URL (never the top-level document)
        for condition in conditions:
            if types:
                condition = {**condition, "resourceTypes": types}
            rules.append(
                {"id": len(rules) + 1, "priority": 1, "action": {"type": "block"}, "condition": condition}
            )
    return rules


def extension(blocks: Iterable[Block]) -> str:
    """The unpacked extension as a zip in base64, for ``ChromeOptions.add_encoded_extension``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(MANIFEST))
        archive.writestr("rules.json", json.dumps(dnr_rules(blocks)))
    return base64.b64encode(buffer.getvalue()).decode("ascii")
