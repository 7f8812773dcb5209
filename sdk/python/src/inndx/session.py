"""The sync client: one WebSocket (websocket-client), one session, one method per action.

``connect()`` opens the socket (``X-Tenant-Id`` and ``Authorization: Bearer`` headers), sends the
open frame and returns a ``Session``. Each method sends one action frame with a fresh integer
``id`` and returns its reply, typed. ``Session.pipeline()`` sends several frames before reading
any reply; replies are matched by ``id`` (the service answers strictly in order).

The protocol itself (ids, matching, errors, when the session is over) is ``inndx.core``; this
module is its I/O. A reader thread of the session's own reads every frame as it arrives and hands
it to the core, so the service's pings are answered while the program does something else between
two actions (a session left idle for minutes stays open); a call waits until its reply is in.

With ``connect(..., resume=True)`` a link that breaks (a reset, close 1006 or 1012) does not end
the session: the reader thread reconnects with backoff and resumes it (``inndx.core`` Rule 5),
sends again only the frames the server did not read, and the calls waiting get their replies as
if nothing happened. Only a refusal (the window passed: 410) or ``resume_timeout`` ends it.
"""

from __future__ import annotations

import json
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import websocket

from inndx import core
from inndx.actions import Actions
from inndx.core import WS_PATH, Call, ws_url
from inndx.errors import ConnectionClosed, Error
from inndx.pipeline import Pipeline
from inndx.results import Download

__all__ = ["WS_PATH", "Session", "connect", "ws_url"]


