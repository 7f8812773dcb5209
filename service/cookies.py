"""Set-Cookie header lines -> the seed's Cookie shape.

Both fetch clients report cookies from the Set-Cookie headers the server actually sent, so a
cookie looks the same whichever client fetched it. ``domain`` defaults to the request host and
``path`` to the request's default path (RFC 6265 5.1.4); ``expires`` comes from Max-Age (which
wins) or Expires, as ISO 8601 UTC, clamped to 9999-12-31T23:59:59Z (a later date has no
ISO 8601 form: we report the server's intent, "never", not the 400-day cap browsers apply when
they store it); ``same_site`` only when the attribute was sent.
"""

from __future__ import annotations

import http.cookiejar
import ipaddress
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from service.model import Cookie

_INTEGER = re.compile(r"^-?[0-9]+$")
_SAME_SITE = {"lax": "Lax", "strict": "Strict", "none": "None"}


LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()  # the last ISO 8601 second


def iso_utc(epoch_seconds: float) -> str:
    """ISO 8601 UTC; times past 9999-12-31T23:59:59Z (a server's absurd Max-Age or Expires)
    are clamped to it, times before 1970 to the epoch."""
    clamped = min(max(float(epoch_seconds), 0.0), LATEST)
    return datetime.fromtimestamp(clamped, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_expires(text: str) -> float:
    """A goto cookie's ``expires`` (RFC 3339: ``Z`` or an offset, fractions of a second allowed;
    a time without an offset is UTC) as epoch seconds; ``ValueError`` when it is none."""
    stamp = datetime.fromisoformat(text.strip().replace("z", "Z"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def default_path(url: str) -> str:
    path = urlsplit(url).path
    if not path.startswith("/") or path.count("/") == 1:
        return "/"
    return path[: path.rindex("/")]


def set_cookie_values(headers: Iterable[tuple[str, str]]) -> list[str]:
    """Every Set-Cookie value in ``headers``; a value holding several lines (as Chrome
    reports repeated headers) counts as several."""
    values = []
    for name, value in headers:
        if name.lower() == "set-cookie":
            values.extend(line for line in value.split("\n") if line.strip())
    return values


def parse_set_cookie(line: str, request_url: str, now: float | None = None) -> Cookie | None:
    """One Set-Cookie value as a Cookie, or None when it names no cookie."""
    pair, *attributes = line.split(";")
    if "=" not in pair:
        return None
    name, value = (part.strip() for part in pair.split("=", 1))
    if not name:
        return None
    domain = path = expires = same_site = None
    max_age: int | None = None
    http_only = secure = False
    for attribute in attributes:
        key, _, arg = attribute.partition("=")
        key, arg = key.strip().lower(), arg.strip()
        if key == "domain" and arg:
            domain = arg.lstrip(".").lower()
        elif key == "path" and arg.startswith("/"):
            path = arg
        elif key == "expires":
            parsed = http.cookiejar.http2time(arg)
            if parsed is not None:
                expires = iso_utc(parsed)
        elif key == "max-age" and _INTEGER.match(arg):
            # digits beyond 18 mean "forever" (or "long ago"): no int() of thousands of digits
            max_age = int(arg) if len(arg) <= 19 else (-1 if arg.startswith("-") else int(LATEST))
        elif key == "secure":
            secure = True
        elif key == "httponly":
            http_only = True
        elif key == "samesite":
            same_site = _SAME_SITE.get(arg.lower())
    if max_age is not None:  # an integer of any size: clamped before it meets a float
        expires = iso_utc(0 if max_age <= 0 else (now or time.time()) + min(max_age, int(LATEST)))
    return Cookie(
        name=name,
        value=value,
        domain=domain or (urlsplit(request_url).hostname or ""),
        path=path or default_path(request_url),
        expires=expires,
        http_only=http_only,
        secure=secure,
        same_site=same_site,
    )


def cookies_from_headers(headers: Iterable[tuple[str, str]], request_url: str) -> list[Cookie]:
    cookies = (parse_set_cookie(line, request_url) for line in set_cookie_values(headers))
    return [cookie for cookie in cookies if cookie is not None]


class BrowserCookiePolicy(http.cookiejar.DefaultCookiePolicy):
    """The standard client's jar rules, with the browsers' one exception for ``Secure``: a
    loopback origin (``localhost``, ``127.0.0.0/8``, ``::1``) is potentially trustworthy, so
    plain HTTP to it gets ``Secure`` cookies too; any other ``http:`` URL never does."""

    def return_ok_secure(self, cookie, request) -> bool:
        return super().return_ok_secure(cookie, request) or loopback(urlsplit(request.get_full_url()).hostname)


def loopback(host: str | None) -> bool:
    host = (host or "").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def jar_cookie(cookie: Cookie, host: str) -> http.cookiejar.Cookie:
    """A goto's cookie as the jar keeps it, its attributes with it: ``path`` and ``secure``
    then decide where it is sent, ``expires`` (``parse_expires``; ``ValueError`` when it is
    none) until when. ``domain`` defaults to the goto's host."""
    expires = None
    if cookie.expires:
        try:
            expires = int(min(parse_expires(cookie.expires), LATEST))
        except OverflowError as exc:
            raise ValueError(str(exc)) from exc
    domain = (cookie.domain or host).lower()
    if "." not in domain:  # the jar's name for a dotless host (localhost): what it matches requests by
        domain += ".local"
    return http.cookiejar.Cookie(
        version=0, name=cookie.name, value=cookie.value, port=None, port_specified=False,
        domain=domain, domain_specified=bool(cookie.domain), domain_initial_dot=domain.startswith("."),
        path=cookie.path or "/", path_specified=True, secure=bool(cookie.secure), expires=expires,
        discard=expires is None, comment=None, comment_url=None,
        rest={"HttpOnly": ""} if cookie.http_only else {}, rfc2109=False,
    )
