"""What one goto saw, and what it reports: the record of its navigations (``Track``, ``Hop``), the
redirect chain and cookies read from it, and request cookies in BiDi's shape. Pure data: no BiDi
commands are sent from here. Also the BiDi events a goto reads (``EVENTS``), which a browser is
subscribed to when it is prepared (``browser_launch.prepare``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from service import errors, redirects
from service.clients.browser_headers import parse_headers_text, text_or_event
from service.cookies import cookies_from_headers, parse_expires
from service.headers import header_value
from service.model import Cookie, Redirect

# Not browsingContext.navigationStarted: in Firefox, subscribing to it makes every intercepted
# navigation ~40 ms slower; beforeRequestSent carries the navigation id anyway.
EVENTS = (
    "network.beforeRequestSent",
    "network.responseStarted",
    "network.responseCompleted",
    "network.fetchError",
    "network.authRequired",
    "browsingContext.load",
    "browsingContext.navigationFailed",
    "script.message",  # the settle signal's (below)
)
CHROME_EVENTS = ("goog:cdp.Network.responseReceivedExtraInfo",)

# Can the page still redirect itself (a meta refresh's delay, -1 for none; how many scripts)? Read
# one task after its load event, so that a location change made during load has started.
PAGE_FACTS = """(() => {
  let meta = -1, scripts = 1;
  try {
    const m = document.querySelector('meta[http-equiv="refresh" i]');
    if (m) { const x = parseFloat((m.content || "").split(/[;,]/)[0]); meta = isNaN(x) ? 0 : x; }
    scripts = document.scripts ? document.scripts.length : 0;
  } catch (e) {}
  return {meta: meta, scripts: scripts};
})()"""

# The settle signal (Firefox): a preload script, added when a browser is prepared, in a sandbox of
# its own (no page script can reach ``send`` or the functions it calls), that sends PAGE_FACTS of
# every top-level document on SETTLE_CHANNEL once, one task after load. The goto reads it as an
# event that follows the load event, instead of asking the page over a round trip
# (``navigation_settle``). Not in Chrome: its messages from a sandbox never arrive, and from the
# page's own world they came 9 ms after load, later than the probe's round trip (5 ms).
SETTLE_KINDS = frozenset({"firefox"})  # the browsers given the signal (and that wait for it)
SETTLE_CHANNEL = "inndx-settle"
SETTLE_SANDBOX = "inndx"
SETTLE_SIGNAL = (
    "function(send) {\n"
    "  if (window !== window.top) return;\n"
    "  const later = window.setTimeout, listen = EventTarget.prototype.addEventListener;\n"
    "  let sent = false;\n"
    "  const facts = () => { if (!sent) { sent = true; send(" + PAGE_FACTS + "); } };\n"
    "  const report = () => later.call(window, facts, 0);\n"
    '  if (document.readyState === "complete") report();\n'
    '  else listen.call(window, "load", report, {once: true});\n'
    "}"
)


def page_facts(value: dict | None) -> tuple[float, int]:
    """(meta refresh delay or -1, script count) from PAGE_FACTS' BiDi remote value. BiDi sends
    NaN, -0 and the infinities as strings; anything unreadable counts as "it may redirect"."""
    fields = {}
    pairs = value.get("value") if isinstance(value, dict) else None
    for pair in pairs if isinstance(pairs, list) else []:
        if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], dict):
            fields[pair[0]] = pair[1].get("value")
    meta, scripts = fields.get("meta", -1), fields.get("scripts", 1)
    try:
        delay = float(meta)
    except (TypeError, ValueError):
        delay = 0.0
    return delay, scripts if isinstance(scripts, int) else 1


@dataclass
class Hop:
    url: str
    method: str = "GET"
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    size: int | None = None  # decoded body size the browser reported


@dataclass
class Track:
    """What one navigation (one navigation id, one request id) did."""

    navigation: str
    request: str | None = None
    hops: list[Hop] = field(default_factory=list)
    error: str | None = None
    loaded: bool = False
    failed: bool = False
    facts: tuple[float, int] | None = None  # its document's settle signal (``page_facts``)

    def hop(self, count: int, url: str) -> Hop:
        while len(self.hops) <= count:
            self.hops.append(Hop(url=url))
        return self.hops[count]


def chain_and_cookies(
    ordered: list[Track], extra: dict[str, list[str]], client: list[Redirect], final: Track
) -> tuple[list[Redirect], list[Cookie]]:
    """The redirect chain (server hops, client hops between navigations) up to ``final``, and
    every Set-Cookie on the way. Chrome's raw header text (``extra``, by request id) wins over the
    event's headers when it is the same response."""
    chain: list[Redirect] = []
    cookies: list[Cookie] = []
    for index, track in enumerate(ordered):
        raw = extra.get(track.request or "", [])
        for number, hop in enumerate(track.hops):
            if number < len(raw) and raw[number]:
                status, headers = parse_headers_text(raw[number])
                if status == hop.status or hop.status is None:
                    hop.status, hop.headers = status, text_or_event(headers, hop.headers)
            cookies += cookies_from_headers(hop.headers, hop.url)
            location = header_value(hop.headers, "location")
            if number < len(track.hops) - 1 and hop.status is not None and location:
                chain.append(redirects.server_hop(hop.url, hop.status, location))
        if index < len(client) and track is not final:
            chain.append(client[index])
        if track is final:
            break
    return chain, cookies


def location_of(track: Track, extra: dict[str, list[str]]) -> str | None:
    """The Location of the track's last hop when it was a redirect (Chrome: from its raw header
    text, since its BiDi events of a failed redirect lack the headers)."""
    last = track.hops[-1]
    status, headers = last.status, last.headers
    raw = extra.get(track.request or "", [])
    if len(raw) >= len(track.hops) and raw[len(track.hops) - 1]:
        status, from_text = parse_headers_text(raw[len(track.hops) - 1])
        headers = text_or_event(from_text, headers) if status == last.status else from_text
    if status not in redirects.REDIRECT_STATUSES:
        return None
    return header_value(headers, "location")


def cookie_params(cookie: Cookie, url: str) -> dict:
    """A request cookie as ``storage.setCookie`` wants it; domain defaults to the URL's host."""
    params: dict = {
        "name": cookie.name,
        "value": {"type": "string", "value": cookie.value},
        "domain": cookie.domain or (urlsplit(url).hostname or ""),
        "path": cookie.path or "/",
    }
    if cookie.http_only is not None:
        params["httpOnly"] = cookie.http_only
    if cookie.secure is not None:
        params["secure"] = cookie.secure
    if cookie.same_site:
        params["sameSite"] = cookie.same_site.lower()
    if cookie.expires:
        try:
            params["expiry"] = int(parse_expires(cookie.expires))
        except (ValueError, OverflowError) as exc:
            raise errors.BadRequest(
                f"cookie {cookie.name!r} has an invalid expires {cookie.expires!r}"
            ) from exc
    return params
