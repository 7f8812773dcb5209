"""The live view: a read-only picture of a browser session's screen, a few frames a second.

``GET /v1/sessions/<id>/live`` is a small page (``static/live.html``); it opens the WebSocket
``/v1/sessions/<id>/live/ws``, which sends the screen as binary messages, one JPEG each, and
nothing else; what the viewer sends is read and dropped. Both answer only the tenant that owns
the session, under the WebSocket's own rules (headers, or the query with INNDX_TENANT_QUERY=1):
another tenant is refused with 403, an unknown session (or one held by another worker) 404, a
standard session 501 (it has no screen), before any upgrade.

Frames are captured by the viewers' own threads, never the session's: a session's viewers share
one ``Feed``, and the viewer that finds a frame due (at most ``INNDX_LIVE_FPS`` a second) and no
capture under way takes it (``Session.live_frame``), the others wait for it. A capture is one
BiDi command beside the session's own, waited for at most ``CAPTURE_WAIT`` (``Bidi.ask``): the
session's actions never queue behind it, and a wedged browser costs a viewer missed frames
only. A frame equal to the last is not sent again. A session has at most
``INNDX_LIVE_VIEWERS`` viewers (429), a worker ``INNDX_LIVE_MAX_VIEWERS`` (503; each holds a
gunicorn thread, which ``gunicorn.conf.py`` adds to the worker's threads). When the session
ends, its viewers get a close 1000 at their next look (within ``POLL``), and its feed goes.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.errors import (
    Forbidden,
    NotFound,
    NotSupported,
    ServiceError,
    TooManyRequests,
    Unavailable,
)
from service.hub import Hub
from service.session import Session
from service.tenants import Tenant
from service.websocket import Outbox

logger = logging.getLogger(__name__)

POLL = 0.5  # seconds a viewer waits for a frame before it looks at its socket and its session again
CAPTURE_WAIT = 2.0  # seconds one capture may take (a busy or wedged browser): a missed frame
BACKOFF = 1.0  # seconds between captures after one failed
LEAVE_WAIT = POLL + CAPTURE_WAIT + 0.5  # the most a viewer that closed its socket takes to leave
SESSION_ID = re.compile(r"[0-9a-f-]{36}")


def owned(hub: Hub, tenant: Tenant, session_id: str) -> Session:
    """The session, if ``tenant`` owns it and it has a screen; else the error that refuses."""
    session = hub.find(session_id) if SESSION_ID.fullmatch(session_id) else None
    if session is None or session.done.is_set():
        raise NotFound("no live session of that id here")
    if session.tenant != tenant.id:
        raise Forbidden("this session belongs to another tenant")
    if session.kind == "standard":
        raise NotSupported("a standard session has no screen to show: the live view needs a browser session")
    return session


@dataclass(frozen=True)
class Frame:
    seq: int
    data: bytes


class Feed:
    """One session's frames, shared by its viewers: the latest one, and who captures next."""

    def __init__(self, session: Session, interval: float):
        self.session = session
        self.viewers = 0  # counted by ``Viewers`` under its lock
        self._interval = interval
        self._cond = threading.Condition()
        self._frame = Frame(0, b"")
        self._capturing = False
        self._due = 0.0  # monotonic time the next capture may start

    def next_frame(self, seen: int, wait: float) -> Frame | None:
        """A frame newer than ``seen``, or None after about ``wait`` seconds or once the session
        has ended. When a capture is due and none is under way, this thread takes it."""
        end = time.monotonic() + wait
        with self._cond:
            while True:
                if self._frame.seq > seen:
                    return self._frame
                now = time.monotonic()
                if now >= end or self.session.done.is_set():
                    return None
                if not self._capturing and now >= self._due:
                    self._capturing, self._due = True, now + self._interval
                    break
                self._cond.wait((end if self._capturing else min(end, self._due)) - now)
        data = None
        try:
            data = self._capture()
        finally:  # whatever happened, the next capture is someone's again
            with self._cond:
                self._capturing = False
                if data is None:
                    self._due = max(self._due, time.monotonic() + BACKOFF)
                elif data != self._frame.data:
                    self._frame = Frame(self._frame.seq + 1, data)
                self._cond.notify_all()
        with self._cond:
            return self._frame if self._frame.seq > seen else None

    def _capture(self) -> bytes | None:
        try:
            return self.session.live_frame(CAPTURE_WAIT)
        except ServiceError as error:  # a missed frame: the session's own actions say the rest
            self.session.log.debug("live view: no frame: %s (%s)", error.message, error.code)
        except Exception:  # our bug: this viewer's frame is lost, the session goes on
            self.session.log.error("live view: a capture failed", exc_info=True)
        return None


