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


def bidi_headers(raw: list[dict], utf8: bool = True) -> list[tuple[str, str]]:
    """BiDi headers -> [(name, value)], a value the browser joined with newlines (repeated
    headers) split back into separate headers, as a plain HTTP client reports them. A base64
    value is the bytes; a string value is Firefox's UTF-8 text of them (``utf8``: ``latin1``
    undoes it) or Chrome's, already one character per byte (``utf8=False``)."""
    same = latin1 if utf8 else (lambda text: text)
    out = []
    for header in raw or []:
        value = header.get("value") or {}
        text = same(value.get("value", "")) if value.get("type") == "string" else _b64text(value.get("value", ""))
        for line in text.split("\n"):
            out.append((same(header.get("name", "")), line))
    return out


def _utf8(value: str) -> bool:
    try:
        value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False
    return True


def text_or_event(from_text: list[tuple[str, str]], from_event: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Chrome's headers of one response: its raw text keeps order and repeats, but is its UTF-8
    decoding of the bytes, which loses a byte that is not UTF-8 and can swallow the line end
    after it (``X-A: \\xe9`` + ``X-B: b`` became ``X-A: X-B: b``). Its event keeps every byte
    (sorted by name, repeats in order). When a value of the event is not UTF-8, the event's
    headers are taken, in the order the text names them."""
    if all(_utf8(value) for _, value in from_event):
        return from_text
    order: dict[str, float] = {}
    for name, _ in from_text:
        order.setdefault(name.lower(), len(order))
    for name, _ in from_event:  # a line the text swallowed sits inside the value before it
        swallowed = next((n for n, v in from_text if f"{name.lower()}:" in v.lower()), None)
        if name.lower() not in order and swallowed is not None:
            order[name.lower()] = order[swallowed.lower()] + 0.5
    ranked = sorted(enumerate(from_event), key=lambda item: (order.get(item[1][0].lower(), len(order)), item[0]))
    return [header for _, header in ranked]


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
