"""Facts about redirects shared by every fetch client."""

from __future__ import annotations

from urllib.parse import urljoin

from service.model import Redirect

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_STATUSES = frozenset({301, 308})


def redirect_type(status: int | None) -> str:
    """``permanent`` for 301 and 308; every other hop (302, 303, 307, client-side) is temporary."""
    return "permanent" if status in PERMANENT_STATUSES else "temporary"


def server_hop(url: str, status: int, location: str) -> Redirect:
    return Redirect(url=url, location=urljoin(url, location), side="server", type=redirect_type(status))


def client_hop(url: str, location: str) -> Redirect:
    return Redirect(url=url, location=urljoin(url, location), side="client", type="temporary")


def method_after(status: int, method: str) -> str:
    """The method a browser uses for the next hop: 303 turns anything but HEAD into GET, and so
    do 301/302 for POST; 307/308 keep the method (and the body)."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def keeps_body(status: int) -> bool:
    return status in (307, 308)
