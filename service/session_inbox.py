"""A session's states and its inbox: what ``service.session`` is built on.

States, and the only moves between them (``MOVES``; ``Session._move`` makes every move and
raises ``IllegalTransition`` for any other)::

    OPENING --> READY <--> BUSY
       |          |          |
       +----------+----------+--> CLOSING --> CLOSED
       +----------+----------+--> FAILED             (a failed session stays failed)

The ``Inbox`` holds the frames the protocol read, in their order, with their bounds: at most
``max_pending`` actions (and ``max_pending_bytes`` of their frames) wait; one over either bound is
queued as its 429, so that it keeps its turn; refused frames may queue up to ``BACKLOG_FACTOR``
times ``max_pending`` before the reader is held back (``wait_for_room``).
"""

from __future__ import annotations

import enum
import queue
import threading
from typing import Any
from typing import Protocol as TypingProtocol

from service import protocol
from service.errors import ServiceError, TooManyRequests


class Outbox(TypingProtocol):
    """Where a session's frames go: the endpoint's one writer. ``send`` and ``close`` return
    False once the client cannot take frames any more; ``failure`` then says why, if we cut it."""

    failure: str | None

    def send(self, frame: dict[str, Any]) -> bool: ...

    def close(self, code: int, reason: str = "") -> bool: ...


class State(enum.Enum):
    OPENING = "opening"
    READY = "ready"
    BUSY = "busy"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


MOVES = {
    State.OPENING: {State.READY, State.CLOSING, State.FAILED},
    State.READY: {State.BUSY, State.CLOSING, State.FAILED},
    State.BUSY: {State.READY, State.CLOSING, State.FAILED},
    State.CLOSING: {State.CLOSED, State.FAILED},
    State.CLOSED: set(),
    State.FAILED: set(),
}


class IllegalTransition(RuntimeError):
    pass


WAKE = object()  # put in the inbox to wake the session's thread; no frame
BACKLOG_FACTOR = 8  # refused frames (their 429s) may queue up to this many times max_pending


class Inbox:
    """The session's queue of frames, bounded. ``lock`` is the session's own: the counts change
    under it, with the session's activity clock."""

    def __init__(self, lock: threading.Lock, max_pending: int, max_pending_bytes: int):
        self._frames: queue.SimpleQueue = queue.SimpleQueue()
        self._max_pending = max_pending
        self._max_pending_bytes = max_pending_bytes
        self._max_backlog = max_pending * BACKLOG_FACTOR
        self._pending = 0  # queued actions not yet started (bounded by max_pending)
        self._pending_bytes = 0  # bytes of the queued actions' frames (bounded by max_pending_bytes)
        self.backlog = 0  # everything queued: actions and the errors of refused frames
        self.room = threading.Condition(lock)

    def admit(self, item: protocol.Action | ServiceError) -> protocol.Action | ServiceError:
        """Count ``item`` in; an action over a bound becomes its 429. Call with the lock held,
        then ``put`` what it returns."""
        if isinstance(item, protocol.Action):
            if self._pending >= self._max_pending:
                item = TooManyRequests(
                    f"too many pending actions: at most {self._max_pending} may wait", action_id=item.id
                )
            elif self._pending and self._pending_bytes + item.size > self._max_pending_bytes:
                item = TooManyRequests(
                    f"too many pending bytes: the waiting frames may hold at most {self._max_pending_bytes}",
                    action_id=item.id,
                )
            else:
                self._pending += 1
                self._pending_bytes += item.size
        self.backlog += 1
        return item

    def put(self, item: Any) -> None:
        self._frames.put(item)

    def wake(self) -> None:
        self._frames.put(WAKE)

    def get(self, timeout: float) -> Any:
        """The next frame, or ``WAKE`` (woken, or nothing within ``timeout``)."""
        try:
            return self._frames.get(timeout=timeout)
        except queue.Empty:
            return WAKE

    def taken(self, item: protocol.Action | ServiceError) -> None:
        """``item`` left the queue to be handled: it no longer counts."""
        with self.room:
            self.backlog -= 1
            if isinstance(item, protocol.Action):
                self._pending -= 1
                self._pending_bytes -= item.size
            self.room.notify_all()

    def wait_for_room(self, timeout: float, done: threading.Event) -> bool:
        """Backpressure for the reader: False while the backlog of refused frames is full."""
        with self.room:
            return self.room.wait_for(lambda: self.backlog < self._max_backlog or done.is_set(), timeout)

    def release_waiters(self) -> None:
        with self.room:
            self.room.notify_all()