class Session(Actions):
    """An open session. Use it as a context manager: it closes on exit.

    Methods map one to one onto the protocol's actions (``inndx.actions``); an error frame raises
    ``inndx.Error`` (or its family subclass) and leaves the session usable unless ``.fatal``.
    """

    def __init__(
        self, ws: websocket.WebSocket, session_id: str, reply_timeout: float | None,
        connection: core.Connection | None = None, reconnect: Callable[[], websocket.WebSocket] | None = None,
        resume_timeout: float = 90.0,
    ) -> None:
        self._ws = ws
        self.session_id = session_id
        self.reply_timeout = reply_timeout
        self._core = connection or core.Connection()
        self._reconnect = reconnect  # a new upgraded socket for a resume (None: no resuming)
        self._resume_timeout = resume_timeout
        self.resumes = 0  # how many times the session was resumed on a new socket
        self._state = threading.Condition()  # guards the core; notified on every frame read
        self._write = threading.RLock()  # ids go out on the wire in the order they are given
        self._reader = threading.Thread(target=self._read_forever, name=f"inndx-reader-{session_id[:8]}", daemon=True)
        self._reader.start()

    @property
    def closed(self) -> Error | None:
        """Why the session is over, once it is (None while it is open)."""
        return self._core.closed

    @property
    def downloads(self) -> list[Download]:
        """Every download the session's replies listed so far, oldest first (a goto's, a click's,
        any action's); ``download(d.id)`` gives its bytes."""
        return list(self._core.downloads)

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- actions (inndx.actions) ------------------------------------------------------------
    def _run(self, call: Call[Any]) -> Any:
        return call.convert(self._reply(self._send(call.frame)))

    def close(self) -> None:
        """Send ``close``, wait for ``closed`` and the server's close; idempotent."""
        if self.closed is not None:
            self._shutdown(self.closed)
            return
        try:
            self._run(Call({"action": "close"}, lambda reply: None))
        except Error:
            pass
        finally:
            self._shutdown(ConnectionClosed("the session was closed", 1000, fatal=True))

    def pipeline(self) -> Pipeline:
        """Send several actions before reading replies: ``with s.pipeline() as p: p.goto(...)``."""
        return Pipeline(self)

    # -- plumbing -------------------------------------------------------------------------
    def _send(self, frame: dict[str, Any]) -> int:
        with self._write:
            with self._state:
                frame_id, text = self._core.send(frame)
            try:
                self._ws.send(text)
                return frame_id
            except (websocket.WebSocketException, OSError) as exc:
                if self._core.resumable and self._core.closed is None:
                    return frame_id  # kept: sent again once the reader has resumed the session
                lost = ConnectionClosed(f"the connection was lost: {exc}", 1006, fatal=True)
        self._shutdown(lost)  # its reply is that error
        return frame_id

    def _reply(self, frame_id: int) -> dict[str, Any]:
        """Wait until the reply to ``frame_id`` is in; raise it if it is an error."""
        with self._state:
            if not self._state.wait_for(lambda: self._core.answered(frame_id), self.reply_timeout):
                self._core.forget(frame_id)
                raise Error(f"no reply within {self.reply_timeout} s", None)
            return self._core.result(frame_id)

    def _read_forever(self) -> None:
        """The reader thread: every frame into the core (websocket-client answers a ping while it
        reads), until the socket closes or breaks."""
        while True:
            opcode, data = _next_frame(self._ws)
            if opcode is None and self._reconnect is not None:
                with self._state:
                    dropped = self._core.dropped(*data)
                if dropped and self._resume():
                    continue
            with self._state:
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    self._core.receive(data)
                elif opcode is None:
                    self._core.receive_close(*data)
                else:
                    self._core.receive_binary()
                self._state.notify_all()
            if opcode is None:
                self._close_socket()
                return

    def _resume(self) -> bool:
        """The reader thread, after a drop: a new socket, the resume frame, the frames the server
        did not read sent again; with backoff until ``resume_timeout``. False when it gave up or
        the server refused (the session is then over with that refusal)."""
        assert self._reconnect is not None
        deadline, delay = time.monotonic() + self._resume_timeout, 0.1
        while time.monotonic() < deadline and self._core.closed is None:
            try:
                ws = self._reconnect()
            except Error as refusal:  # the upgrade was refused
                if refusal.code in (401, 403):
                    return self._refused(refusal)
                ws = None
            except (websocket.WebSocketException, OSError):
                ws = None
            if ws is not None:
                with self._write:  # no frame of ours goes out between the resume and the frames sent again
                    try:
                        ws.send(self._core.resume_frame())
                        opcode, data = _next_frame(ws, max(1.0, deadline - time.monotonic()))
                        if opcode != websocket.ABNF.OPCODE_TEXT:
                            raise OSError("no resume reply")
                        with self._state:
                            again = self._core.resumed(data)
                        old, self._ws = self._ws, ws
                        for text in again:
                            ws.send(text)
                    except Error as refusal:
                        ws.shutdown()
                        if refusal.fatal and refusal.code in (403, 410):
                            return self._refused(refusal)
                    except (websocket.WebSocketException, OSError):
                        ws.shutdown()
                    else:
                        old.shutdown()
                        self.resumes += 1
                        return True
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))  # backoff between attempts
            delay = min(delay * 2, 2.0)
        return False

    def _refused(self, refusal: Error) -> bool:
        with self._state:
            self._core.lost(refusal)
            self._state.notify_all()
        return False

    def _shutdown(self, reason: Error) -> None:
        with self._state:
            self._core.lost(reason)
            self._state.notify_all()
        if self._reader.is_alive() and self._reader is not threading.current_thread():
            try:  # our close; the reader sees the server's answer (or the broken link) and ends
                with self._write:
                    self._ws.send_close()
            except (websocket.WebSocketException, OSError):
                pass
            self._reader.join(2)
        self._close_socket()

    def _close_socket(self) -> None:
        with self._write:  # the reader and a caller may both get here
            self._ws.shutdown()


