"""The client: one WebSocket, one session, one method per action.

``connect()`` opens the socket (``X-Tenant-Id`` and ``Authorization: Bearer`` headers), sends the
open frame and returns a ``Session``. Each method sends one action frame with a fresh integer
``id`` and returns its reply, typed. ``Session.pipeline()`` sends several frames before reading
any reply; replies are matched by ``id`` (the service answers strictly in order).
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import struct
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import websocket

from inndx.errors import ConnectionClosed, Error, error_for
from inndx.results import Cookie, GotoResult, decode_base64

WS_PATH = "/v1/sessions/ws"
_NO_REPLY = object()


def ws_url(url: str) -> str:
    """The sessions endpoint for ``url``: ``http(s)`` becomes ``ws(s)``, a bare host gets the path."""
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path if parts.path not in ("", "/") else WS_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def _duration(value: str | float | int | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return f"{value:g}s"


def _pairs(headers: Mapping[str, str] | Iterable[Iterable[str]] | None) -> list[list[str]] | None:
    if headers is None:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [[name, value] for name, value in items]


def _cookie(cookie: Cookie | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(cookie, Cookie):
        cookie = dataclasses.asdict(cookie)
    return {k: v for k, v in cookie.items() if v is not None}


def _without_none(frame: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in frame.items() if v is not None}


class Pending:
    """A reply not read yet: ``result()`` reads up to it and returns it (or raises its error)."""

    def __init__(self, session: Session, frame_id: int, convert) -> None:
        self._session, self.id, self._convert = session, frame_id, convert
        self._outcome: tuple[bool, Any] | None = None

    def result(self) -> Any:
        """The converted reply; an error reply raises (again on every call)."""
        if self._outcome is None:
            try:
                self._outcome = (True, self._convert(self._session._reply(self.id)))
            except Error as exc:
                self._outcome = (False, exc)
        ok, value = self._outcome
        if not ok:
            raise value
        return value


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
        return self._call(self._goto_frame(url, method, headers, body, cookies, referrer, user_agent), GotoResult.from_wire)

    def click(self, selector: str) -> None:
        """Click the first element matching the CSS ``selector`` (waits for it; 404 if none)."""
        self._call({"action": "click", "selector": selector}, _none)

    def fill(self, selector: str, value: str) -> None:
        """Clear the field matching ``selector`` and type ``value`` (a select: pick that option)."""
        self._call({"action": "fill", "selector": selector, "value": value}, _none)

    def content(self) -> bytes:
        """The page as the session sees it now (the live DOM for browsers), as bytes."""
        return self._call({"action": "content"}, lambda r: decode_base64(r.get("content")))

    def evaluate(self, script: str) -> Any:
        """Run ``script`` as a function body in the page; its JSON result (promises awaited)."""
        return self._call({"action": "evaluate", "script": script}, lambda r: r.get("result"))

    def screenshot(self) -> bytes | None:
        """A PNG of the viewport, as bytes (None when the service sent none)."""
        return self._call({"action": "screenshot"}, lambda r: decode_base64(r["screenshot"]) if r.get("screenshot") else None)

    def close(self) -> None:
        """Send ``close``, wait for ``closed`` and the server's close; idempotent."""
        if self.closed is not None:
            return
        try:
            self._call({"action": "close"}, _none)
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
    @staticmethod
    def _goto_frame(url, method, headers, body, cookies, referrer, user_agent) -> dict[str, Any]:
        if isinstance(body, str):
            body = body.encode("utf-8")
        return _without_none({
            "action": "goto", "url": url, "method": method, "headers": _pairs(headers),
            "body": base64.b64encode(body).decode("ascii") if body is not None else None,
            "cookies": [_cookie(c) for c in cookies] if cookies is not None else None,
            "referrer": referrer, "user_agent": user_agent,
        })

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

    def _read_one(self) -> None:
        opcode, data = _next_frame(self._ws, self.reply_timeout)
        if opcode is None:
            code, reason = data
            self._shutdown(ConnectionClosed(f"the server closed the session ({reason or 'no reason given'})", code, fatal=True))
            return
        reply = json.loads(data)
        if reply.get("type") == "fatal" and "id" not in reply:
            error = error_for(reply.get("code"), reply.get("message", ""), fatal=True)
            for frame_id in self._order:  # the session is over: every waiting call gets it
                self._replies.setdefault(frame_id, reply)
            self._shutdown(error)
            return
        target = reply.get("id")
        if target not in self._order:  # an error too broken to carry our id: the oldest waits for it
            target = next((i for i in self._order if i not in self._replies), None)
        if target is not None:
            self._replies[target] = reply

    def _shutdown(self, reason: Error) -> None:
        if self.closed is None:
            self.closed = reason
        try:
            self._ws.close(timeout=2)
        except (websocket.WebSocketException, OSError):
            self._ws.shutdown()


class Pipeline:
    """Actions sent at once, replies read later in order. Methods return ``Pending`` handles.

    Leaving the ``with`` block reads every reply; ``results()`` then lists them in order, with
    an error reply in place as its exception (``raise_errors=True`` raises the first instead).
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self.pending: list[Pending] = []
        self._results: list[Any] | None = None

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.gather()

    def _add(self, frame: dict[str, Any], convert) -> Pending:
        pending = Pending(self._session, self._session._send(frame), convert)
        self.pending.append(pending)
        return pending

    def goto(self, url: str, **options: Any) -> Pending:
        keys = ("method", "headers", "body", "cookies", "referrer", "user_agent")
        return self._add(Session._goto_frame(url, *(options.get(k) for k in keys)), GotoResult.from_wire)

    def click(self, selector: str) -> Pending:
        return self._add({"action": "click", "selector": selector}, _none)

    def fill(self, selector: str, value: str) -> Pending:
        return self._add({"action": "fill", "selector": selector, "value": value}, _none)

    def content(self) -> Pending:
        return self._add({"action": "content"}, lambda r: decode_base64(r.get("content")))

    def evaluate(self, script: str) -> Pending:
        return self._add({"action": "evaluate", "script": script}, lambda r: r.get("result"))

    def screenshot(self) -> Pending:
        return self._add({"action": "screenshot"}, lambda r: decode_base64(r["screenshot"]) if r.get("screenshot") else None)

    def gather(self) -> list[Any]:
        """Read every reply; results in order, an error in place as its exception object."""
        if self._results is None:
            results = []
            for pending in self.pending:
                try:
                    results.append(pending.result())
                except Error as exc:
                    results.append(exc)
            self._results = results
        return self._results

    def results(self, raise_errors: bool = False) -> list[Any]:
        results = self.gather()
        if raise_errors:
            for item in results:
                if isinstance(item, Error):
                    raise item
        return results


def _none(_reply: dict[str, Any]) -> None:
    return None


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
    frame = _without_none({
        "client": kind, "timeout": _duration(timeout), "max_redirects": max_redirects,
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
        reply = json.loads(data)
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