class Viewer:
    """One viewer's place at a feed; ``leave`` (idempotent) gives it back. ``connected`` says
    whether its socket is still open (its thread notices a close within ``POLL``, or after the
    capture it is making)."""

    def __init__(self, viewers: Viewers, feed: Feed):
        self._viewers = viewers
        self.feed = feed
        self._left = False
        self.connected: Callable[[], bool] = lambda: True

    @property
    def session(self) -> Session:
        return self.feed.session

    def leave(self) -> None:
        if not self._left:
            self._left = True
            self._viewers.release(self)


class Viewers:
    """Every live viewer of this worker, by session; the bounds on their numbers."""

    def __init__(self, fps: float, per_session: int, per_worker: int, retry_after: int):
        self._interval = 1.0 / fps
        self._per_session = per_session
        self._per_worker = per_worker
        self._retry_after = retry_after
        self._lock = threading.Lock()
        self._left = threading.Condition(self._lock)  # notified each time a viewer leaves
        self._feeds: dict[str, Feed] = {}
        self._viewers: set[Viewer] = set()

    def join(self, session: Session) -> Viewer:
        """A place for a viewer of ``session``: 503 when the worker has its most, 429 when the
        session has. While a viewer that closed its socket has not left yet (a page reloaded),
        its place is waited for, at most ``LEAVE_WAIT``."""
        end = time.monotonic() + LEAVE_WAIT
        with self._lock:
            while True:
                feed = self._feeds.get(session.id)
                if feed is None or feed.session is not session:
                    feed = self._feeds[session.id] = Feed(session, self._interval)
                full = self._full(feed)
                if full is None:
                    break
                leaving = [v for v in self._viewers if (v.feed is feed or full.code == 503) and not v.connected()]
                if not leaving or not self._left.wait(end - time.monotonic()):
                    if feed.viewers == 0:
                        del self._feeds[session.id]
                    raise full
            feed.viewers += 1
            viewer = Viewer(self, feed)
            self._viewers.add(viewer)
        return viewer

    def _full(self, feed: Feed) -> ServiceError | None:
        if len(self._viewers) >= self._per_worker:
            return Unavailable(
                f"this server shows at most {self._per_worker} live views at once", retry_after=self._retry_after
            )
        if feed.viewers >= self._per_session:
            return TooManyRequests(
                f"a session has at most {self._per_session} live viewers at once", retry_after=self._retry_after
            )
        return None

    def release(self, viewer: Viewer) -> None:
        feed = viewer.feed
        with self._lock:
            self._viewers.discard(viewer)
            feed.viewers -= 1
            if feed.viewers == 0 and self._feeds.get(feed.session.id) is feed:
                del self._feeds[feed.session.id]
            self._left.notify_all()

    def count(self) -> int:
        with self._lock:
            return len(self._viewers)


def serve(ws: Any, viewer: Viewer, write_timeout: float) -> None:
    """Send the session's frames to one viewer until it leaves or the session ends."""
    outbox = Outbox(ws, write_timeout)
    session, seen = viewer.session, 0
    viewer.connected = lambda: bool(ws.connected)
    session.log.info("live view: a viewer joined")
    try:
        while ws.connected:
            while ws.receive(timeout=0) is not None:  # read-only: whatever comes is dropped
                pass
            frame = viewer.feed.next_frame(seen, POLL)
            if session.done.is_set():
                outbox.close(1000, "the session ended")
                return
            if frame is not None:
                seen = frame.seq
                if not outbox.send_bytes(frame.data):
                    return
    finally:
        viewer.leave()
        session.log.info("live view: a viewer left")
