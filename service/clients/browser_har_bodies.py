"""A browser session's response bodies for its HTTP archive (``INNDX_HAR_BODY_BYTES`` > 0 only).

With the default 0 nothing here runs: no collector, no command, nothing held. Otherwise:

- Each tab of the session gets a data collector of its own (``watch``: ``network.addDataCollector``
  for ``response`` data, scoped to the tab, ``maxEncodedDataSize`` = ``cap(...)``), added when
  the session starts and when it moves to a fresh tab. It is not the goto's collector: BiDi data
  is kept per collector, and each command here names this one (``getData`` and ``disownData``
  take the collector), so the goto's clean-up and this archive never let go of each other's data.
- A response that completed (not a redirect hop: the browser keeps no body for those) is held
  in the ``HarLog`` as a token ``(collector, request id)``. Whatever the log lets go of (its
  entry dropped, more than ``har.MAX_HELD`` bodies or ``har.MAX_HELD_BYTES`` held, a response
  that completed after its entry was taken) is disowned at once (``network.disownData``,
  ``let_go``), so the browser holds at most that much for the archive between two ``har``\\ s.
- ``read`` (the ``har`` action): each held body is taken with ``network.getData`` and
  ``disown: true``, a few at a time, within ``READ_BOUND`` seconds and the action's deadline;
  what is not read then (time, or the reply's budget spent) is disowned unread, as is a body the
  browser said is over the cap (Chrome does not enforce a collector's size; the browser's size
  of a body is its decoded size or its bytes received, the larger): the worker never reads more
  than the cap for one body. A
  body the browser no longer has (over the cap, evicted by the browser's own budget) is simply
  absent: never a failed ``har``.
- ``leave`` (a move to a fresh tab, before the old tab closes: Chrome's bodies go with their
  tab): the old tab's held bodies are read into the log the same way, within ``LEAVE_BOUND``
  seconds of the goto's time, and its collector is removed. ``read_now``, the same for the tab
  that stays: a Chrome goto reads the held bodies before it navigates, since a body Chrome keeps
  in the page renderer's buffer goes when the next document comes (and its network service's
  "durable" copies are bounded by its own budget). (A navigation the page starts itself,
  a click's or a script's, still takes the previous document's bodies with it in Chrome.)
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from typing import TYPE_CHECKING, Any

from service.deadline import Deadline

if TYPE_CHECKING:
    from service.clients.bidi import Bidi
    from service.har import HarLog, Held, Keep

logger = logging.getLogger(__name__)

CAP_FLOOR = 4 * 1024 * 1024  # a body up to this many bytes is kept to be cut (or the bound, if larger)
READ_BOUND = 10.0  # seconds a har spends reading bodies at most
LEAVE_BOUND = 2.0  # seconds a goto that moves to a fresh tab spends reading the old tab's bodies
BATCH_COUNT = 16  # getData commands in flight at once
BATCH_BYTES = 8 * 1024 * 1024  # and the bodies they bring, about (the worker's memory for one batch)
MARGIN = 1.0  # seconds of the action's deadline left for the reply


def cap(body_bytes: int, max_body_bytes: int) -> int:
    """The collector's ``maxEncodedDataSize``: a body larger than the bound is kept so that it can
    be cut, up to ``CAP_FLOOR`` (or the bound itself, when larger), never past the goto's limit."""
    return max(1, min(max_body_bytes, max(body_bytes, CAP_FLOOR)))


def body_of(result: dict) -> bytes | None:
    """The bytes of a ``network.getData`` result, or None when it is not of a shape we know."""
    value = result.get("bytes") if isinstance(result, dict) else None
    if not isinstance(value, dict) or not isinstance(value.get("value"), str):
        return None
    if value.get("type") == "base64":
        try:
            return base64.b64decode(value["value"], validate=True)
        except (binascii.Error, ValueError):
            return None
    return value["value"].encode("utf-8", "surrogatepass") if value.get("type") == "string" else None


