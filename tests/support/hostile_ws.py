"""A hostile WebSocket server on a loopback port, for testing the ``inndx`` client.

``HostileServer(script)`` accepts one connection, answers the upgrade (or, with ``refuse=(status,
body)``, an HTTP error instead), then plays ``script``: a list of steps, each
``("recv",)`` (read one client frame; it is recorded in ``.received`` as text),
``("text", str)``, ``("binary", bytes)``, ``("close", code)`` (a close frame, then the end) or
``("drop",)`` (end the TCP connection with no close frame). Frames are written by hand here, so
the server can send what a well-behaved one never would.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading

from tests.support.ports import scaled

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _frame(opcode: int, payload: bytes) -> bytes:
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        head += bytes([len(payload)])
    elif len(payload) < 65536:
        head += bytes([126]) + struct.pack("!H", len(payload))
    else:
        head += bytes([127]) + struct.pack("!Q", len(payload))
    return head + payload


def _read_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


def _read_frame(conn: socket.socket) -> tuple[int, bytes]:
    first, second = _read_exact(conn, 2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", _read_exact(conn, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", _read_exact(conn, 8))[0]
    mask = _read_exact(conn, 4) if second & 0x80 else b"\0\0\0\0"
    data = _read_exact(conn, length)
    return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


class HostileServer:
    def __init__(self, script: list[tuple], refuse: tuple[int, bytes] | None = None) -> None:
        self.script, self.refuse = script, refuse
        self.received: list[str] = []
        self.errors: list[BaseException] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(scaled(10))
        self.port = self._listener.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/v1/sessions/ws"
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(scaled(10))
        self._listener.close()
        assert not self._thread.is_alive(), "the hostile server did not finish its script"

    def _run(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError as exc:
            self.errors.append(exc)
            return
        with conn:
            conn.settimeout(scaled(10))
            try:
                self._play(conn)
            except (OSError, ConnectionError) as exc:
                self.errors.append(exc)

    def _play(self, conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        if self.refuse is not None:
            status, body = self.refuse
            conn.sendall(f"HTTP/1.1 {status} Nope\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            return
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest()).decode()
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        for step in self.script:
            kind = step[0]
            if kind == "recv":
                opcode, data = _read_frame(conn)
                self.received.append(data.decode("utf-8", "replace") if opcode == 1 else f"<opcode {opcode}>")
            elif kind == "text":
                conn.sendall(_frame(0x1, step[1].encode()))
            elif kind == "binary":
                conn.sendall(_frame(0x2, step[1]))
            elif kind == "close":
                conn.sendall(_frame(0x8, struct.pack("!H", step[1])))
                return
            elif kind == "drop":
                return
