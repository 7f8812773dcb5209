"""The client: one WebSocket, one session, one method per action.

``connect()`` opens the socket (``X-Tenant-Id`` and ``Authorization: Bearer`` headers), sends the
open frame and returns a ``Session``. Each method sends one action frame with a fresh integer
``id`` and returns its reply, typed. ``Session.pipeline()`` sends several frames before reading
any reply; replies are matched by ``id`` (the service answers strictly in order).

A reader thread of the session's own reads every frame as it arrives, so the service's pings are
answered while the program does something else between two actions (a session left idle for
minutes stays open); the replies wait in an inbox until a call takes them.
"""

from __future__ import annotations

import itertools
import json
import queue
import struct
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import websocket

from inndx import frames
from inndx.errors import ConnectionClosed, Error, error_for
from inndx.pipeline import Pipeline
from inndx.results import Cookie, GotoResult

WS_PATH = "/v1/sessions/ws"


def ws_url(url: str) -> str:
    """The sessions endpoint for ``url``: ``http(s)`` becomes ``ws(s)``, a bare host gets the path."""
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path if parts.path not in ("", "/") else WS_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


class Session:
    """An open session. Use it as a context manager: it closes on exit.

    Methods map one to one onto the protocol's actions; an error frame raises ``inndx.Error``
    (or its family subclass) and leaves the session usable unless ``.fatal``.
    """

    def __init__(self, ws: websocket.WebSocket, session_id: str, reply_timeout: float | None) -> None:
        self._ws = ws
        self.session_id = session_id
        self.reply_timeout = reply_timeout
        self._ids = itertools.count(1)
        self._replies: dict[Any, dict[str, Any]] = {}
        self._order: list[int] = []  # ids sent and not yet answered, oldest first
        self._lock = threading.RLock()
        self.closed: Error | None = None  # why the session is over, once it is
        self._inbox: queue.Queue = queue.Queue()  # (opcode, data) or an Error, in arrival order
        self._reader = threading.Thread(target=self._read_forever, name=f"inndx-reader-{session_id[:8]}", daemon=True)
        self._reader.start()

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- actions --------------------------------------------------------------------------
    def goto(
        self,
        url: str,
        *,
        method: str | None = None,
        headers: Mapping[str, str] | Iterable[Iterable[str]] | None = None,
        body: bytes | str | None = None,
        cookies: Iterable[Cookie | Mapping[str, Any]] | None = None,
        referrer: str | None = None,
        user_agent: str | None = None,
    ) -> GotoResult:
        """Navigate to ``url``; the final response, its hops and cookies (``GotoResult``).

        ``headers``: a mapping or ``(name, value)`` pairs; ``body``: bytes (str is UTF-8 encoded);
        ``user_agent``: ``inndx``, ``chrome``, ``firefox``, ``safari``, ``random`` or any string.
        """
        return self._call(frames.goto_frame(url, method, headers, body, cookies, referrer, user_agent), frames.goto)

    def click(self, selector: str) -> None:
        """Click the first element matching the CSS ``selector`` (waits for it; 404 if none)."""
        self._call({"action": "click", "selector": selector}, frames.nothing)

    def fill(self, selector: str, value: str) -> None:
        """Clear the field matching ``selector`` and type ``value`` (a select: pick that option)."""
        self._call({"action": "fill", "selector": selector, "value": value}, frames.nothing)

    def content(self) -> bytes:
        """The page as the session sees it now (the live DOM for browsers), as bytes."""
        return self._call({"action": "content"}, frames.content)

    def evaluate(self, script: str) -> Any:
        """Run ``script`` as a function body in the page; its JSON result (promises awaited)."""
        return self._call({"action": "evaluate", "script": script}, frames.evaluated)

    def screenshot(self) -> bytes | None:
        """A PNG of the viewport, as bytes (None when the service sent none)."""
        return self._call({"action": "screenshot"}, frames.screenshot)

    def close(self) -> None:
        """Send ``close``, wait for ``closed`` and the server's close; idempotent."""
        if self.closed is not None:
            return
        try:
            self._call({"action": "close"}, frames.nothing)
        except Error:
            pass
        finally:
            self._shutdown(ConnectionClosed("the session was closed", 1000, fatal=True))

    def request(self, frame: Mapping[str, Any]) -> dict[str, Any]:
        """Send any action frame (an ``id`` is added) and return its raw reply frame."""
        return self._call(dict(frame), lambda reply: reply)

    def pipeline(self) -> Pipeline:
        """Send several actions before reading replies: ``with s.pipeline() as p: p.goto(...)``."""
        return Pipeline(self)

    # -- plumbing -------------------------------------------------------------------------
    def _send(self, frame: dict[str, Any]) -> int:
        with self._lock:
            if self.closed is not None:
                raise self.closed
            frame_id = next(self._ids)
            self._order.append(frame_id)
            try:
                self._ws.send(json.dumps({**frame, "id": frame_id}))
            except (websocket.WebSocketException, OSError) as exc:
                self._shutdown(ConnectionClosed(f"the connection was lost: {exc}", 1006, fatal=True))
                raise self.closed from None
            return frame_id

    def _call(self, frame: dict[str, Any], convert) -> Any:
        return convert(self._reply(self._send(frame)))

    def _reply(self, frame_id: int) -> dict[str, Any]:
        """Read frames until the reply to ``frame_id`` is in; raise it if it is an error."""
        with self._lock:
            while frame_id not in self._replies:
                if self.closed is not None:
                    raise self.closed
                self._read_one()
            self._order.remove(frame_id)
            reply = self._replies.pop(frame_id)
        if reply.get("type") in ("error", "fatal"):
            raise error_for(reply.get("code"), reply.get("message", ""), fatal=reply["type"] == "fatal", id=reply.get("id"))
        return reply

    def _read_forever(self) -> None:
        """The reader thread: every frame into the inbox (websocket-client answers a ping while
        it reads), until the socket closes or breaks."""
        while True:
            try:
                item = _next_frame(self._ws, None)
            except Error as exc:
                self._inbox.put(exc)
                return
            self._inbox.put(item)
            if item[0] is None:
                return

    def _read_one(self) -> None:
        try:
            item = self._inbox.get(timeout=self.reply_timeout)
        except queue.Empty:
            raise Error(f"no reply within {self.reply_timeout} s", None) from None
        if isinstance(item, Error):
            self._shutdown(item)
            raise item
        opcode, data = item
        if opcode is None:
            code, reason = data
            self._shutdown(ConnectionClosed(f"the server closed the session ({reason or 'no reason given'})", code, fatal=True))
            return
        reply = _parse(data)
        kind = reply.get("type")
        target = reply.get("id")
        if target not in self._order or target in self._replies:
            target = None
            if kind in ("error", "fatal"):  # an error about a frame too broken to carry our id
                target = next((i for i in self._order if i not in self._replies), None)
            elif kind is None:
                raise Error(f"the server sent a reply to no waiting action: {data[:200]}", None)
        if target is not None:
            self._replies[target] = reply
        if kind == "fatal":  # the session is over: every waiting call gets it
            for frame_id in self._order:
                self._replies.setdefault(frame_id, reply)
            self._shutdown(error_for(reply.get("code"), reply.get("message", ""), fatal=True))

    def _shutdown(self, reason: Error) -> None:
        if self.closed is None:
            self.closed = reason
        if self._reader.is_alive() and self._reader is not threading.current_thread():
            try:  # our close; the reader sees the server's answer (or the broken link) and ends
                self._ws.send_close()
            except (websocket.WebSocketException, OSError):
                pass
            self._reader.join(2)
        self._ws.shutdown()


