"""Servers for the egress tests: a page that attacks the network from inside the browser, the
"secret" it attacks, and a UDP port that records what a browser sends it.

``AttackSite()``: a loopback HTTP server (the allowed site). Endpoints:
- ``/page?targets=URL,URL..``: a page that, on load, reaches every target every way a page can
  without navigating itself (iframe, img, script, stylesheet, prefetch/preconnect/dns-prefetch
  links, fetch, sync XHR, sendBeacon, WebSocket, EventSource). ``window.__done`` becomes a promise
  that settles when every attempt has ended (or after 8 s).
- ``/nav?to=URL``: a script sets the location to URL while the page loads.
- ``/meta?to=URL``: a meta refresh to URL. ``/form?to=URL``: a form that POSTs itself to URL.
- ``/redirect?to=URL``: a 302 to URL. ``/auth``: 401 with ``WWW-Authenticate: Basic``.
- ``/hit/...``: 200 ``hit`` (a control target: proves the attack vectors are live).
``.requests``: ``[{"method", "path", "headers"}]`` of everything it answered.

``Secret(port)``: records every TCP connection accepted on 127.0.0.1:port and [::1]:port (``.accepted``)
and answers each with a tiny HTTP page; it should see nothing. ``UdpRecorder()``: counts datagrams.
"""

from __future__ import annotations

import html
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback_server import LoopbackServer

ATTACK_SCRIPT = """
const targets = %s;
const attempts = [];
function element(tag, attrs) {
  const el = document.createElement(tag);
  attempts.push(new Promise(done => { el.onload = done; el.onerror = done; }));
  Object.assign(el, attrs);
  document.body.appendChild(el);
}
function link(rel, href) { const l = document.createElement("link"); l.rel = rel; l.href = href; document.head.appendChild(l); }
for (const t of targets) {
  const ws = t.replace(/^http/, "ws");
  element("iframe", {src: t + "frame"});
  element("img", {src: t + "img"});
  element("script", {src: t + "script"});
  const css = document.createElement("link"); css.rel = "stylesheet";
  attempts.push(new Promise(done => { css.onload = done; css.onerror = done; }));
  css.href = t + "css"; document.head.appendChild(css);
  link("prefetch", t + "prefetch"); link("preconnect", t); link("dns-prefetch", t);
  attempts.push(fetch(t + "fetch", {mode: "no-cors"}).catch(e => e));
  try { const x = new XMLHttpRequest(); x.open("GET", t + "xhr", false); x.send(); } catch (e) {}
  try { navigator.sendBeacon(t + "beacon", "b"); } catch (e) {}
  attempts.push(new Promise(done => {
    try { const s = new WebSocket(ws + "ws"); s.onerror = done; s.onclose = done; s.onopen = done; }
    catch (e) { done(); }
  }));
  attempts.push(new Promise(done => {
    try { const s = new EventSource(t + "events"); s.onerror = () => { s.close(); done(); }; s.onopen = done; }
    catch (e) { done(); }
  }));
}
window.__done = Promise.race([Promise.all(attempts), new Promise(r => setTimeout(r, 8000))]).then(() => "done");
"""


class AttackSite(LoopbackServer):
    kind = "attack-site"

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner._record(self)
                parts = urlsplit(self.path)
                query = {key: values[0] for key, values in parse_qs(parts.query).items()}
                to = query.get("to", "")
                if parts.path == "/page":
                    targets = [t for t in query.get("targets", "").split(",") if t]
                    script = ATTACK_SCRIPT % json.dumps(targets)
                    body = f"<!doctype html><html><head></head><body><script>{script}</script></body></html>"
                    self._send(200, body, "text/html")
                elif parts.path == "/nav":
                    self._send(200, f"<!doctype html><script>location.href = {json.dumps(to)}</script>", "text/html")
                elif parts.path == "/meta":
                    self._send(200, f'<!doctype html><meta http-equiv="refresh" content="0; url={html.escape(to)}">', "text/html")
                elif parts.path == "/form":
                    self._send(200, f'<!doctype html><form method="post" action="{html.escape(to)}">'
                               '<input name="a" value="b"></form><script>document.forms[0].submit()</script>', "text/html")
                elif parts.path == "/redirect":
                    self._send(302, "moved\n", "text/plain", [("Location", to)])
                elif parts.path == "/auth":
                    self._send(401, "who are you?\n", "text/plain", [("WWW-Authenticate", 'Basic realm="attack"')])
                elif parts.path.startswith("/hit"):
                    self._send(200, "hit\n", "text/plain")
                else:
                    self._send(404, "not found\n", "text/plain")

            do_POST = do_GET

            def _send(self, status: int, body: str, kind: str, headers: list[tuple[str, str]] = ()) -> None:
                data = body.encode()
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(status)
                for name, value in [("Content-Type", kind), *headers, ("Cache-Control", "no-store")]:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.handler = Handler

    def _record(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self._log.append({"method": handler.command, "path": handler.path, "headers": list(handler.headers.items())})

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"


class Secret:
    """Counts every TCP connection to 127.0.0.1:port and [::1]:port."""

    def __init__(self) -> None:
        self.accepted: list[tuple[str, str]] = []  # (listener, first bytes)
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        for _ in range(20):  # a port free on both loopbacks
            v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            v4.bind(("127.0.0.1", 0))
            self.port = v4.getsockname()[1]
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            try:
                v6.bind(("::1", self.port))
            except OSError:
                v4.close()
                v6.close()
                continue
            self._sockets = [v4, v6]
            break
        else:
            raise RuntimeError("no port free on both 127.0.0.1 and ::1")

    def __enter__(self) -> Secret:
        for sock in self._sockets:
            sock.listen(64)
            sock.settimeout(0.1)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True, name="secret")
            thread.start()
            self._threads.append(thread)
        return self

    def _serve(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(1)
                try:
                    first = conn.recv(200).decode("latin-1")
                except OSError:
                    first = ""
                self.accepted.append((str(sock.getsockname()[0]), first.split("\r\n", 1)[0]))
                try:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nsecret\n")
                except OSError:
                    pass

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        for sock in self._sockets:
            sock.close()


class UdpRecorder:
    """Counts datagrams sent to 127.0.0.1:port (a STUN server that never answers)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.datagrams = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="udp-recorder")

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                self.sock.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            self.datagrams += 1

    def __enter__(self) -> UdpRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
