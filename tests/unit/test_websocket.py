"""The WebSocket adapter: the pins it relies on, the guarded socket's deadlines, and the
byte-counted incoming messages (the end-to-end proof is in tests/e2e/test_hostile_clients.py)."""

from __future__ import annotations

import importlib.metadata
import inspect
import socket
import threading
import time

import pytest
import simple_websocket
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Message, Request

from service import websocket
from service.protocol import OversizedFrame


def test_pinned_versions_and_private_attributes_we_rely_on():
    """service/websocket.py reaches into simple-websocket: a new pin must be checked by hand."""
    assert importlib.metadata.version("simple-websocket") == "1.1.0"
    assert importlib.metadata.version("flask-sock") == "0.7.0"
    assert importlib.metadata.version("wsproto") == "1.3.2"
    base = simple_websocket.ws.Base
    # the thread is built with thread_class(target=self._thread), after the handshake
    init = inspect.getsource(base.__init__)
    assert "thread_class(target=self._thread)" in init
    assert init.index("self.handshake()") < init.index("thread_class(target=self._thread)")
    # the reader calls self._handle_events() and writes through self.sock.send
    reader = inspect.getsource(base._thread)
    assert "self._handle_events()" in reader and "self.sock.send(" in reader and "self.sock.recv(" in reader
    for name in ("input_buffer", "event", "pong_received", "close_reason", "close_message", "ws"):
        assert name in inspect.getsource(base.__init__) + init, name
    # the server accepts permessage-deflate whenever the client offers it: we strip the offer
    assert "PerMessageDeflate()" in inspect.getsource(base._handle_events)
    assert "for key, value in self.environ.items()" in inspect.getsource(simple_websocket.ws.Server.handshake)


def _pair(size: int = 4096) -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    for sock in (a, b):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return a, b


def test_a_write_to_a_reader_that_stopped_reading_ends_at_its_deadline():
    ours, theirs = _pair()
    guarded = websocket.GuardedSocket(ours)
    with guarded.lock:
        guarded.begin(0.3)
        started = time.monotonic()
        with pytest.raises(websocket.WriteTimeout, match="0.3s"):
            guarded.send(b"x" * 10_000_000)
        guarded.end()
    assert 0.25 <= time.monotonic() - started < 5
    ours.close()
    theirs.close()


def test_control_frames_never_wait_behind_a_stuck_write():
    ours, theirs = _pair()
    guarded = websocket.GuardedSocket(ours)
    writer_in = threading.Event()

    def stuck_writer():
        with guarded.lock:
            guarded.begin(2.0)
            writer_in.set()
            with pytest.raises(websocket.WriteTimeout):
                guarded.send(b"y" * 10_000_000)
            guarded.end()

    thread = threading.Thread(target=stuck_writer)
    thread.start()
    assert writer_in.wait(5)
    started = time.monotonic()
    guarded.send(b"PING")  # from another thread, as simple-websocket's pinger does
    assert time.monotonic() - started < 0.1
    thread.join(10)
    ours.close()
    theirs.close()


def test_queued_control_frames_go_out_whole_after_the_current_write():
    ours, theirs = _pair(1 << 20)
    guarded = websocket.GuardedSocket(ours)
    with guarded.lock:
        guarded.begin(5.0)
        guarded.send(b"A" * 100)
        threading.Thread(target=guarded.send, args=(b"PONG",)).start()
        time.sleep(0.05)  # let the other thread queue its frame while we hold the lock
        guarded.send(b"B" * 100)
        guarded.end()
    guarded.drain()
    theirs.settimeout(5)
    received = b""
    while len(received) < 204:
        received += theirs.recv(4096)
    assert received == b"A" * 100 + b"PONG" + b"B" * 100
    ours.close()
    theirs.close()


class _FakeWs:
    """What _handle_events touches on a simple-websocket Base, on a real wsproto connection."""

    def __init__(self, sock):
        self.ws = WSConnection(ConnectionType.SERVER)
        self.sock = sock
        self.input_buffer = []
        self.event = threading.Event()
        self.connected = True
        self.pong_received = True
        self.close_reason = self.close_message = None


@pytest.fixture()
def sockets():
    pair = socket.socketpair()
    yield pair
    for sock in pair:
        sock.close()


def _client_bytes(sock, *messages: str | bytes, chunk: int = 4096) -> tuple[_FakeWs, list[bytes]]:
    client = WSConnection(ConnectionType.CLIENT)
    fake = _FakeWs(websocket.GuardedSocket(sock))
    fake.ws.receive_data(client.send(Request(host="h", target="/")))
    for event in fake.ws.events():
        assert isinstance(event, Request)
        client.receive_data(fake.ws.send(AcceptConnection()))
    data = b"".join(client.send(Message(data=m)) for m in messages)
    return fake, [data[i : i + chunk] for i in range(0, len(data), chunk)]


def test_messages_are_counted_in_bytes_and_an_oversized_one_is_never_kept(sockets):
    big = "é" * 600  # 600 characters, 1200 bytes
    fake, chunks = _client_bytes(sockets[0], "small", big, b"\x00" * 5000, "after", chunk=100)
    incoming = websocket._Incoming()
    for piece in chunks:
        fake.ws.receive_data(piece)
        websocket._handle_events(fake, incoming, 1000)
        assert sum(len(p) for p in incoming.parts) <= 1000
    assert fake.input_buffer == ["small", OversizedFrame(1200), OversizedFrame(5000), "after"]


def test_text_split_inside_a_character_is_put_back_together(sockets):
    fake, chunks = _client_bytes(sockets[0], "aé" * 100, chunk=7)
    incoming = websocket._Incoming()
    for piece in chunks:
        fake.ws.receive_data(piece)
        websocket._handle_events(fake, incoming, 1000)
    assert fake.input_buffer == ["aé" * 100]