class HarBodies:
    """The collectors of one session's tabs and the commands on their data. ``token`` and
    ``let_go`` run on the BiDi socket's thread (taps); the rest on the session's."""

    def __init__(self, body_bytes: int, max_body_bytes: int):
        self.cap = cap(body_bytes, max_body_bytes)
        self.bidi: Bidi | None = None
        self._lock = threading.Lock()
        self._collectors: dict[str, str] = {}  # tab context -> its collector
        self._current: str | None = None  # the collector of the session's tab now

    def watch(self, bidi: Bidi, context: str, deadline: Deadline) -> None:
        """Give the tab ``context`` a collector (the session's tab from now on)."""
        reply = bidi.command(
            "network.addDataCollector",
            {"dataTypes": ["response"], "maxEncodedDataSize": self.cap, "contexts": [context]},
            deadline,
        )
        with self._lock:
            self.bidi = bidi
            self._collectors[context] = self._current = str(reply["collector"])

    def token(self, context: Any, request: str) -> tuple[str, str] | None:
        """Whose data a completed response is: the collector of its tab (a frame's: the tab's now)."""
        with self._lock:
            collector = self._collectors.get(context) if isinstance(context, str) else None
            collector = collector or self._current
        return (collector, request) if collector is not None and request else None

    def let_go(self, tokens: list[tuple[str, str]]) -> None:
        """Disown data the archive will not read (no reply is waited for)."""
        bidi = self.bidi
        for collector, request in tokens if bidi is not None else ():
            try:
                bidi.post("network.disownData", {"dataType": "response", "collector": collector, "request": request})
            except Exception as exc:  # noqa: BLE001 - a browser gone: its data went with it
                logger.debug("disowning a HAR body failed: %r", exc)
                return

    def read(self, held: list[Held], keep: Keep, deadline: Deadline, bound: float = READ_BOUND) -> None:
        """Read the held bodies (``disown: true``) into their exchanges, a batch at a time, while
        ``keep`` has room and time is left (at most ``bound`` seconds); disown the rest unread."""
        from service.clients.bidi import BidiError

        bidi = self.bidi
        if bidi is None:
            return
        within = Deadline(min(bound, max(0.0, deadline.remaining() - MARGIN)))
        waiting = [item for item in held if item[1] <= self.cap]
        unread = [token for token, size, _ in held if size > self.cap]
        room = True
        while waiting and room and not within.expired():
            batch, size = [], 0
            while waiting and len(batch) < BATCH_COUNT and (not batch or size + waiting[0][1] <= BATCH_BYTES):
                batch.append(waiting.pop(0))
                size += batch[-1][1]
            calls = [("network.getData", {"dataType": "response", "collector": c, "request": r, "disown": True})
                     for (c, r), _, _ in batch]
            try:
                replies = bidi.pipeline(calls, within)
            except (TimeoutError, BidiError) as exc:  # the sent ones disown when the browser gets to them
                logger.debug("HAR bodies: a batch of %d got no answer in time: %r", len(batch), exc)
                break
            for (_, _, exchange), reply in zip(batch, replies, strict=True):
                body = None if isinstance(reply, BidiError) else body_of(reply)
                if body is not None and room:
                    room = keep(exchange, body)
        self.let_go(unread + [token for token, _, _ in waiting])

    def read_now(self, log: HarLog, deadline: Deadline, collector: str | None = None) -> None:
        """Read the bodies held by ``collector`` (default: the current tab's) into the log now,
        within ``LEAVE_BOUND`` seconds; their entries stay in it."""
        with self._lock:
            collector = collector or self._current
        if collector is not None:
            self.read(log.detach(lambda token: token[0] == collector), log.attach, deadline, LEAVE_BOUND)

    def leave(self, log: HarLog, context: str, deadline: Deadline) -> None:
        """The session leaves the tab ``context`` (about to close): its held bodies are read into
        the log now, and its collector removed."""
        with self._lock:
            collector = self._collectors.pop(context, None)
        if collector is None:
            return
        try:
            self.read_now(log, deadline, collector)
        finally:
            if self.bidi is not None:
                self.bidi.post("network.removeDataCollector", {"collector": collector})
