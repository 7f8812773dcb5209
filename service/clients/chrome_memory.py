"""Chrome's memory kept from growing with every goto: the one reach into its BiDi mapper's tab.

Chrome speaks BiDi through chromium-bidi, a script that runs in a hidden tab of the browser (the
"BiDi-CDP Mapper"). Measured with ``bench/soak.py --by-process`` and a DevTools look at the tabs
(Chromium 156, gotos of a 2 MB page):

- The mapper's page writes every BiDi message it sends or receives into its own DOM, as indented
  JSON, and keeps the last 400, response bodies read with ``network.getData`` included: 33.8 M
  characters after 30 gotos. Its tab grew about 4.5 MiB per goto of the issue's mix, to 600 MiB
  after 125 gotos, and never gave it back.
- What is left once that log is gone is garbage: the strings of each message stay in the tab's
  V8 heap until a major collection, which a hidden tab with a 4 MB live heap seldom gets (96 MB
  of garbage after 30 gotos; one collection took the tab from 217 to 37 MiB).
- The page's renderer keeps each old document until its own collection: after 22 gotos,
  Blink's heap held 190 MB, 83 MB after one (the renderer 365 -> 239 MiB). The move to a fresh
  tab every ``INNDX_TAB_GOTOS`` gotos bounds the rest (``browser_tabs``).
- With the mapper's "durable messages" (``Network.enable``'s default), the network service keeps
  a copy of every body: about 1 MiB per goto, up to its 200 MB budget, then flat. They stay on:
  without them (``goog:disableNetworkDurableMessages``) a goto whose answer Chrome turns into a
  download (``application/octet-stream``) has no body to read (tried, and the e2e tests said so).

``ChromeMemory.attach(bidi, deadline)``, when a Chrome browser is prepared, removes the mapper's
log element (the mapper looks it up before each line and writes nothing once it is gone) and
keeps a CDP session on that tab. ``tidy(context)``, after each action, asks the mapper's tab and
the page for a collection (``HeapProfiler.collectGarbage``, fire and forget) once
``GARBAGE_BYTES`` more have come over the BiDi socket since the last time (all of it passed
through the mapper, and most of it through the page).

It all goes through chromium-bidi's own commands: ``goog:cdp.sendCommand`` on the browser's CDP
session finds the mapper's target, attaches to it not flattened (the mapper drops a flattened
session on its own tab) and talks to it with ``Target.sendMessageToTarget``, whose answers are
events nobody subscribed to; ``goog:cdp.getSession`` names the page's session. It works the same
on a Grid (the commands travel on the BiDi socket). It is best effort: a browser without that tab
(another mapper) is logged and the session goes on; ``tests/e2e/test_long_sessions.py`` reads
the tabs through the DevTools port and fails loudly when the log is still there after an open,
so a Chromium that changes the page is noticed.
"""

from __future__ import annotations

import json
import logging

from service.clients.bidi import Bidi, BidiClosed, BidiError
from service.deadline import Deadline

logger = logging.getLogger(__name__)

MAPPER_TITLE = "BiDi-CDP Mapper"  # chromium-bidi's tab (src/bidiTab/mapperTabPage.ts)
LOG_ELEMENT = "logs"  # the id of its log's container
BOUND = 5.0  # seconds for the set-up, at most
SILENCE = f"document.getElementById({json.dumps(LOG_ELEMENT)})?.remove()"
GARBAGE_BYTES = 4 * 1024 * 1024  # BiDi bytes received between two collections
SESSION_BOUND = 2.0  # seconds to learn a page's CDP session
COLLECT = "HeapProfiler.collectGarbage"
SEND = "goog:cdp.sendCommand"


def _cdp(bidi: Bidi, method: str, params: dict, deadline: Deadline) -> dict:
    return bidi.command(SEND, {"method": method, "params": params}, deadline).get("result") or {}


class ChromeMemory:
    """A CDP session on Chrome's mapper tab (its log stopped), and collections now and then."""

    def __init__(self, bidi: Bidi, mapper_session: str):
        self.bidi = bidi
        self.mapper_session = mapper_session
        self.collections = 0
        self._mark = bidi.received  # bytes received at the last collection
        self._sent = 0
        self._page: tuple[str, str] | None = None  # (context, its CDP session)

    @classmethod
    def attach(cls, bidi: Bidi, deadline: Deadline | None = None) -> ChromeMemory | None:
        bound = Deadline(min(BOUND, deadline.remaining() if deadline else BOUND))
        try:
            targets = _cdp(bidi, "Target.getTargets", {}, bound).get("targetInfos") or []
            mapper = next((t for t in targets if t.get("title") == MAPPER_TITLE and t.get("type") == "other"), None)
            if mapper is None:
                logger.warning("Chrome's BiDi mapper tab was not found: its log and heap are left as they are")
                return None
            reply = _cdp(bidi, "Target.attachToTarget", {"targetId": mapper["targetId"], "flatten": False}, bound)
            memory = cls(bidi, reply["sessionId"])
            memory.tell_mapper("Runtime.evaluate", {"expression": SILENCE}, bound)
            return memory
        except (BidiError, TimeoutError, KeyError, TypeError) as exc:
            logger.warning("Chrome's BiDi mapper tab could not be reached: %r", exc)
            return None

    def tidy(self, context: str) -> None:
        """Collect the mapper tab's and the page's garbage when enough has passed since the last time."""
        if self.bidi.received - self._mark < GARBAGE_BYTES or self.bidi.unresponsive_for():
            return
        self._mark = self.bidi.received
        self.collections += 1
        try:
            self.tell_mapper(COLLECT, {}, None)
            page = self._page_session(context)
            if page is not None:
                self.bidi.post(SEND, {"method": COLLECT, "params": {}, "session": page})
        except (BidiClosed, BidiError, TimeoutError, OSError) as exc:  # a browser gone: the action's own reply says so
            logger.debug("no collection in Chrome: %r", exc)

    def _page_session(self, context: str) -> str | None:
        if self._page is None or self._page[0] != context:  # a fresh tab is a new target
            reply = self.bidi.command("goog:cdp.getSession", {"context": context}, SESSION_BOUND)
            session = reply.get("session")
            self._page = (context, session) if isinstance(session, str) else None
        return self._page[1] if self._page else None

    def tell_mapper(self, method: str, params: dict, deadline: Deadline | None) -> None:
        self._sent += 1
        message = json.dumps({"id": self._sent, "method": method, "params": params})
        params = {"method": "Target.sendMessageToTarget", "params": {"sessionId": self.mapper_session, "message": message}}
        if deadline is None:
            self.bidi.post(SEND, params)
        else:
            self.bidi.command(SEND, params, deadline)
