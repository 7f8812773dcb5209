"""A real forward HTTP proxy on a loopback port, for the end-to-end tests.

``Proxy(username=None, password=None)`` binds a free port on 127.0.0.1; context manager or
``start()`` / ``stop()``. It forwards absolute-URI requests (``GET http://host/path``, any method)
with ``http.client`` and tunnels ``CONNECT host:port``. With credentials, a request without the
right ``Proxy-Authorization: Basic ...`` gets ``407`` with ``Proxy-Authenticate: Basic
realm="inndx-test"`` and is logged in ``.rejected``.

- ``.url``: ``http://127.0.0.1:PORT``; ``.url_with_credentials``: ``http://user:pass@127.0.0.1:PORT``.
- ``.requests``: forwarded requests, ``{"method", "url"}`` (``url`` is ``host:port`` for CONNECT).
- ``.rejected``: requests refused with 407, same shape. ``.clear()`` empties both.

Hop-by-hop headers (and ``Proxy-Authorization``) are not forwarded; the upstream body is read
whole and re-sent with ``Content-Length`` (upstream ``Content-Encoding`` is passed through). An
upstream failure answers 502.
"""

from __future__ import annotations

import base64
import http.client
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.support.loopback_server import LoopbackServer, TrackingServer, read_body

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
}
UPSTREAM_TIMEOUT = 60.0
TUNNEL_IDLE_LIMIT = 120.0


class Proxy(LoopbackServer):
    """The threaded forward proxy; see the module docstring."""

    kind = "proxy"

    def __init__(self, username: str | None = None, password: str | None = None, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.username, self.password = username, password
        self._lock = threading.Lock()
        self._forwarded: list[dict[str, str]] = []
        self._rejected: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url_with_credentials(self) -> str:
        assert self.username is not None, "proxy has no credentials"
        return f"http://{self.username}:{self.password}@{self.host}:{self.port}"

    @property
    def requests(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._forwarded)

    @property
    def rejected(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._rejected)

    def clear(self) -> None:
        with self._lock:
            self._forwarded.clear()
            self._rejected.clear()

    def _authorized(self, header: str | None) -> bool:
        if self.username is None:
            return True
        expected = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
        scheme, _, token = (header or "").partition(" ")
        return scheme.lower() == "basic" and token.strip() == expected

    def _log(self, ok: bool, method: str, url: str) -> None:
        with self._lock:
            (self._forwarded if ok else self._rejected).append({"method": method, "url": url})


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    rbufsize = 0  # unbuffered, so nothing is stranded in a buffer when a CONNECT tunnel starts
    timeout = 120
    disable_nagle_algorithm = True
    server: TrackingServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def proxy(self) -> Proxy:
        return self.server.owner

    def _reply(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response_only(status)
        for name, value in headers or []:
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _check_auth(self, url: str) -> bool:
        if self.proxy._authorized(self.headers.get("Proxy-Authorization")):
            return True
        self.proxy._log(False, self.command, url)
        self._reply(407, b"proxy authentication required\n",
                    [("Proxy-Authenticate", 'Basic realm="inndx-test"')])
        return False

    def _forward(self) -> None:
        body = read_body(self)
        url = self.path
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            self._reply(400, b"this proxy forwards absolute http:// URIs and CONNECT only\n")
            return
        if not self._check_auth(url):
            return
        self.proxy._log(True, self.command, url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = [(n, v) for n, v in self.headers.items() if n.lower() not in HOP_BY_HOP]
        if "Host" not in self.headers:
            headers.insert(0, ("Host", parts.netloc.rpartition("@")[2]))
        if body or "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
            headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=UPSTREAM_TIMEOUT)
        try:
            conn.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = resp.read()
            status, resp_headers = resp.status, resp.getheaders()
        except (OSError, http.client.HTTPException) as exc:
            self._reply(502, f"upstream failed: {exc!r}\n".encode())
            return
        finally:
            conn.close()
        self.send_response_only(status)
        for name, value in resp_headers:
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        no_body = self.command == "HEAD" or status in (204, 304)
        if status not in (204, 304):
            length = resp_headers_length(resp_headers) if self.command == "HEAD" else len(data)
            if length is not None:
                self.send_header("Content-Length", str(length))
        self.end_headers()
        if not no_body:
            self.wfile.write(data)

    def do_CONNECT(self) -> None:
        url = self.path
        if not self._check_auth(url):
            return
        host, _, port = url.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=UPSTREAM_TIMEOUT)
        except (OSError, ValueError) as exc:
            self.proxy._log(True, "CONNECT", url)
            self._reply(502, f"cannot connect: {exc!r}\n".encode())
            return
        self.proxy._log(True, "CONNECT", url)
        self.close_connection = True
        with upstream:
            self.wfile.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            self._pump(self.connection, upstream)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways until either side closes, the proxy stops, or the tunnel idles out."""
        idle_deadline = time.monotonic() + TUNNEL_IDLE_LIMIT
        peers = {client: upstream, upstream: client}
        while not self.proxy._stopping.is_set() and time.monotonic() < idle_deadline:
            readable, _, _ = select.select(list(peers), [], [], 0.2)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                try:
                    peers[sock].sendall(data)
                except OSError:
                    return
                idle_deadline = time.monotonic() + TUNNEL_IDLE_LIMIT

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = do_TRACE = _forward


def resp_headers_length(headers: list[tuple[str, str]]) -> int | None:
    """The upstream Content-Length of a HEAD answer, if it gave one."""
    for name, value in headers:
        if name.lower() == "content-length" and value.strip().isdigit():
            return int(value)
    return None


Proxy.handler = _ProxyHandler
