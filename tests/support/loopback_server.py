"""Loopback HTTP servers for the tests: the shared plumbing of the test site and the proxy.

``LoopbackServer`` is the lifecycle both share: bind a free port on ``host``, serve from a
daemon thread, and on ``stop()`` release waiting handlers, close every open connection and join
every thread (idempotent). ``TrackingServer`` is the ThreadingHTTPServer underneath that tracks
connections (and can end one with a TCP reset); ``read_body`` reads a request body framed by
Content-Length or chunked encoding.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.ports import scaled


class LoopbackServer:
    """Start/stop for a TrackingServer owned by this object; subclasses set ``handler``."""

    handler: type[BaseHTTPRequestHandler]
    kind = "server"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._requested_port = port
        self.errors: list[BaseException] = []
        self._stopping = threading.Event()
        self._server: TrackingServer | None = None
        self._thread: threading.Thread | None = None

    def start(self):
        """Bind, start serving in a daemon thread, return self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = TrackingServer((self.host, self._requested_port), self.handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"{self.kind}-{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, release waiting handlers, close connections, join threads. Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections(scaled(timeout))
        server.server_close()
        if thread is not None:
            thread.join(scaled(10))
        self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, f"{self.kind} not started"
        return int(self._server.server_address[1])


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """Read a request body framed by Content-Length or chunked encoding (shared with the proxy)."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks = []
        while True:
            size = int(handler.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(_read_exact(handler, size))
            handler.rfile.readline(1024)
    length = int(handler.headers.get("Content-Length") or 0)
    return _read_exact(handler, length)


def _read_exact(handler: BaseHTTPRequestHandler, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        piece = handler.rfile.read(n - len(data))
        if not piece:
            raise ConnectionError("client closed the connection mid-body")
        data += piece
    return bytes(data)


class TrackingServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections and handler threads so stop() can end them."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type, owner: Any) -> None:
        self.owner = owner
        self._conn_lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._live: set[threading.Thread] = set()
        self._to_reset: set[socket.socket] = set()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address),
            name=f"{type(self.owner).__name__.lower()}-conn", daemon=True,
        )
        with self._conn_lock:
            self._conns.add(request)
            self._live.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._conns.discard(request)
                self._live.discard(threading.current_thread())

    def mark_reset(self, request: socket.socket) -> None:
        with self._conn_lock:
            self._to_reset.add(request)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            reset = request in self._to_reset
            self._to_reset.discard(request)
        if reset:  # SO_LINGER 0 + close = RST, no FIN first
            try:
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            request.close()
        else:
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, OSError):  # OSError: the client went away
            self.owner.errors.append(exc)

    def close_connections(self, timeout: float) -> None:
        with self._conn_lock:
            conns, threads = list(self._conns), list(self._live)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(timeout)
