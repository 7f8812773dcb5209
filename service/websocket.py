"""The WebSocket connection as the service needs it, on top of flask-sock and simple-websocket.

Every reach into simple-websocket's private attributes lives here (``tests/unit/test_websocket.py``
fails loudly when the pinned version changes). flask-sock builds ``simple_websocket.Server``
itself; its ``thread_class`` option is our way in: ``ReaderThread`` is built after the handshake
and before the reader thread starts, and installs, on that one connection:

- **our incoming-message handler**, which counts every message's size in bytes as it arrives
  and drops the rest of a message once it passes the limit: the session gets an
  ``OversizedFrame`` in that frame's turn (answered 413), never the frame's bytes. The client's
  permessage-deflate offer is refused before the upgrade (``refuse_compression``), so the bytes
  counted are the bytes that travelled: nothing inflates.
- **a guarded socket**: every write of ours has a deadline (``Outbox``), and the writes
  simple-websocket's reader thread makes by itself (pings, pongs, the close reply) never wait
  behind a stuck write: they are queued and flushed by whoever holds the write lock, so a
  client that stops reading can wedge nothing but its own session, for at most the deadline.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from simple_websocket import ConnectionClosed
from wsproto.connection import CloseReason
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.utilities import LocalProtocolError

from service import replies
from service.protocol import OversizedFrame

logger = logging.getLogger(__name__)


class WriteTimeout(Exception):
    """A write did not complete before its deadline: the client is not reading."""


def refuse_compression(environ: dict[str, Any]) -> None:
    """Drop the client's extension offer (permessage-deflate) from the upgrade request, so that
    the server accepts none: a small compressed frame can no longer inflate without bound."""
    environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)


def server_options(max_frame_bytes: int, ping_interval: float) -> dict[str, Any]:
    """flask-sock's ``SOCK_SERVER_OPTIONS``: our reader thread, our own message size limit."""

    def thread_class(target: Callable[[], None]) -> ReaderThread:
        return ReaderThread(target, max_frame_bytes)

    return {"ping_interval": ping_interval, "max_message_size": None, "thread_class": thread_class}


def why_gone(ws: Any) -> str:
    """Why simple-websocket's reader ended a connection, for the log: a client that sent no pong
    to the last ping (its reader closes it at the next ping: 1008 'Ping/Pong timeout'), or one
    that went away. A connection lost while a ping awaited its pong reads as a ping timeout too."""
    if ws.ping_interval and not ws.pong_received and ws.close_reason == CloseReason.NO_STATUS_RCVD:
        return f"ping timeout: the client answered no ping within {ws.ping_interval:g}s"
    return "the client went away"


def closed_by_client(ws: Any) -> bool:
    """True when the client sent a close frame (it meant to leave); False for a connection that
    just ended (a reset, no close frame, a missed pong, our write deadline)."""
    return bool(getattr(ws, "client_closed", False))


# ------------------------------------------------------------------------------------ reading


class _Incoming:
    """The message being received: its size so far and, while under the limit, its bytes."""

    __slots__ = ("size", "parts", "text")

    def __init__(self) -> None:
        self.size = 0
        self.parts: list[bytes] = []
        self.text = True


class ReaderThread(threading.Thread):
    """simple-websocket's reader thread, with our handler and socket installed before it runs."""

    def __init__(self, target: Callable[[], None], max_frame_bytes: int):
        ws = target.__self__  # type: ignore[attr-defined]  # the bound Base._thread
        if not isinstance(ws.sock, GuardedSocket):
            ws.sock = GuardedSocket(ws.sock)
        incoming = _Incoming()
        ws._handle_events = lambda: _handle_events(ws, incoming, max_frame_bytes)
        super().__init__(target=target, name="websocket-reader")


def _handle_events(ws: Any, incoming: _Incoming, limit: int) -> bool:
    """Our replacement for ``Base._handle_events`` (called by the reader thread after each
    ``receive_data``): the same answers to close, ping and pong, and messages counted in bytes."""
    keep_going = True
    out = b""
    try:
        for event in ws.ws.events():
            if isinstance(event, CloseConnection):
                out += ws.ws.send(event.response())
                ws.close_reason, ws.close_message = event.code, event.reason
                ws.client_closed = True
                ws.connected = False
                ws.event.set()
                keep_going = False
            elif isinstance(event, Ping):
                out += ws.ws.send(event.response())
            elif isinstance(event, Pong):
                ws.pong_received = True
            elif isinstance(event, (TextMessage, BytesMessage)):
                _take_part(ws, incoming, event, limit)
    except LocalProtocolError:
        ws.event.set()
        keep_going = False
    if out:
        ws.sock.send(out)
    return keep_going


