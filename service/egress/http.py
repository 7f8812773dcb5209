"""The little HTTP/1.1 a forward proxy needs, sans I/O: parse a request or response head, drop
hop-by-hop headers, and build the gateway's own answers. Everything here works on bytes and
strings; ``ProxyProtocolError`` is a request the gateway cannot make sense of (answered 400)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

MAX_HEAD = 64 * 1024  # bytes of a request or response head
MAX_HEADERS = 200

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "upgrade",
})
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway", 503: "Service Unavailable"}
TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class ProxyProtocolError(ValueError):
    """A request head the gateway refuses to parse."""


@dataclass
class Head:
    """A request head (``method``, ``target``) or a response head (``status``)."""

    start: tuple[str, str, str]
    headers: list[tuple[str, str]]

    @property
    def method(self) -> str:
        return self.start[0]

    @property
    def target(self) -> str:
        return self.start[1]

    @property
    def status(self) -> int:
        return int(self.start[1])

    def get(self, name: str) -> str | None:
        lower = name.lower()
        return next((value for key, value in self.headers if key.lower() == lower), None)


def parse_head(data: bytes, response: bool = False) -> Head:
    """A head ending in CRLF CRLF; ``ProxyProtocolError`` when malformed."""
    text = data.decode("latin-1")
    lines = text.split("\r\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ProxyProtocolError("empty head")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2:
        raise ProxyProtocolError("malformed start line")
    if response:
        if not parts[0].startswith("HTTP/1.") or not (len(parts[1]) == 3 and parts[1].isdigit()):
            raise ProxyProtocolError("malformed status line")
        start = (parts[0], parts[1], parts[2] if len(parts) > 2 else "")
    else:
        if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0") or not set(parts[0]) <= TOKEN:
            raise ProxyProtocolError("malformed request line")
        start = (parts[0], parts[1], parts[2])
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or not set(name) <= TOKEN:
            raise ProxyProtocolError("malformed header line")
        headers.append((name, value.strip(" \t")))
    if len(headers) > MAX_HEADERS:
        raise ProxyProtocolError("too many headers")
    return Head(start, headers)


def end_to_end(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` without the hop-by-hop ones (those named by Connection included)."""
    named = set(HOP_BY_HOP)
    for key, value in headers:
        if key.lower() in ("connection", "proxy-connection"):
            named.update(token.strip().lower() for token in value.split(","))
    return [(key, value) for key, value in headers if key.lower() not in named]


def render(start: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [start, *(f"{key}: {value}" for key, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def answer(code: int, text: str) -> bytes:
    """The gateway's own short answer, with a plain-text body; the connection ends after it."""
    body = (text.rstrip("\n") + "\n").encode("utf-8", "replace")
    return render(
        f"HTTP/1.1 {code} {REASONS.get(code, 'Error')}",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
        ],
    ) + body


def authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_authority(target: str) -> tuple[str, int]:
    """``host:port`` of a CONNECT request (the port is required)."""
    try:
        parts = urlsplit(f"//{target}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ProxyProtocolError(f"bad CONNECT target: {exc}") from exc
    if not host or port is None or parts.path or parts.query or parts.username is not None:
        raise ProxyProtocolError("a CONNECT target is host:port")
    return host, port


def split_url(target: str) -> tuple[str, int, str]:
    """``host, port, origin-form path`` of an absolute http:// request target."""
    try:
        parts = urlsplit(target)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ProxyProtocolError(f"bad request target: {exc}") from exc
    if parts.scheme.lower() != "http" or not host:
        raise ProxyProtocolError("this proxy takes absolute http:// targets and CONNECT")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, port or 80, path


def basic_credentials(proxy_url: str) -> str | None:
    """The ``Proxy-Authorization`` value for a proxy URL's user and password, if it has them."""
    parts = urlsplit(proxy_url)
    if parts.username is None:
        return None
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def body_framing(head: Head, request: bool, method: str = "GET") -> int | str:
    """How a message's body ends: a byte count, ``"chunked"``, or ``"close"`` (a response read to
    the end of the connection). ``ProxyProtocolError`` for framing that could be read two ways."""
    if not request and (method == "HEAD" or head.status in (204, 304) or 100 <= head.status < 200 and head.status != 101):
        return 0
    if not request and head.status == 101:
        return "close"
    codings = [value for key, value in head.headers if key.lower() == "transfer-encoding"]
    lengths = {value.strip() for key, value in head.headers if key.lower() == "content-length"}
    if codings:
        last = ",".join(codings).split(",")[-1].strip().lower()
        if last != "chunked":
            if request:
                raise ProxyProtocolError("a request's transfer coding must end in chunked")
            return "close"
        return "chunked"
    if lengths:
        if len(lengths) > 1 or not (next(iter(lengths)).isascii() and next(iter(lengths)).isdigit()):
            raise ProxyProtocolError("conflicting or invalid Content-Length")
        return int(next(iter(lengths)))
    return 0 if request else "close"


def chunk_size(line: bytes) -> int:
    text = line.split(b";", 1)[0].strip()
    if not text or len(text) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in text):
        raise ProxyProtocolError("bad chunk size")
    return int(text, 16)


def wants_close(head: Head) -> bool:
    """Whether a message asks to end the connection after it (HTTP/1.0 included)."""
    tokens = {token.strip().lower() for key, value in head.headers if key.lower() == "connection"
              for token in value.split(",")}
    return "close" in tokens or head.start[0] == "HTTP/1.0" or head.start[-1] == "HTTP/1.0"
