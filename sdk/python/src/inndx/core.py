"""The sans-I/O core of the client: frames out, replies in, matched by ``id``; no socket in sight.

The sync client (``inndx.session``, websocket-client) and the asyncio client (``inndx.aio``,
websockets) are thin I/O around one ``Connection`` each: they hand it every frame the server
sends (``receive``, ``receive_binary``, ``receive_close``, ``lost``) and write the text that
``send`` gives them, in the order it gives it. The rules, in the service's own terms:

Rule 1. Every action frame gets a fresh integer ``id``; its reply, response or error, carries the
        same ``id``. The service answers strictly in order, so an error that carries no ``id`` (a
        frame too broken to read one from) answers the oldest action still waiting.
Rule 2. A ``fatal`` frame, the server's close, a lost link, or a frame the client cannot read
        (not JSON, not an object, binary, a reply to no waiting action) ends the session: every
        action still waiting gets that error, and so does every later ``send``. A session that
        has ended stays ended.
Rule 3. The reply to ``close`` (``{"action": "closed"}``) ends the session too: the server closes
        the socket right after it, and any action sent after ``close`` is answered by nothing.
Rule 4. An action whose caller gave up (its reply timeout, a cancelled task) is ``forget``-ten: its
        reply is read and dropped when it comes, and it keeps its place in the order (Rule 1).
Rule 5. A resumable connection (``resumable=True``) keeps the text of every frame not answered
        yet. A link that breaks (close 1006 or 1012, or the server's ping timeout) does not end
        the session (``dropped``), nor does the fatal frame with ``"resumable": true`` (503) a
        restarting server sends before its close 1012 (it hands the session over to another
        instance): the I/O resumes it on a new socket with ``resume_frame()``,
        and ``resumed(reply)`` gives the frames to send again, only those after the server's
        ``last_received``. The replies the server sends again come in through ``receive``; one
        already taken is dropped.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

from inndx import frames
from inndx.errors import ConnectionClosed, Error, error_for
from inndx.results import Download

T = TypeVar("T")
WS_PATH = "/v1/sessions/ws"


@dataclass(frozen=True)
class Call(Generic[T]):
    """One action: the frame to send (without ``id``) and how its reply frame becomes a value."""

    frame: dict[str, Any]
    convert: Callable[[dict[str, Any]], T]


class Connection:
    """One session's protocol state: ids given out, replies in, why it ended. Not thread-safe:
    its owner serialises calls (the sync client under a lock, the asyncio client on its loop)."""

    def __init__(self, resumable: bool = False) -> None:
        self.resumable = resumable
        self.session_id: str | None = None
        self.token: str | None = None  # the latest resume token (Rule 5)
        self._texts: dict[int, str] = {}  # frames sent and not answered yet, for a resume
        self._last_reply: int | None = None  # the id of the newest reply in
        self.downloads: list[Download] = []  # every download a reply listed, oldest first
        self._ids = itertools.count(1)
        self._waiting: list[int] = []  # sent, reply not taken yet, oldest first (Rule 1)
        self._replies: dict[int, dict[str, Any]] = {}
        self._forgotten: set[int] = set()
        self.closed: Error | None = None  # why the session is over, once it is (Rule 2)

    # -- out --------------------------------------------------------------------------------
    def send(self, frame: Mapping[str, Any]) -> tuple[int, str]:
        """The ``id`` given to ``frame`` and the text to write; raises once the session is over."""
        if self.closed is not None:
            raise self.closed
        frame_id = next(self._ids)
        self._waiting.append(frame_id)
        text = json.dumps({**frame, "id": frame_id})
        if self.resumable:
            self._texts[frame_id] = text
        return frame_id, text

    # -- in ---------------------------------------------------------------------------------
    def receive(self, data: str) -> None:
        """A text frame from the server. A frame that breaks the protocol ends the session (Rule 2)."""
        if self.closed is not None:
            return
        try:
            reply = parse(data)
            kind = reply.get("type")
            target = reply.get("id")
            if kind == "fatal" and reply.get("resumable") is True and self.resumable and self.token is not None:
                return  # a restart hands the session over: its close 1012 follows, then a resume (Rule 5)
            if self._seen(target):  # sent again after a resume, taken already (Rule 5)
                return
            if target not in self._waiting or target in self._replies:
                target = None
                if kind in ("error", "fatal"):  # an error about a frame too broken to carry our id
                    target = next((i for i in self._waiting if i not in self._replies), None)
                elif kind is None:
                    raise Error(f"the server sent a reply to no waiting action: {data[:200]}", None)
        except Error as exc:
            self.lost(exc)
            return
        if target is not None:
            self._last_reply = target
            self._texts.pop(target, None)
            self._store(target, reply)
            self.downloads.extend(frames.downloads(reply))
        if kind == "fatal":
            for frame_id in list(self._waiting):
                self._store(frame_id, reply)
            self.lost(error_for(reply.get("code"), reply.get("message", ""), fatal=True))
        elif kind is None and reply.get("action") == "closed":  # Rule 3
            self.lost(ConnectionClosed("the session was closed", 1000, fatal=True))

    def receive_binary(self) -> None:
        self.lost(Error("the server sent a binary frame", None))

    def receive_close(self, code: int, reason: str = "") -> None:
        """The server closed the socket (``code`` 1006: the link broke with no close frame)."""
        self.lost(ConnectionClosed(f"the server closed the session ({reason or 'no reason given'})", code, fatal=True))

    def lost(self, reason: Error) -> None:
        """The session is over for ``reason`` (kept if it was over already)."""
        if self.closed is None:
            self.closed = reason

    def _seen(self, target: Any) -> bool:
        # replies come in the order of their ids: one at or below the newest is a reply sent again
        return self.resumable and isinstance(target, int) and self._last_reply is not None and target <= self._last_reply

    # -- resuming (Rule 5) ------------------------------------------------------------------
    def dropped(self, code: int, reason: str = "") -> bool:
        """The link broke with ``code``: True when the session may be resumed (so not over)."""
        if not self.resumable or self.closed is not None or self.token is None:
            return False
        return code in (1006, 1012) or (code == 1008 and "Ping/Pong" in reason)

    def resume_frame(self) -> str:
        frame: dict[str, Any] = {"resume": self.session_id, "resume_token": self.token}
        if self._last_reply is not None:
            frame["last_id"] = self._last_reply
        return json.dumps(frame)

    def resumed(self, data: str) -> list[str]:
        """The resume reply in; the frames to send again, in order. A refusal raises its ``Error``
        (403: not this session's token; 410: the session is over), ``fatal`` set."""
        reply = parse(data)
        if reply.get("resumed") is not True or not isinstance(reply.get("resume_token"), str):
            raise error_for(reply.get("code"), reply.get("message", str(reply)), fatal=True)
        self.token = reply["resume_token"]
        last = reply.get("last_received")
        floor = last if isinstance(last, int) else 0
        return [self._texts[i] for i in sorted(self._texts) if i > floor and i not in self._replies]

    def _store(self, frame_id: int, reply: dict[str, Any]) -> None:
        if frame_id in self._forgotten:  # Rule 4: read and dropped
            self._forgotten.discard(frame_id)
            self._waiting.remove(frame_id)
        else:
            self._replies.setdefault(frame_id, reply)

    # -- replies ----------------------------------------------------------------------------
    def answered(self, frame_id: int) -> bool:
        """True once ``result(frame_id)`` will not wait: its reply is in, or the session is over."""
        return frame_id in self._replies or self.closed is not None

    def result(self, frame_id: int) -> dict[str, Any]:
        """The reply frame to ``frame_id``, taken; an error frame raises as its ``Error``."""
        if frame_id not in self._replies:
            if self.closed is None:
                raise RuntimeError(f"no reply to {frame_id} yet")
            if frame_id in self._waiting:
                self._waiting.remove(frame_id)
            raise self.closed
        self._waiting.remove(frame_id)
        reply = self._replies.pop(frame_id)
        if reply.get("type") in ("error", "fatal"):
            raise error_for(reply.get("code"), reply.get("message", ""), fatal=reply["type"] == "fatal", id=reply.get("id"))
        return reply

    def forget(self, frame_id: int) -> None:
        """The caller of ``frame_id`` gave up (Rule 4)."""
        if frame_id in self._replies:
            self._replies.pop(frame_id)
            self._waiting.remove(frame_id)
        elif frame_id in self._waiting:
            self._forgotten.add(frame_id)

    @property
    def waiting(self) -> list[int]:
        """The ids sent and not answered yet, oldest first."""
        return [i for i in self._waiting if i not in self._replies and i not in self._forgotten]


# ------------------------------------------------------------------------------- the open


def ws_url(url: str) -> str:
    """The sessions endpoint for ``url``: ``http(s)`` becomes ``ws(s)``, a bare host gets the path."""
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path if parts.path not in ("", "/") else WS_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def parse(data: str) -> dict[str, Any]:
    """A server frame as a JSON object, or ``inndx.Error``."""
    try:
        reply = json.loads(data)
    except ValueError:
        raise Error(f"the server sent a frame that is not JSON: {data[:200]!r}", None) from None
    if not isinstance(reply, dict):
        raise Error(f"the server sent a frame that is not a JSON object: {data[:200]!r}", None)
    return reply


def handshake_headers(tenant: str | None, api_key: str | None) -> list[tuple[str, str]]:
    """The upgrade's headers: ``X-Tenant-Id`` and ``Authorization: Bearer``, when given."""
    headers = []
    if tenant is not None:
        headers.append(("X-Tenant-Id", tenant))
    if api_key is not None:
        headers.append(("Authorization", f"Bearer {api_key}"))
    return headers


def open_frame(
    client: str | None, viewport: tuple[int, int] | None, timeout: str | float | None, max_redirects: int | None,
    max_retries: int | None, proxies: list[str] | None, middleware: list[dict[str, Any]] | None, fields: Mapping[str, Any],
) -> dict[str, Any]:
    """The open frame: exactly the fields given (``None`` leaves the server's default)."""
    kind: Any = client
    if viewport is not None:
        kind = {"kind": client or "standard", "viewport": {"width": viewport[0], "height": viewport[1]}}
    frame = frames.without_none({
        "client": kind, "timeout": frames.duration(timeout), "max_redirects": max_redirects,
        "max_retries": max_retries, "proxies": proxies, "middleware": middleware,
    })
    frame.update(fields)
    return frame


def opened(data: str, connection: Connection | None = None) -> str:
    """The session id from the open reply (kept, with its resume token, on ``connection``); a
    refusal raises its ``Error``, ``fatal`` set."""
    reply = parse(data)
    if "session_id" not in reply:
        raise error_for(reply.get("code"), reply.get("message", str(reply)), fatal=True)
    if connection is not None:
        connection.session_id, connection.token = reply["session_id"], reply.get("resume_token")
    return reply["session_id"]


def open_url(url: str, resume: bool) -> str:
    """Where an open goes: with resuming, ``?session=<a fresh UUID>``, which the service takes as
    the session's id, so that a balancer hashing that argument sends the open and every resume
    of the session to the same instance."""
    return resume_url(url, str(uuid.uuid4())) if resume else ws_url(url)


def resume_url(url: str, session_id: str) -> str:
    """The sessions endpoint with ``?session=<id>``: the socket takes no new session slot."""
    parts = urlsplit(ws_url(url))
    query = f"{parts.query}&session={session_id}" if parts.query else f"session={session_id}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def refused(status: int, body: bytes | None) -> Error:
    """The error for an upgrade the service refused with HTTP ``status`` (its JSON body's message)."""
    body = body or b""
    try:
        parsed = json.loads(body)
        message = parsed.get("message") if isinstance(parsed, dict) else None
    except ValueError:
        message = None
    if not message:
        message = body.decode("utf-8", "replace").strip() or f"upgrade refused with HTTP {status}"
    return error_for(status, message, fatal=True)