def _take_part(ws: Any, incoming: _Incoming, event: TextMessage | BytesMessage, limit: int) -> None:
    data = event.data.encode("utf-8") if isinstance(event, TextMessage) else bytes(event.data)
    incoming.text = isinstance(event, TextMessage)
    incoming.size += len(data)
    if incoming.size <= limit:
        incoming.parts.append(data)
    else:
        incoming.parts.clear()  # the rest of this message is counted, never kept
    if not event.message_finished:
        return
    if incoming.size > limit:
        item: Any = OversizedFrame(incoming.size)
    else:
        whole = b"".join(incoming.parts)
        item = whole.decode("utf-8") if incoming.text else whole  # wsproto checked the UTF-8
    incoming.size, incoming.parts = 0, []
    ws.input_buffer.append(item)
    ws.event.set()


# ------------------------------------------------------------------------------------ writing


class GuardedSocket:
    """The connection's socket. Writes made under ``lock`` by the outbox (``begin``/``end``)
    have a deadline; any other write (simple-websocket's reader thread: pings, pongs, the close
    reply) is queued and flushed without blocking by whoever holds the lock next."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self.lock = threading.Lock()
        self._control = bytearray()
        self._control_lock = threading.Lock()
        self._writer: int | None = None
        self._deadline = 0.0
        self._timeout = 0.0

    def __getattr__(self, name: str) -> Any:  # recv, fileno, close, shutdown: the socket's own
        return getattr(self._sock, name)

    def begin(self, timeout: float) -> None:
        """The current thread, holding ``lock``, writes now: ``send`` gets ``timeout`` seconds."""
        self._writer = threading.get_ident()
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout

    def end(self) -> None:
        self._writer = None

    def send(self, data: bytes) -> int:
        if self._writer == threading.get_ident():
            with self._control_lock:
                pending, self._control = bytes(self._control), bytearray()
            self._write_all(pending + bytes(data))
        else:
            with self._control_lock:
                self._control += data
            self.drain()
        return len(data)

    def drain(self) -> None:
        """Flush queued control frames if nobody is writing; never blocks."""
        while self._control and self.lock.acquire(blocking=False):
            try:
                progressed = self._flush_control()
            finally:
                self.lock.release()
            if not progressed:
                return

    def _flush_control(self) -> bool:
        with self._control_lock:
            if not self._control:
                return False
            try:
                sent = self._sock.send(self._control, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                self._control.clear()  # the connection is gone; the reader thread will notice
                return False
            del self._control[:sent]
            return sent > 0

    def _write_all(self, data: bytes) -> None:
        """Send all of ``data`` by the deadline. A non-blocking send first: a frame that fits in
        the socket's buffer (nearly every one) costs one system call, and the thread lets go of
        the interpreter lock once, not twice; a poll only when the client is behind."""
        view = memoryview(data)
        fileno = self._sock.fileno()
        if fileno < 0:
            raise OSError("the socket is closed")
        poller = None
        while view:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise WriteTimeout(f"the client did not read a reply within {self._timeout:g}s")
            try:
                view = view[self._sock.send(view, socket.MSG_DONTWAIT):]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            if poller is None:
                poller = select.poll()
                poller.register(fileno, select.POLLOUT)
            poller.poll(max(1, int(remaining * 1000)))


class Outbox:
    """Where every frame of one connection goes: one lock, one deadline per write.

    ``send`` and ``close`` return False once the connection cannot take frames any more (the
    client left, or did not read within ``write_timeout``: then the connection is cut, since a
    half-written frame cannot be taken back, and ``failure`` says why)."""

    def __init__(self, ws: Any, write_timeout: float):
        self._ws = ws
        if not isinstance(ws.sock, GuardedSocket):
            ws.sock = GuardedSocket(ws.sock)
        self._sock: GuardedSocket = ws.sock
        self._timeout = write_timeout
        self.failure: str | None = None

    def send(self, frame: dict[str, Any] | str) -> bool:
        """Write one frame: a dict, or its text already encoded (``replies.encode``)."""
        text = frame if isinstance(frame, str) else replies.encode(frame)
        return self._write(lambda: self._ws.send(text))

    def send_bytes(self, data: bytes) -> bool:
        """One binary message (the live view's frames), under the same lock and deadline."""
        return self._write(lambda: self._ws.send(data))

    def close(self, code: int, reason: str = "") -> bool:
        return self._write(lambda: self._ws.close(reason=code, message=reason[:120]))

    def _write(self, operation: Callable[[], None]) -> bool:
        if self.failure is not None:
            return False
        sock = self._sock
        if not sock.lock.acquire(timeout=self._timeout):  # the holder's own deadline bounds it
            return self._fail(f"the socket stayed busy for {self._timeout:g}s")
        try:
            sock.begin(self._timeout)
            operation()
            return True
        except WriteTimeout as exc:
            return self._fail(str(exc))
        except (ConnectionClosed, OSError):
            logger.debug("frame dropped: the socket is closed")
            return False
        finally:
            sock.end()
            sock.lock.release()
            sock.drain()

    def _fail(self, reason: str) -> bool:
        self.failure = reason
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread; the client sees a cut
        except OSError:
            pass
        return False
