"""A real HTTP/1.1 test site on a loopback port, for the end-to-end tests.

``Site(host="127.0.0.1")`` binds a free port; use it as a context manager or call ``start()`` /
``stop()``. ``site.url("/html")`` builds ``http://HOST:PORT/html``. ``site.requests`` is a copy of the
log of received requests, each ``{"method", "path" (no query), "query" (raw), "target" (raw request
target), "headers": [[name, value], ...] (received order), "body": bytes}``; ``site.clear()`` empties
it and the key counters. ``site.errors`` lists unexpected handler exceptions (should stay empty).

Every response carries the endpoint's headers in the order listed below, then
``Cache-Control: no-store`` (so browsers never cache a 301/308), then ``Content-Length`` (omitted,
with no body, for 204 and 304). HEAD gets the headers a GET would get, without the body. Keep-alive
follows HTTP/1.1 rules. Unknown paths (``/favicon.ico`` included) answer 404.

Any request whose query has ``key=K`` (except ``/counter``) increments counter K first.

Endpoints:

=====================================  ===========================================================
``/html?title=X``                      HTML page: doctype, ``<title>X</title>`` (default "Test
                                       page"), ``<h1>X</h1>``, ``<p id="p">Hello from the test
                                       site.</p>``
``/redirect/<code>?to=URL``            code in 301 302 303 307 308; ``Location: URL`` verbatim
                                       (default ``/html``); ``Set-Cookie: hop<code>=1; Path=/``
``/chain/<n>``                         n (0-100) > 0: 302 to ``/chain/<n-1>``; n = 0: HTML page
                                       titled "Chain end"; every one sets ``chain<n>=v<n>; Path=/``
``/loop``                              302 to ``/loop`` forever
``/cookies/set``                       HTML, and one Set-Cookie line each, in this order:
                                       ``COOKIES_SET`` below
``/cookies/set?name=N&value=V&attrs=A``  one line ``N=V; A`` (``attrs`` default ``Path=/``;
                                       ``attrs=`` empty gives just ``N=V``)
``/cookies/echo``                      JSON ``{"raw": Cookie header or null (several joined by
                                       "; "), "cookies": {name: value}}``
``/echo``, ``/echo/<anything>``        any method; JSON ``{"method", "path", "query", "headers",
                                       "body_base64"}`` exactly as received
``/status/<code>``                     that code (200-599), text body ``status <code>\\n``; 204 and
                                       304 have no body; 3xx here have no Location
``/headers/repeated``                  ``X-Multi: one``, ``X-Multi: two``, ``X-Case: MiXeD``,
                                       ``Content-Type: text/plain; charset=utf-8``
``/binary``                            bytes 0..255, application/octet-stream
``/image.png``                         a valid 4x4 red PNG (``PNG_BYTES``), image/png
``/json``                              ``{"hello": "world", "n": 1}``, application/json
``/big?bytes=N``                       N (at most 64 MiB) bytes of ``big_body(N)``, text/plain
``/gzip``                              gzip of ``GZIP_HTML`` with ``Content-Encoding: gzip``
``/slow?seconds=S``                    waits S (at most 30) seconds, then the HTML page
``/hang``                              never answers; the connection closes when the site stops
                                       (or after 60 s)
``/meta-refresh?to=P&delay=D``         ``<meta http-equiv="refresh" content="D; url=P">`` (D
                                       default 0, P default ``/html``)
``/js-redirect?to=P``                  inline script ``location.href = P`` while loading
``/js-replace?to=P``                   ``location.replace(P)`` in a ``setTimeout(0)`` after load
``/js-disguised?to=P``                 ``location.replace(P)`` 100 ms after load, from a page that
                                       hides from in-page checks: ``setTimeout`` a no-op,
                                       ``querySelector`` null, ``document.scripts`` empty
``/form``                              the interaction page, see ``FORM_HTML``
``/files/<name>``                      pages with file inputs: ``tests/support/file_pages.py``
``/actions/<name>``                    pages for the actions of issue 20 (waits, keys, scrolling,
                                       cookies, logins): ``tests/support/action_pages.py``
``/reset``                             closes the connection with a TCP reset, no response
``/flaky?key=K&fail=N``                resets the first N requests with key K, then HTML
``/counter?key=K``                     JSON ``{"key": K, "count": requests with key K so far}``
``/retry?key=K&fail=N&status=S&after=A``  the first N requests with key K answer status S
                                       (default 503) with ``Retry-After: A`` when given; then HTML
``/resources?refresh=P&frame=1``       HTML loading one of each sub-resource from ``/asset/``:
                                       ``RESOURCE_PATHS`` (``dir=free``: from ``/free/``; plus a meta refresh to P, delay 0,
                                       when given; plus an iframe of ``/asset/frame.html`` whose
                                       own image is ``/asset/in-frame.png``, with ``frame=1``)
``/asset/<name>``, ``/free/<name>``     a small body typed by the name's extension (png, css, js,
                                       woff2, wav, json, html)
=====================================  ===========================================================
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import struct
import threading
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback_server import LoopbackServer, TrackingServer, read_body

COOKIES_SET: list[str] = [
    "a=1; Path=/; HttpOnly",
    "b=2; Path=/; Secure; SameSite=Strict",
    "c=3; Path=/cookies; Domain=127.0.0.1; Max-Age=3600",
    "d=4; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; SameSite=Lax",
    "e=5",
    "f=6; SameSite=None; Secure",
]

REDIRECT_CODES = (301, 302, 303, 307, 308)
MAX_SLOW_SECONDS = 30.0
HANG_BOUND_SECONDS = 60.0
MAX_BIG_BYTES = 64 * 1024 * 1024
MAX_CHAIN = 100


def html_page(title: str = "Test page", body: str = "", head: str = "") -> bytes:
    """The site's HTML page: doctype, title, an h1 and ``<p id="p">``, plus extra markup."""
    t = html.escape(title)
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{t}</title>{head}</head>\n<body><h1>{t}</h1>"
        f"<p id=\"p\">Hello from the test site.</p>{body}</body></html>\n"
    ).encode()


