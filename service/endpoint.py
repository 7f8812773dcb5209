"""The WebSocket endpoint: the socket's thread reads frames and hands them to the session.

The socket thread (a gunicorn worker thread) does three things only: wait for the open frame,
queue every later frame on the session, and notice the client leaving or the session expiring.
Every write goes through ``WebSocketOutbox``: one lock for our frames and for simple-websocket's
own pings, pongs and close replies (its socket is wrapped so that its thread takes the lock too).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from simple_websocket import ConnectionClosed

from service import protocol
from service.errors import BadRequest, OpenTimeout, ServiceError, SessionExpired, TooManyRequests
from service.hub import Hub, Ticket

logger = logging.getLogger(__name__)

POLL = 1.0  # seconds between expiry checks while the client is silent
CLOSE_WAIT = 2.0  # seconds for the client's answer to our close before we drop the connection


class _LockedSocket:
    """The raw socket, with ``send`` serialised by the outbox's lock and made complete."""

    def __init__(self, sock: Any, lock: threading.RLock):
        self._sock = sock
        self._lock = lock

    def send(self, data: bytes) -> int:
        with self._lock:
            self._sock.sendall(data)
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class WebSocketOutbox:
    def __init__(self, ws: Any):
        self._ws = ws
        self._lock = threading.RLock()
        ws.sock = _LockedSocket(ws.sock, self._lock)

    def send(self, frame: dict[str, Any]) -> None:
        text = protocol.encode(frame)
        with self._lock:
            try:
                self._ws.send(text)
            except (ConnectionClosed, OSError):
                logger.debug("frame dropped: the socket is closed")

    def close(self, code: int, reason: str = "") -> None:
        with self._lock:
            try:
                self._ws.close(reason=code, message=reason[:120])
            except (ConnectionClosed, OSError):
                pass


def serve(ws: Any, hub: Hub, ticket: Ticket) -> None:
    """Run one WebSocket connection from the upgrade to the close."""
    outbox = WebSocketOutbox(ws)
    settings = hub.settings
    session = None
    try:
        try:
            data = ws.receive(timeout=settings.open_timeout)
            if data is None:
                raise OpenTimeout(f"no open frame within {settings.open_timeout:g}s")
            protocol.check_size(data, settings.max_frame_bytes)
            open_frame = hub.protocol.parse_open(data)
            session = hub.open_session(ticket, open_frame, outbox)
        except ServiceError as error:
            logger.info("open refused for tenant %s: %s (%s)", ticket.tenant.id, error.message, error.code)
            outbox.send(protocol.error_frame(error, fatal=True))
            outbox.close(error.close_code, error.message)
            return
        _read_frames(ws, hub, session, outbox)
    except ConnectionClosed:
        pass
    finally:
        if session is not None:
            session.thread.join(settings.shutdown_timeout + settings.new_session_timeout)
            if session.thread.is_alive():
                logger.error("session %s did not end in time: closing its client", session.id)
                session.force_close_client()
            hub.session_ended(session)
        ticket.release()
        _let_reader_finish(ws)


def _let_reader_finish(ws: Any) -> None:
    """Wait (bounded) for simple-websocket's reader thread to see the closing handshake end.

    Once this handler returns, gunicorn closes the socket; a reader thread still in ``select()``
    on it then never wakes before its next ping (25 s), and that non-daemon thread holds up the
    worker's exit at shutdown. A client that does not answer our close gets its connection shut.
    """
    thread = getattr(ws, "thread", None)
    if thread is None or thread is threading.current_thread():
        return
    thread.join(CLOSE_WAIT)
    if thread.is_alive():
        try:
            ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        thread.join(CLOSE_WAIT)


def _read_frames(ws: Any, hub: Hub, session: Any, outbox: WebSocketOutbox) -> None:
    settings = hub.settings
    while not session.finished:
        try:
            data = ws.receive(timeout=POLL)
        except ConnectionClosed:
            session.abort("the client went away")
            return
        if data is None:
            if not ws.connected:
                session.abort("the client went away")
                return
            _check_expiry(session, settings)
            continue
        try:
            session.submit(data)
        except TooManyRequests as error:
            action_id = None
            if isinstance(data, str):
                try:
                    action_id = hub.protocol.peek_id(hub.protocol.decode_json(data))
                except BadRequest:
                    pass
            outbox.send(protocol.error_frame(error, action_id))
        _check_expiry(session, settings)  # a chatty client never lets receive() time out


def _check_expiry(session: Any, settings: Any) -> None:
    now = time.monotonic()
    if now - session.started_at >= settings.max_lifetime:
        session.fail(SessionExpired(f"the session reached its maximum lifetime of {settings.max_lifetime:g}s"))
        return
    idle_since = session.idle_since()
    if idle_since is not None and now - idle_since >= settings.idle_timeout:
        session.fail(SessionExpired(f"the session was idle for {settings.idle_timeout:g}s"))
