"""A browser session's cookies and portable state, over BiDi ``storage.*``: read (``cookies``),
set (``set_cookies``), cleared (``clear_cookies``), taken (``storage_state``: the cookies and the
open page's origin with its localStorage) and restored when a session opens from a state
(``Restore``).

Decisions where the protocol is silent:
- the cookies are those of the session's own store (its browsing context's user context,
  unpartitioned): every cookie of the session, whatever its domain.
- ``storage_state`` reads the localStorage of the open page's origin only (an http(s) page; none
  for about:blank): reading another origin's would need a navigation there.
- a cookie said to be ``SameSite=None`` but not secure is taken as naming no SameSite (Chrome
  reports a cookie that named none so, and no browser keeps an insecure ``None`` one).
- a state's localStorage is written by a preload script of ours (in our sandbox, before any page
  script runs) in the first document of each origin that a goto lands on; after that goto the
  origin is dropped from the script, so what the page later changes or removes stays so.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

from service import errors
from service.clients import browser_page as page
from service.clients.bidi import BidiError
from service.clients.navigation_record import cookie_params
from service.clients.page_scripts import SANDBOX
from service.cookies import iso_utc
from service.deadline import Deadline
from service.model import Cookie, StorageState

if TYPE_CHECKING:
    from service.clients.bidi import Bidi

_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}

LOCAL_STORAGE = """function() {
  try {
    if (location.protocol !== "http:" && location.protocol !== "https:") return null;
    const store = window.localStorage, pairs = [];
    for (let i = 0; i < store.length; i++) { const key = store.key(i); pairs.push([key, store.getItem(key)]); }
    return [location.origin, pairs];
  } catch (e) { return null; }
}"""

RESTORE = """() => {
  const state = %s;
  const pairs = Object.prototype.hasOwnProperty.call(state, location.origin) ? state[location.origin] : null;
  if (!pairs) return;
  try { for (const pair of pairs) window.localStorage.setItem(pair[0], pair[1]); } catch (e) {}
}"""


def _partition(bidi: Bidi, context: str, deadline: Deadline) -> dict:
    """The session's cookie store: its context's user context, unpartitioned. Not the context's
    partition: Firefox keys that by the top-level site now open (state partitioning), so a cookie
    set there on about:blank is gone once a page loads."""
    tree = bidi.command("browsingContext.getTree", {"root": context, "maxDepth": 0}, deadline)
    user_context = (tree.get("contexts") or [{}])[0].get("userContext") or "default"
    return {"type": "storageKey", "userContext": user_context}


def _cookie(raw: dict) -> Cookie | None:
    value = raw.get("value") or {}
    if value.get("type") != "string":
        return None  # a cookie whose bytes are not text (BiDi base64): no place in our Cookie shape
    expiry = raw.get("expiry")
    same_site = _SAME_SITE.get(str(raw.get("sameSite", "")).lower())
    if same_site == "None" and not raw.get("secure"):
        same_site = None  # Chrome says "none" for a cookie that named no SameSite: none can be insecure
    return Cookie(
        name=raw.get("name", ""),
        value=value.get("value", ""),
        domain=raw.get("domain"),
        path=raw.get("path"),
        expires=iso_utc(expiry) if isinstance(expiry, (int, float)) else None,
        http_only=bool(raw.get("httpOnly")),
        secure=bool(raw.get("secure")),
        same_site=same_site,
    )


def cookies(bidi: Bidi, context: str, deadline: Deadline) -> list[Cookie]:
    result = bidi.command("storage.getCookies", {"partition": _partition(bidi, context, deadline)}, deadline)
    return [cookie for cookie in map(_cookie, result.get("cookies") or []) if cookie is not None and cookie.name]


def set_cookies(bidi: Bidi, context: str, wanted: tuple[Cookie, ...], deadline: Deadline) -> None:
    partition = _partition(bidi, context, deadline) if wanted else None
    for cookie in wanted:
        if cookie.same_site == "None" and not cookie.secure:  # no browser keeps one: as if unnamed
            cookie = dataclasses.replace(cookie, same_site=None)
        scheme = "https" if cookie.secure else "http"
        params = cookie_params(cookie, f"{scheme}://{(cookie.domain or '').lstrip('.')}/")
        try:
            bidi.command("storage.setCookie", {"cookie": params, "partition": partition}, deadline)
        except BidiError as exc:
            raise errors.BadRequest(
                f"the browser refused cookie {cookie.name[:100]!r}: {exc.error}: {exc.message[:200]}"
            ) from exc


def clear_cookies(bidi: Bidi, context: str, deadline: Deadline) -> None:
    bidi.command("storage.deleteCookies", {"partition": _partition(bidi, context, deadline)}, deadline)


def storage_state(bidi: Bidi, context: str, bound: int, deadline: Deadline):
    jar = cookies(bidi, context, deadline)
    found = page.call(bidi, context, LOCAL_STORAGE, [], deadline, activation=False, sandbox=SANDBOX)
    origins = []
    if isinstance(found, list) and len(found) == 2 and isinstance(found[1], list):
        pairs = [(str(k), str(v)) for k, v in found[1]]
        size = sum(len(k) + len(v) for k, v in pairs)
        if size > bound:
            raise errors.TooLarge(f"the localStorage of {found[0]} holds {size} characters, over the reply bound of {bound}")
        origins.append((str(found[0]), pairs))
    return jar, origins


class Restore:
    """The localStorage of a state still to be written, origin by origin, and the preload script
    that writes it."""

    def __init__(self, bidi: Bidi, context: str, state: StorageState, deadline: Deadline):
        self.bidi, self.context = bidi, context
        set_cookies(bidi, context, state.cookies, deadline)
        self.pending = {origin.rstrip("/"): [list(pair) for pair in pairs] for origin, pairs in state.origins}
        self.script: str | None = None
        self._install(deadline)

    def _install(self, deadline: Deadline) -> None:
        if self.script is not None:
            self.bidi.command("script.removePreloadScript", {"script": self.script}, deadline)
            self.script = None
        if self.pending:
            params = {
                "functionDeclaration": RESTORE % json.dumps(self.pending),
                "contexts": [self.context],
                "sandbox": SANDBOX,
            }
            self.script = self.bidi.command("script.addPreloadScript", params, deadline).get("script")

    def landed(self, url: str, deadline: Deadline) -> None:
        """After a goto: the origin it landed on has had its localStorage written."""
        parts = url.split("/", 3)
        origin = "/".join(parts[:3]) if len(parts) >= 3 else url
        if origin in self.pending:
            del self.pending[origin]
            self._install(deadline)
