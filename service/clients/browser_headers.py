"""Headers between BiDi and our frames: pure functions, tested with plain data.

- ``bidi_headers``: BiDi's header list -> ``[(name, value)]``, newline-joined repeats split apart.
- ``parse_headers_text``: Chrome's raw response header block -> status and headers in order.
- ``wire_headers``: the headers a goto adds to its navigation request.
"""

from __future__ import annotations

import base64

from service import request_headers
from service.clients.base import GotoRequest

# Headers the browser owns: never copied from the goto's headers onto the wire request.
BROWSER_OWNED = request_headers.NEVER_SENT


def latin1(text: str) -> str:
    """A header the browser gave as text, in the protocol's form: each byte one character
    (Latin-1), as the standard client reads them. A browser's text is its UTF-8 decoding of the
    bytes, so it is encoded back first: ``café`` sent as UTF-8 is reported ``cafÃ©`` on every
    client, and distinct byte strings stay distinct."""
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


def bidi_headers(raw: list[dict]) -> list[tuple[str, str]]:
    """BiDi headers -> [(name, value)], a value the browser joined with newlines (repeated
    headers) split back into separate headers, as a plain HTTP client reports them. A string
    value is the UTF-8 text of the bytes (``latin1`` undoes it); a base64 one, the bytes."""
    out = []
    for header in raw or []:
        value = header.get("value") or {}
        text = latin1(value.get("value", "")) if value.get("type") == "string" else _b64text(value.get("value", ""))
        for line in text.split("\n"):
            out.append((latin1(header.get("name", "")), line))
    return out


def _b64text(value: str) -> str:
    try:
        return base64.b64decode(value).decode("latin-1")
    except ValueError:
        return ""


def parse_headers_text(text: str) -> tuple[int | None, list[tuple[str, str]]]:
    """Chrome's raw ``HTTP/1.1 200 OK\\r\\nName: value...`` block -> status, headers in order."""
    lines = latin1(text).replace("\r\n", "\n").split("\n")
    status = None
    parts = lines[0].split(" ", 2) if lines else []
    if len(parts) >= 2 and parts[1].isdigit():
        status = int(parts[1])
    headers = []
    for line in lines[1:]:
        if not line.strip() or ":" not in line:
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return status, headers


def wire_headers(request: GotoRequest) -> list[tuple[str, str]]:
    """The headers the goto adds to the navigation request (``service.request_headers``' rules:
    repeats joined, a ``Referer`` header over the ``referrer`` field). The middleware's headers
    are already in ``request.headers``: the session merges them."""
    return request_headers.frame_headers(request.headers, request.referrer)
