"""Navigations a failed goto left in flight, and the gate the next navigation waits at.

After a failed goto the page is sent to about:blank (``Navigation._blank``). A browser that was
busy (Firefox inflating a gzip bomb stops answering BiDi for tens of seconds) runs those queued
navigations late, and reports their starts late: a navigation of the *next* goto that began
before such a report is told "A new navigation interrupted an unfinished navigation" (a spurious
502). So in Firefox nothing is forgotten: the timed-out goto's navigate and the about:blank
(sent with ``wait: none``, answered once it has started) stay here until the browser answers
them, and the next navigation of the session starts only then (``settle``). Their navigation ids
are stale: a late event of theirs is no part of the next goto (``NavigationEvents``).

Chrome keeps its about:blank with ``wait: complete`` and forgets it at its bound (it never showed
this race, and a blank that never completes would otherwise hold every later goto).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from service import errors
from service.deadline import Deadline

if TYPE_CHECKING:
    from service.clients.bidi import Bidi

logger = logging.getLogger(__name__)

# Once the last about:blank has started, a goto navigate still unanswered was superseded by it;
# its reply is waited for this long more, then forgotten (it can no longer start anything).
SUPERSEDED_GRACE = 1.0


class Unsettled:
    """Per browser: navigate commands still unanswered, and navigation ids that are not ours."""

    def __init__(self) -> None:
        self.commands: list[int] = []  # goto navigates that timed out, then the about:blank
        self.blank: int | None = None  # the last about:blank sent (wait: none)
        self.stale: dict[str, None] = {}  # navigation ids whose late events belong to no goto (in order)
        self._blank_started: float | None = None

    def __bool__(self) -> bool:
        return bool(self.commands)

    def keep(self, command: int, blank: bool = False) -> None:
        self.commands.append(command)
        if blank:
            self.blank, self._blank_started = command, None

    def drop(self, bidi: Bidi) -> None:
        """Forget every kept navigation (their tab is closed)."""
        for command in self.commands:
            bidi.forget(command)
        self.commands.clear()
        self.blank = self._blank_started = None

    def settle(self, bidi: Bidi, deadline: Deadline, quiet: bool = False) -> bool:
        """Wait (bounded) until the browser has answered every kept navigate. Raises a non-fatal
        504 at the deadline (``quiet``: returns False instead), keeping what is still unanswered."""
        while self.commands:
            with bidi.cond:
                bidi.wait(lambda: any(bidi.has_reply(c) for c in self.commands) or self._grace_over(), deadline)
                answered = [c for c in self.commands if bidi.has_reply(c)]
            for command in answered:
                self._take(bidi, command)
            if self.commands and self._grace_over():
                for command in self.commands:
                    bidi.forget(command)
                self.commands.clear()
            if self.commands and deadline.expired():
                if quiet:
                    return False
                raise errors.GatewayTimeout(
                    "the browser is still busy with the page before (its navigation away from it has "
                    f"not started within {deadline.seconds:g}s); the session goes on"
                )
        return True

    def _take(self, bidi: Bidi, command: int) -> None:
        from service.clients.bidi import BidiError

        self.commands.remove(command)
        try:
            reply = bidi.take_reply(command) or {}
        except BidiError as exc:  # interrupted, aborted: it is over either way
            logger.debug("a kept navigation ended with %s: %s", exc.error, exc.message)
            return
        navigation = reply.get("navigation")
        if command == self.blank:
            self._blank_started = time.monotonic()
            if navigation:
                self.stale[navigation] = None
                if len(self.stale) > 64:  # only the recent ones can still send events
                    del self.stale[next(iter(self.stale))]

    def _grace_over(self) -> bool:
        started = self._blank_started
        return started is not None and self.blank not in self.commands and time.monotonic() - started > SUPERSEDED_GRACE
