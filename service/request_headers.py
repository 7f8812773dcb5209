"""The goto's own request headers, one set of rules for every client (pure functions).

What the frame's ``headers`` (the middleware's merged in) become on the wire, on the standard
client and in a browser alike:

- **Never sent:** the headers a client owns (``Host``, ``Content-Length``, ``Transfer-Encoding``)
  and the hop-by-hop ones (``Connection``, ``Proxy-Authorization``, ``TE``, ...): a browser's road
  out, the egress gateway, drops those anyway, and proxy credentials are the operator's (the
  proxies file), never the frame's.
- **Repeats are joined** into one line at the first one's place: ``a, b`` (RFC 9110 5.3), and
  ``Cookie`` with ``; `` (RFC 6265 5.4). Browsers keep one value per name, so joining is the
  only form all clients can send alike.
- **``Referer`` given as a header wins over the ``referrer`` field**, as ``User-Agent`` does over
  ``user_agent``: an explicit header is sent as given.
- **Headers belong to the goto's origin.** From the first redirect hop to another origin (scheme,
  host, port) on, every frame header is dropped except ``User-Agent`` and ``Referer`` (they stand
  for the ``user_agent`` and ``referrer`` fields, which apply to every hop) and ``Content-Type``
  (it follows the body: kept by 307/308, dropped with it otherwise). ``Authorization``, a frame's
  ``Cookie`` and every custom header never reach another origin; the session's cookie jar still
  gives that origin its own cookies.
"""

from __future__ import annotations

from urllib.parse import urlsplit

OWNED = frozenset({"host", "content-length", "transfer-encoding"})
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "upgrade",
})
NEVER_SENT = OWNED | HOP_BY_HOP
KEPT_ACROSS_ORIGINS = frozenset({"user-agent", "referer", "content-type"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def frame_headers(headers, referrer: str | None) -> list[tuple[str, str]]:
    """The goto's headers as they go on the wire of its first hop: owned and hop-by-hop ones
    left out, repeats joined, the ``referrer`` field as ``Referer`` unless a header gives one."""
    joined: dict[str, tuple[str, list[str]]] = {}
    for name, value in headers:
        key = name.lower()
        if key in NEVER_SENT:
            continue
        if key in joined:
            joined[key][1].append(value)
        else:
            joined[key] = (name, [value])
    out = [(name, ("; " if key == "cookie" else ", ").join(values)) for key, (name, values) in joined.items()]
    if referrer and "referer" not in joined:
        out.append(("Referer", referrer))
    return out


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def cross_origin(first: str, url: str) -> bool:
    return origin(first) != origin(url)


def on_other_origin(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """What is left of the frame's headers once the chain has left the goto's origin."""
    return [(name, value) for name, value in headers if name.lower() in KEPT_ACROSS_ORIGINS]


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name), None)


def without_pairs(cookie_header: str, frame_cookie: str | None) -> str:
    """A ``Cookie`` header's pairs less those the frame's own ``Cookie`` header gave."""
    if not frame_cookie:
        return cookie_header
    theirs = {pair.strip() for pair in frame_cookie.split(";")}
    return "; ".join(pair.strip() for pair in cookie_header.split(";") if pair.strip() and pair.strip() not in theirs)