def big_body(n: int) -> bytes:
    """Deterministic printable filler: ``0-9a-zA-Z`` repeated, cut to ``n`` bytes."""
    pattern = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return (pattern * (n // len(pattern) + 1))[:n]


def _png(width: int = 4, height: int = 4, rgb: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


PNG_BYTES: bytes = _png()
BINARY_BYTES: bytes = bytes(range(256))
GZIP_HTML: bytes = html_page("Gzipped page")

FORM_HTML: bytes = html_page(
    "Form",
    head=(
        "<style>main{max-width:360px} #covered{position:fixed;top:10px;right:10px}"
        " #overlay{position:fixed;top:0;right:0;width:160px;height:80px;z-index:10;"
        "background:rgba(0,0,0,.1)}</style>"
    ),
    body="""
<main>
<form id="form" action="/echo" method="get">
  <input id="name" name="name" type="text"
         oninput="document.getElementById('result').textContent = this.value">
  <textarea id="bio" name="bio"></textarea>
  <select id="color" name="color">
    <option value="red">Red</option><option value="green">Green</option><option value="blue">Blue</option>
  </select>
  <input id="hidden" name="hidden" type="hidden" value="h">
  <input id="disabled" name="disabled" disabled>
  <button id="go" type="submit">Go</button>
</form>
<div id="editable" contenteditable="true"></div>
<a id="link" href="/html?title=Linked">link</a>
<button id="invisible" type="button" style="display:none">invisible</button>
<button id="counter" type="button"
        onclick="this.dataset.n = (+this.dataset.n||0)+1; this.textContent = this.dataset.n">0</button>
<button id="js-nav" type="button" onclick="location.href = '/html?title=Clicked'">navigate</button>
<span id="result"></span>
</main>
<button id="covered" type="button">covered</button>
<div id="overlay"></div>
""",
)


@dataclass
class Reply:
    """What an endpoint answers: status, headers in order, body."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


RESET = object()  # endpoint result: close the connection with a TCP reset
Result = Any  # Reply | RESET


def _script_literal(value: str) -> str:
    return json.dumps(value).replace("</", "<\\/")


class _Request:
    """One parsed request as the endpoints see it."""

    def __init__(self, method: str, target: str, headers: list[list[str]], body: bytes) -> None:
        parts = urlsplit(target)
        self.method, self.target, self.headers, self.body = method, target, headers, body
        self.path, self.query = parts.path, parts.query
        self.args = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}

    def arg(self, name: str, default: str) -> str:
        return self.args.get(name, default)

    def number(self, name: str, default: float, low: float, high: float) -> float:
        try:
            value = float(self.args.get(name, default))
        except ValueError:
            value = default
        return max(low, min(high, value))


def _html(title: str = "Test page", **kw: str) -> Reply:
    return Reply(200, [("Content-Type", "text/html; charset=utf-8")], html_page(title, **kw))


def _json(data: Any, status: int = 200) -> Reply:
    return Reply(status, [("Content-Type", "application/json")], json.dumps(data).encode())


def _text(text: str, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(status, [*(headers or []), ("Content-Type", "text/plain; charset=utf-8")], text.encode())


class Site(LoopbackServer):
    """The threaded test site; see the module docstring for its endpoints."""

    kind = "site"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._counts: Counter[str] = Counter()

    # addresses -----------------------------------------------------------------------------
    def url(self, path: str = "/", host: str | None = None) -> str:
        """``http://HOST:PORT/path``; ``host`` swaps in another name for the same address."""
        return f"http://{host or self.host}:{self.port}/{path.lstrip('/')}"

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    # logs ----------------------------------------------------------------------------------
    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def requests_to(self, path: str) -> list[dict[str, Any]]:
        """Logged requests whose path (without query) equals ``path``."""
        return [r for r in self.requests if r["path"] == path]

    def count(self, key: str) -> int:
        """How many requests carried ``key=<key>`` (what ``/counter`` answers)."""
        with self._lock:
            return self._counts[key]

    def clear(self) -> None:
        """Forget logged requests and key counters."""
        with self._lock:
            self._log.clear()
            self._counts.clear()

    # request handling ----------------------------------------------------------------------
    def _record(self, req: _Request) -> int:
        """Log the request; bump and return its key counter (0 without a key)."""
        entry = {
            "method": req.method, "path": req.path, "query": req.query, "target": req.target,
            "headers": [list(h) for h in req.headers], "body": req.body,
        }
        with self._lock:
            self._log.append(entry)
            key = req.args.get("key")
            if key is None or req.path == "/counter":
                return 0
            self._counts[key] += 1
            return self._counts[key]

    def _respond(self, req: _Request) -> Result:
        seen = self._record(req)
        if req.path in EXACT:
            return EXACT[req.path](self, req, seen)
        for prefix, endpoint in PREFIXED:
            if req.path.startswith(prefix):
                return endpoint(self, req, req.path[len(prefix):])
        return _text("not found\n", 404)

    def _wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` unless the site stops first; True if it stopped."""
        return self._stopping.wait(seconds)


# endpoints ---------------------------------------------------------------------------------
def _cookies_set(site: Site, req: _Request, seen: int) -> Reply:
    if "name" in req.args:
        attrs = req.arg("attrs", "Path=/")
        line = f"{req.args['name']}={req.arg('value', '')}" + (f"; {attrs}" if attrs else "")
        lines = [line]
    else:
        lines = COOKIES_SET
    reply = _html("Cookies set")
    reply.headers[:0] = [("Set-Cookie", line) for line in lines]
    return reply


def _cookies_echo(site: Site, req: _Request, seen: int) -> Reply:
    values = [v for n, v in req.headers if n.lower() == "cookie"]
    raw = "; ".join(values) if values else None
    cookies: dict[str, str] = {}
    for part in (raw or "").split(";"):
        name, eq, value = part.strip().partition("=")
        if name or eq:
            cookies[name] = value
    return _json({"raw": raw, "cookies": cookies})


def _slow(site: Site, req: _Request, seen: int) -> Result:
    seconds = req.number("seconds", 1.0, 0.0, MAX_SLOW_SECONDS)
    if site._wait(seconds):
        return RESET
    return _html("Slow page")


def _hang(site: Site, req: _Request, seen: int) -> Result:
    site._wait(HANG_BOUND_SECONDS)
    return RESET


def _flaky(site: Site, req: _Request, seen: int) -> Result:
    fail = int(req.number("fail", 1, 0, 1000))
    return RESET if seen <= fail else _html("Flaky page")


def _counter(site: Site, req: _Request, seen: int) -> Reply:
    key = req.arg("key", "")
    return _json({"key": key, "count": site.count(key)})


def _meta_refresh(site: Site, req: _Request, seen: int) -> Reply:
    content = f"{req.arg('delay', '0')}; url={req.arg('to', '/html')}"
    return _html("Meta refresh", head=f'<meta http-equiv="refresh" content="{html.escape(content)}">')


def _js_redirect(site: Site, req: _Request, seen: int) -> Reply:
    script = f"<script>location.href = {_script_literal(req.arg('to', '/html'))};</script>"
    return _html("JS redirect", head=script)


def _js_replace(site: Site, req: _Request, seen: int) -> Reply:
    target = _script_literal(req.arg("to", "/html"))
    script = (
        "<script>window.addEventListener('load', function () {"
        f" setTimeout(function () {{ location.replace({target}); }}, 0); }});</script>"
    )
    return _html("JS replace", head=script)


def _js_disguised(site: Site, req: _Request, seen: int) -> Reply:
    target = _script_literal(req.arg("to", "/html"))
    script = (
        "<script>(function () { const later = window.setTimeout;"
        " window.setTimeout = function () { return 0; };"
        " Document.prototype.querySelector = function () { return null; };"
        " Object.defineProperty(Document.prototype, 'scripts', {get: function () { return []; }});"
        f" window.addEventListener('load', function () {{ later(function () {{ location.replace({target}); }}, 100); }});"
        " })();</script>"
    )
    return _html("JS disguised", head=script)


RESOURCE_PATHS: dict[str, str] = {
    "image": "/asset/pic.png",
    "stylesheet": "/asset/style.css",
    "script": "/asset/app.js",
    "font": "/asset/font.woff2",
    "media": "/asset/sound.wav",
    "fetch": "/asset/data.json",
}
ASSET_TYPES = {
    "png": "image/png", "css": "text/css", "js": "text/javascript", "woff2": "font/woff2",
    "wav": "audio/wav", "json": "application/json", "html": "text/html; charset=utf-8",
}


def _resources(site: Site, req: _Request, seen: int) -> Reply:
    folder = "/free/" if req.arg("dir", "") == "free" else "/asset/"
    paths = {kind: path.replace("/asset/", folder) for kind, path in RESOURCE_PATHS.items()}
    head = (
        f'<link rel="stylesheet" href="{paths["stylesheet"]}">'
        f'<style>@font-face {{ font-family: probe; src: url("{paths["font"]}"); }}'
        " body { font-family: probe, sans-serif; }</style>"
        f'<script src="{paths["script"]}"></script>'
    )
    if "refresh" in req.args:
        head += f'<meta http-equiv="refresh" content="0; url={html.escape(req.arg("refresh", "/html"))}">'
    body = (
        f'<img src="{paths["image"]}" alt="probe">'
        f'<audio src="{paths["media"]}" preload="auto"></audio>'
        f'<script>fetch("{paths["fetch"]}").catch(function () {{}});</script>'
    )
    if req.arg("frame", "") == "1":
        body += '<iframe src="/asset/frame.html"></iframe>'
    return _html("Resources", head=head, body=body)


def _asset(site: Site, req: _Request, rest: str) -> Reply:
    extension = rest.rsplit(".", 1)[-1]
    if rest == "frame.html":
        return Reply(200, [("Content-Type", ASSET_TYPES["html"])], html_page("Frame", body='<img src="/asset/in-frame.png">'))
    if extension == "png":
        return Reply(200, [("Content-Type", "image/png")], PNG_BYTES)
    body = {"css": b"p { color: red; }", "js": b"window.probe = 1;", "json": b"{}"}.get(extension, b"\0" * 64)
    return Reply(200, [("Content-Type", ASSET_TYPES.get(extension, "application/octet-stream"))], body)


def _retry(site: Site, req: _Request, seen: int) -> Reply:
    fail = int(req.number("fail", 1, 0, 1000))
    if seen > fail:
        return _html("Retried page")
    status = int(req.number("status", 503, 400, 599))
    headers = [("Retry-After", req.arg("after", ""))] if "after" in req.args else []
    return _text(f"status {status}\n", status, headers)


def _echo(site: Site, req: _Request, rest: str = "") -> Reply:
    return _json({
        "method": req.method, "path": req.path, "query": req.query,
        "headers": req.headers, "body_base64": base64.b64encode(req.body).decode(),
    })


def _redirect(site: Site, req: _Request, rest: str) -> Reply:
    if not rest.isdigit() or int(rest) not in REDIRECT_CODES:
        return _text(f"redirect code must be one of {REDIRECT_CODES}\n", 400)
    to = req.arg("to", "/html")
    return _text(f"redirecting to {to}\n", int(rest), [("Location", to), ("Set-Cookie", f"hop{rest}=1; Path=/")])


def _chain(site: Site, req: _Request, rest: str) -> Reply:
    if not rest.isdigit() or int(rest) > MAX_CHAIN:
        return _text(f"chain length must be 0-{MAX_CHAIN}\n", 400)
    n = int(rest)
    cookie = ("Set-Cookie", f"chain{n}=v{n}; Path=/")
    if n == 0:
        reply = _html("Chain end")
        reply.headers.insert(0, cookie)
        return reply
    return _text(f"chain {n}\n", 302, [("Location", f"/chain/{n - 1}"), cookie])


def _status(site: Site, req: _Request, rest: str) -> Reply:
    if not rest.isdigit() or not 200 <= int(rest) <= 599:
        return _text("status must be 200-599\n", 400)
    return _text(f"status {rest}\n", int(rest))


def _file_page(site: Site, req: _Request, rest: str) -> Reply:
    from tests.support.file_pages import PAGES  # it builds its pages with html_page, from here

    page = PAGES.get(rest)
    return Reply(200, [("Content-Type", "text/html; charset=utf-8")], page) if page else _text("not found\n", 404)


def _action_page(site: Site, req: _Request, rest: str) -> Reply:
    from tests.support.action_pages import respond  # it builds its pages with html_page, from here

    answer = respond(rest, req.method, req.args, req.headers, req.body)
    if answer is None:
        return _text("not found\n", 404)
    status, headers, body = answer
    return Reply(status, list(headers), body)


def _fixed(reply: Reply) -> Callable[[Site, _Request, int], Reply]:
    return lambda site, req, seen: Reply(reply.status, list(reply.headers), reply.body)


EXACT: dict[str, Callable[[Site, _Request, int], Result]] = {
    "/html": lambda site, req, seen: _html(req.arg("title", "Test page")),
    "/loop": _fixed(_text("loop\n", 302, [("Location", "/loop")])),
    "/cookies/set": _cookies_set,
    "/cookies/echo": _cookies_echo,
    "/echo": lambda site, req, seen: _echo(site, req),
    "/headers/repeated": _fixed(_text("repeated headers\n", 200, [
        ("X-Multi", "one"), ("X-Multi", "two"), ("X-Case", "MiXeD")])),
    "/binary": _fixed(Reply(200, [("Content-Type", "application/octet-stream")], BINARY_BYTES)),
    "/image.png": _fixed(Reply(200, [("Content-Type", "image/png")], PNG_BYTES)),
    "/json": _fixed(_json({"hello": "world", "n": 1})),
    "/big": lambda site, req, seen: Reply(
        200, [("Content-Type", "text/plain")], big_body(int(req.number("bytes", 1024, 0, MAX_BIG_BYTES)))),
    "/gzip": _fixed(Reply(200, [("Content-Type", "text/html; charset=utf-8"), ("Content-Encoding", "gzip")],
                          gzip.compress(GZIP_HTML, mtime=0))),
    "/slow": _slow,
    "/hang": _hang,
    "/meta-refresh": _meta_refresh,
    "/js-disguised": _js_disguised,
    "/js-redirect": _js_redirect,
    "/js-replace": _js_replace,
    "/form": _fixed(Reply(200, [("Content-Type", "text/html; charset=utf-8")], FORM_HTML)),
    "/reset": lambda site, req, seen: RESET,
    "/flaky": _flaky,
    "/counter": _counter,
    "/retry": _retry,
    "/resources": _resources,
}

PREFIXED: list[tuple[str, Callable[[Site, _Request, str], Result]]] = [
    ("/echo/", _echo),
    ("/redirect/", _redirect),
    ("/chain/", _chain),
    ("/status/", _status),
    ("/asset/", _asset),
    ("/free/", _asset),
    ("/files/", _file_page),
    ("/actions/", _action_page),
]


class _SiteHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "inndx-test-site"
    timeout = 120  # idle keep-alive connections end on their own eventually
    disable_nagle_algorithm = True  # headers and body go in separate writes
    server: TrackingServer

    def log_message(self, format: str, *args: Any) -> None:  # no noise
        pass

    def _dispatch(self) -> None:
        body = read_body(self)
        req = _Request(self.command, self.path, [[n, v] for n, v in self.headers.items()], body)
        result = self.server.owner._respond(req)
        if result is RESET:
            self.close_connection = True
            self.server.mark_reset(self.connection)
            return
        self._send(result)

    def _send(self, reply: Reply) -> None:
        self.send_response_only(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-store")
        if reply.status not in (204, 304):
            self.send_header("Content-Length", str(len(reply.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        elif self.request_version == "HTTP/1.0":
            self.send_header("Connection", "keep-alive")
        self.end_headers()
        if self.command != "HEAD" and reply.status not in (204, 304):
            self.wfile.write(reply.body)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = do_TRACE = _dispatch


Site.handler = _SiteHandler
