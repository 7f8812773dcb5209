"""A loopback server that records the raw bytes of every request it gets: what a client really
put on the wire, header lines as sent (order, case, repeats, bytes), and the body.

``WireServer()`` is a ``HostileServer`` (the same ``add(answer, name)``, context manager and
bounded ``stop()``) that reads each request whole (the head, then a ``Content-Length`` body)
before answering, and keeps it in ``received``: ``Wire(raw, method, target, path, headers,
body)``, ``headers`` the ``(name, value)`` lines as bytes decoded as Latin-1 (lossless).
``requests_to(path)`` is the requests for one path (no query), oldest first. An answer is raw
bytes (``hostile.response(...)``) or ``answer(sock, stopping)``; every connection is closed
after its answer.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from tests.support.hostile import HostileServer, read_head, response

MAX_BODY = 4 * 1024 * 1024


@dataclass(frozen=True)
class Wire:
    raw: bytes  # the request as received, head and body
    method: str
    target: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), one per line sent."""
        return [value for key, value in self.headers if key.lower() == name.lower()]


def parse_request(raw_head: bytes, body: bytes) -> Wire:
    lines = raw_head.split(b"\r\n")
    method, _, rest = lines[0].decode("latin-1").partition(" ")
    target = rest.rpartition(" ")[0] or rest
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip(" \t")))
    return Wire(raw_head + body, method, target, target.split("?", 1)[0], headers, body)


class WireServer(HostileServer):
    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.received: list[Wire] = []

    def requests_to(self, path: str) -> list[Wire]:
        with self._lock:
            return [wire for wire in self.received if wire.path == path]

    def _read(self, conn: socket.socket) -> str | None:
        """The whole request (head, then a ``Content-Length`` body), kept in ``received``."""
        data = read_head(conn, 65536)
        if data is None:
            return None
        head, _, body = data.partition(b"\r\n\r\n")
        wire = parse_request(head, b"")
        length = next((v for k, v in wire.headers if k.lower() == "content-length"), "0")
        wanted = min(int(length) if length.isdigit() else 0, MAX_BODY)
        while len(body) < wanted:
            piece = conn.recv(65536)
            if not piece:
                break
            body += piece
        wire = parse_request(head + b"\r\n\r\n", body[:wanted])
        with self._lock:
            self.received.append(wire)
        return wire.path


def page(body: bytes = b"<!doctype html><title>wire</title><p>wire page</p>", headers: list[str] | None = None,
         status: str = "HTTP/1.1 200 OK") -> bytes:
    """A complete answer that closes its connection."""
    lines = [*(headers or ["Content-Type: text/html; charset=utf-8"]), f"Content-Length: {len(body)}",
             "Connection: close", "Cache-Control: no-store"]
    return response(status, lines, body)


def redirect(location: str, code: int = 302, extra: list[str] | None = None) -> bytes:
    reason = {301: "Moved Permanently", 302: "Found", 303: "See Other", 307: "Temporary Redirect",
              308: "Permanent Redirect"}[code]
    return response(f"HTTP/1.1 {code} {reason}", [f"Location: {location}", *(extra or []), "Content-Length: 0",
                                                   "Connection: close", "Cache-Control: no-store"])

