"""The WebSocket endpoint: the socket's thread reads frames and hands them to the session.

The socket thread (a gunicorn worker thread) does two things only: wait for the open frame,
then read every later frame through ``protocol.receive`` (size in bytes, JSON, id, schema) and
queue the result, an action or the error it earned, on the session. It never waits for the
session to end: the session owns its life, its expiry, its client and its ticket. Every write
goes through the connection's ``Outbox`` (``service/websocket.py``).
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from simple_websocket import ConnectionClosed

from service import protocol, replies, websocket
from service.errors import InternalError, OpenTimeout, ServiceError
from service.hub import Hub, Ticket
from service.session import Session
from service.websocket import Outbox

logger = logging.getLogger(__name__)

POLL = 1.0  # seconds between checks that the session is still there while the client is silent
CLOSE_WAIT = 2.0  # seconds for the client's answer to our close before we drop the connection


def serve(ws: Any, hub: Hub, ticket: Ticket) -> None:
    """Run one WebSocket connection from the upgrade to the close. ``ticket`` is ours until
    a session takes it over (an open), or until the session it resumes is ours (a resume)."""
    outbox = Outbox(ws, hub.settings.write_timeout)
    session = None
    try:
        session = _open(ws, hub, ticket, outbox)
        if session is not None:
            _read_frames(ws, hub, session, outbox)
    finally:
        if session is not None and not session.done.is_set():
            # however we got here: a close frame from the client ends the session; any other end
            # of the connection parks it (or ends it, with resuming off); a takeover leaves it be
            if websocket.closed_by_client(ws):
                if session.link.is_current(outbox):
                    session.abort("the client closed the connection")
            else:
                session.connection_lost(outbox, outbox.failure or websocket.why_gone(ws))
        let_reader_finish(ws)


def _open(ws: Any, hub: Hub, ticket: Ticket, outbox: Outbox) -> Session | None:
    settings = hub.settings
    try:
        data = ws.receive(timeout=settings.open_timeout)
        if data is None:
            if not ws.connected:
                ticket.release()
                return None
            raise OpenTimeout(f"no open frame within {settings.open_timeout:g}s")
        first = hub.protocol.parse_open(data, settings.max_frame_bytes)
        if isinstance(first, protocol.ResumeFrame):
            session = hub.resume_session(ticket, first, outbox)
            ticket.release()  # the session holds its own claims
            return session
        return hub.open_session(ticket, first, outbox)  # the session owns the ticket now
    except ConnectionClosed:
        ticket.release()
        return None
    except ServiceError as error:
        logger.info("open refused for tenant %s: %s (%s)", ticket.tenant.id, error.message, error.code)
        _refuse(outbox, error, ticket)
    except Exception:  # our bug, on an upgraded socket: a fatal frame, never an HTTP 500
        logger.error("opening a session failed", exc_info=True)
        _refuse(outbox, InternalError("internal error: the session could not open"), ticket)
    return None


def _refuse(outbox: Outbox, error: ServiceError, ticket: Ticket) -> None:
    outbox.send(replies.error_frame(error, fatal=True))
    outbox.close(error.close_code, error.message)
    ticket.release()


def _read_frames(ws: Any, hub: Hub, session: Session, outbox: Outbox) -> None:
    limit = hub.settings.max_frame_bytes
    while not session.done.is_set() and session.link.is_current(outbox):
        try:
            data = ws.receive(timeout=POLL)
        except ConnectionClosed:
            data = None
        if data is None:
            if not ws.connected:
                return  # serve decides: park, end, or nothing (taken over)
            continue
        try:
            item: protocol.Action | ServiceError = hub.protocol.receive(data, limit)
        except ServiceError as error:
            item = error
        except Exception:  # our bug: this frame gets a 500 in its turn, the session goes on
            logger.error("reading a frame failed", exc_info=True)
            item = InternalError("internal error: the frame could not be read", fatal=False)
        if not session.link.is_current(outbox):
            return  # taken over by a resume: this socket's frames go nowhere
        session.link.received(item.id if isinstance(item, protocol.Action) else item.action_id)
        session.submit(item)
        while not session.wait_for_room(POLL):  # a flood of refused frames: stop reading a while
            if not ws.connected:
                return


def let_reader_finish(ws: Any) -> None:
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