def _parse(data: str) -> dict[str, Any]:
    try:
        reply = json.loads(data)
    except ValueError:
        raise Error(f"the server sent a frame that is not JSON: {data[:200]!r}", None) from None
    if not isinstance(reply, dict):
        raise Error(f"the server sent a frame that is not a JSON object: {data[:200]!r}", None)
    return reply


def _next_frame(ws: websocket.WebSocket, timeout: float | None):
    """``(opcode, text)`` for the next data frame, or ``(None, (code, reason))`` when it closed."""
    ws.settimeout(timeout)
    try:
        opcode, frame = ws.recv_data_frame(control_frame=False)
    except websocket.WebSocketTimeoutException:
        raise Error(f"no reply within {timeout} s", None) from None
    except (websocket.WebSocketConnectionClosedException, OSError):
        return None, (1006, "")
    if opcode == websocket.ABNF.OPCODE_CLOSE:
        data = frame.data or b""
        code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
        return None, (code, data[2:].decode("utf-8", "replace"))
    if opcode != websocket.ABNF.OPCODE_TEXT:
        raise Error("the server sent a binary frame", None)
    return opcode, frame.data.decode("utf-8")


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
    """
    headers = []
    if tenant is not None:
        headers.append(f"X-Tenant-Id: {tenant}")
    if api_key is not None:
        headers.append(f"Authorization: Bearer {api_key}")
    kind: Any = client
    if viewport is not None:
        kind = {"kind": client or "standard", "viewport": {"width": viewport[0], "height": viewport[1]}}
    frame = frames.without_none({
        "client": kind, "timeout": frames.duration(timeout), "max_redirects": max_redirects,
        "max_retries": max_retries, "proxies": proxies, "middleware": middleware,
    })
    frame.update(fields)
    try:
        ws = websocket.create_connection(ws_url(url), timeout=connect_timeout, header=headers, enable_multithread=True)
    except websocket.WebSocketBadStatusException as exc:
        raise _refused(exc) from None
    except (websocket.WebSocketException, OSError) as exc:
        raise Error(f"cannot connect to {ws_url(url)}: {exc}", None, fatal=True) from None
    try:
        ws.send(json.dumps(frame))
        opcode, data = _next_frame(ws, connect_timeout)
        if opcode is None:
            raise ConnectionClosed(f"the server closed the socket before the open reply ({data[1]})", data[0], fatal=True)
        reply = _parse(data)
        if "session_id" not in reply:
            raise error_for(reply.get("code"), reply.get("message", str(reply)), fatal=True)
    except BaseException:
        ws.shutdown()
        raise
    return Session(ws, reply["session_id"], reply_timeout)


def _refused(exc: websocket.WebSocketBadStatusException) -> Error:
    body = exc.resp_body or b""
    try:
        parsed = json.loads(body)
        message = parsed.get("message") if isinstance(parsed, dict) else None
    except ValueError:
        message = None
    if not message:
        message = body.decode("utf-8", "replace").strip() or f"upgrade refused with HTTP {exc.status_code}"
    return error_for(exc.status_code, message, fatal=True)