def _next_frame(ws: websocket.WebSocket, timeout: float | None = None) -> tuple[int | None, Any]:
    """``(opcode, text)`` for the next data frame, ``(None, (code, reason))`` when it closed."""
    ws.settimeout(timeout)
    try:
        opcode, frame = ws.recv_data_frame(control_frame=False)
    except websocket.WebSocketTimeoutException:
        raise Error(f"no reply within {timeout} s", None) from None
    except (websocket.WebSocketConnectionClosedException, OSError):
        return None, (1006, "")
    except websocket.WebSocketException as exc:  # a frame broken below the protocol: the link is unusable
        return None, (1002, f"unreadable frame: {exc}")
    if opcode == websocket.ABNF.OPCODE_CLOSE:
        data = frame.data or b""
        code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
        return None, (code, data[2:].decode("utf-8", "replace"))
    if opcode != websocket.ABNF.OPCODE_TEXT:
        return opcode, None
    return opcode, frame.data.decode("utf-8", "replace")


def connect(
    url: str,
    tenant: str | None = None,
    api_key: str | None = None,
    *,
    client: str | None = None,
    viewport: tuple[int, int] | None = None,
    timeout: str | float | None = None,
    max_redirects: int | None = None,
    max_retries: int | None = None,
    proxies: list[str] | None = None,
    middleware: list[dict[str, Any]] | None = None,
    connect_timeout: float = 30.0,
    reply_timeout: float | None = None,
    resume: bool = False,
    resume_timeout: float = 90.0,
    **fields: Any,
) -> Session:
    """Open a session: the WebSocket, then the open frame; the open ``Session``.

    ``url``: the service (``ws://host:8022``, ``http://...`` or the full ``.../v1/sessions/ws``).
    ``tenant`` goes in ``X-Tenant-Id``, ``api_key`` in ``Authorization: Bearer``. The open frame
    gets exactly the fields given (``None`` leaves the server's default): ``client``
    (``standard``, ``chrome``, ``firefox``; with ``viewport=(width, height)`` the object form),
    ``timeout`` (``"20s"`` or seconds), ``max_redirects``, ``max_retries``, ``proxies``,
    ``middleware``, and any further ``fields`` verbatim. ``connect_timeout`` bounds the upgrade
    and the open reply (browsers take a few seconds to start); ``reply_timeout`` bounds the wait
    for each later reply (None: as long as the service takes; it bounds every action itself).
    A refused upgrade or open raises ``inndx.Error`` (or its family subclass), ``fatal`` set.
    ``resume=True``: a broken link is resumed on a new socket (see the module's docstring), for up
    to ``resume_timeout`` seconds after the drop.
    """
    frame = core.open_frame(client, viewport, timeout, max_redirects, max_retries, proxies, middleware, fields)
    headers = [f"{name}: {value}" for name, value in core.handshake_headers(tenant, api_key)]
    try:
        ws = websocket.create_connection(
            core.open_url(url, resume), timeout=connect_timeout, header=headers, enable_multithread=True
        )
    except websocket.WebSocketBadStatusException as exc:
        raise core.refused(exc.status_code, exc.resp_body) from None
    except (websocket.WebSocketException, OSError) as exc:
        raise Error(f"cannot connect to {ws_url(url)}: {exc}", None, fatal=True) from None
    try:
        ws.send(json.dumps(frame))
        opcode, data = _next_frame(ws, connect_timeout)
        if opcode is None:
            raise ConnectionClosed(f"the server closed the socket before the open reply ({data[1]})", data[0], fatal=True)
        if opcode != websocket.ABNF.OPCODE_TEXT:
            raise Error("the server sent a binary frame", None, fatal=True)
        connection = core.Connection(resumable=resume)
        session_id = core.opened(data, connection)
    except BaseException:
        ws.shutdown()
        raise

    def reconnect() -> websocket.WebSocket:
        try:
            return websocket.create_connection(
                core.resume_url(url, session_id), timeout=connect_timeout, header=headers, enable_multithread=True
            )
        except websocket.WebSocketBadStatusException as exc:
            raise core.refused(exc.status_code, exc.resp_body) from None

    return Session(ws, session_id, reply_timeout, connection, reconnect if resume else None, resume_timeout)
