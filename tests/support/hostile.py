"""A hostile HTTP server on a loopback port: it answers with whatever bytes a test gives it.

``HostileServer()`` (context manager, or ``start()`` / ``stop()``) listens on 127.0.0.1. Each
connection's request head is read (bounded), its path looked up, and the registered answer
written raw, byte for byte; then the connection is closed. Nothing is checked or fixed up:
malformed status lines, repeated or broken headers, lying lengths are sent as given.

- ``add(answer, name=None) -> url``: register an answer under a fresh path (or ``/<name>``).
  ``answer`` is ``bytes`` (sent, then close) or a callable ``answer(sock, stopping)`` that
  writes what it likes (``stopping`` is a ``threading.Event`` set by ``stop()``).
- ``url(name)``: the URL of a registered answer.
- ``requests``: the paths requested so far, in order.
- Built-in behaviours for callables: ``never_answers`` (reads, then holds the connection open
  without a byte until the server stops), ``endless_body(head)`` (the head, then body bytes
  until the client goes away), ``truncated(head, body, sent)`` (``sent`` bytes of the body,
  then close), ``drip(head)`` (then one byte every half second, forever).
- ``response(status_line, headers, body)`` builds raw bytes from parts (``headers`` a list of
  raw lines, no fix-ups) and ``gzip_bomb(size, layers)`` a body of ``size`` zero bytes,
  gzipped ``layers`` times.

``stop()`` closes every connection and joins every thread (bounded, idempotent).
"""

from __future__ import annotations

import gzip
import itertools
import socket
import threading
import zlib
from collections.abc import Callable, Iterable

from tests.support.ports import scaled

Answer = bytes | Callable[[socket.socket, threading.Event], None]
MAX_HEAD = 64 * 1024


def read_head(conn: socket.socket, chunk: int = 4096) -> bytes | None:
    """What a client sent up to the end of its request's head (and maybe past it), at most about
    ``MAX_HEAD``; None when it went away first."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < MAX_HEAD:
        piece = conn.recv(chunk)
        if not piece:
            return None
        data += piece
    return data


def response(status_line: str | bytes, headers: Iterable[str | bytes] = (), body: bytes = b"") -> bytes:
    """Raw response bytes: the status line, each header line as given, a blank line, the body."""

    def raw(part: str | bytes) -> bytes:
        return part if isinstance(part, bytes) else part.encode("latin-1")

    head = b"".join(raw(line) + b"\r\n" for line in [status_line, *headers])
    return head + b"\r\n" + body


def gzip_bomb(size: int, layers: int = 1) -> bytes:
    """``size`` zero bytes gzipped ``layers`` times (streamed: never ``size`` bytes in memory)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    parts = []
    left = size
    while left > 0:
        parts.append(compressor.compress(block[: min(left, len(block))]))
        left -= len(block)
    data = b"".join(parts) + compressor.flush()
    for _ in range(layers - 1):
        data = gzip.compress(data, 9)
    return data


def never_answers(sock: socket.socket, stopping: threading.Event) -> None:
    stopping.wait(scaled(120))


def endless_body(head: bytes, piece: bytes = b"x" * 65536, pause: float = 0.0) -> Answer:
    """The head, then ``piece`` over and over (``pause`` seconds apart) until the client leaves
    or the server stops."""

    def answer(sock: socket.socket, stopping: threading.Event) -> None:
        sock.sendall(head)
        while not stopping.is_set():
            sock.sendall(piece)
            if pause:
                stopping.wait(pause)

    return answer


def drip(head: bytes, byte: bytes = b"a", pause: float = 0.5) -> Answer:
    """``head`` (a status line and the start of a header), then one byte every ``pause`` seconds,
    forever: every read succeeds, the answer never ends."""

    def answer(sock: socket.socket, stopping: threading.Event) -> None:
        sock.sendall(head)
        while not stopping.is_set():
            sock.sendall(byte)
            stopping.wait(pause)

    return answer


def truncated(head: bytes, body: bytes, sent: int) -> Answer:
    """The head (announcing all of ``body``), then only ``sent`` bytes of it, then close."""

    def answer(sock: socket.socket, stopping: threading.Event) -> None:
        sock.sendall(head + body[:sent])

    return answer


class HostileServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.requests: list[str] = []
        self.errors: list[BaseException] = []
        self._answers: dict[str, Answer] = {}
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: set[threading.Thread] = set()
        self._conns: set[socket.socket] = set()

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> HostileServer:
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener, self.port = listener, listener.getsockname()[1]
        self._spawn(self._accept_loop, "hostile-accept")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._listener is None:
            return
        self._stopping.set()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(scaled(timeout))
        self._listener.close()
        self._listener = None

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # answers -------------------------------------------------------------------------------
    def add(self, answer: Answer, name: str | None = None) -> str:
        name = name or f"a{next(self._counter)}"
        with self._lock:
            self._answers["/" + name] = answer
        return self.url(name)

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.port}/{name}"

    # serving -------------------------------------------------------------------------------
    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=self._run, args=(target, *args), name=name, daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _run(self, target: Callable[..., None], *args: object) -> None:
        try:
            target(*args)
        except OSError:
            pass  # the client went away: that is its right
        except BaseException as exc:  # noqa: BLE001 - reported to the test through .errors
            self.errors.append(exc)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            self._spawn(self._serve, "hostile-conn", conn)

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(scaled(30))
            path = self._read(conn)
            if path is None:
                return
            with self._lock:
                self.requests.append(path)
                answer = self._answers.get(path)
            if answer is None:
                conn.sendall(response("HTTP/1.1 404 Not Found", ["Content-Length: 0", "Connection: close"]))
            elif isinstance(answer, bytes):
                conn.sendall(answer)
            else:
                answer(conn, self._stopping)
        finally:
            with self._lock:
                self._conns.discard(conn)
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _read(self, conn: socket.socket) -> str | None:
        """Read one request's head: its path (no query), or None when the client went away."""
        head = read_head(conn)
        if head is None:
            return None
        target = head.split(b"\r\n", 1)[0].split(b" ")
        return target[1].decode("latin-1").split("?", 1)[0] if len(target) > 1 else ""
