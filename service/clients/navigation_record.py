"""What one goto saw, and what it reports: the record of its navigations (``Track``, ``Hop``), the
redirect chain and cookies read from it, and request cookies in BiDi's shape. Pure data: no BiDi
commands are sent from here. Also the BiDi events a goto reads (``EVENTS``), which a browser is
subscribed to when it is prepared (``browser_launch.prepare``).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from service import errors, redirects
from service.clients.browser_headers import parse_headers_text
from service.cookies import cookies_from_headers
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
)
CHROME_EVENTS = ("goog:cdp.Network.responseReceivedExtraInfo",)


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
                    hop.status, hop.headers = status, headers
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
        status, headers = parse_headers_text(raw[len(track.hops) - 1])
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
            stamp = datetime.strptime(cookie.expires, "%Y-%m-%dT%H:%M:%SZ")
            params["expiry"] = calendar.timegm(stamp.timetuple())
        except ValueError as exc:
            raise errors.BadRequest(
                f"cookie {cookie.name!r} has an invalid expires {cookie.expires!r}"
            ) from exc
    return params
