"""The standard client's cookie jar (``http.cookiejar.CookieJar``, shared by its httpx clients)
as the protocol's cookies: read, set, cleared, and filled from an open frame's state."""

from __future__ import annotations

import calendar
import http.cookiejar
from datetime import datetime

from service.cookies import iso_utc
from service.errors import BadRequest
from service.model import Cookie

_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}


def read(jar: http.cookiejar.CookieJar) -> list[Cookie]:
    found = []
    for item in jar:
        same_site = item.get_nonstandard_attr("SameSite") or item.get_nonstandard_attr("samesite")
        found.append(Cookie(
            name=item.name,
            value=item.value or "",
            domain=item.domain,
            path=item.path,
            expires=iso_utc(item.expires) if item.expires is not None else None,
            http_only=item.has_nonstandard_attr("HttpOnly") or item.has_nonstandard_attr("httponly"),
            secure=bool(item.secure),
            same_site=_SAME_SITE.get(str(same_site).lower()) if same_site else None,
        ))
    return found


def put(jar: http.cookiejar.CookieJar, cookies: tuple[Cookie, ...]) -> None:
    for cookie in cookies:
        domain = cookie.domain or ""
        expires = None
        if cookie.expires:
            try:
                expires = calendar.timegm(datetime.strptime(cookie.expires, "%Y-%m-%dT%H:%M:%SZ").timetuple())
            except ValueError as exc:
                raise BadRequest(f"cookie {cookie.name!r} has an invalid expires {cookie.expires!r}") from exc
        rest: dict[str, str | None] = {}
        if cookie.http_only:
            rest["HttpOnly"] = None
        if cookie.same_site:
            rest["SameSite"] = cookie.same_site
        jar.set_cookie(http.cookiejar.Cookie(
            version=0, name=cookie.name, value=cookie.value, port=None, port_specified=False,
            domain=domain, domain_specified=domain.startswith("."), domain_initial_dot=domain.startswith("."),
            path=cookie.path or "/", path_specified=True, secure=bool(cookie.secure), expires=expires,
            discard=expires is None, comment=None, comment_url=None, rest=rest,
        ))
