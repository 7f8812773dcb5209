"""One goto in a browser, read off WebDriver BiDi network events (never off the DOM).

How a goto runs (``Navigation.run``):

1. Per goto: a data collector for response bodies and one intercept on ``beforeRequestSent``
   (Chrome: + ``responseStarted``) and ``authRequired``, scoped to the session's context, in one
   round trip. (User-agent override and request cookies are set by the caller, ``browser``.)
2. ``browsingContext.navigate(wait=complete)`` is sent without waiting; the events are read
   meanwhile and every paused request answered (``navigation_events``). Blocking each hop's
   ``responseStarted`` too (Chrome) means hop data is read while the hop is paused (Chrome's
   unpaused redirect events are unreliable) and the intercept is removed before the final
   response reaches the page, so no page-started navigation (meta refresh, script) ever meets an
   intercept: the Chrome traps never arm.
3. After load, a short settle window catches client-side redirects, followed without intercepts
   (``navigation_settle``).
4. The reply (``navigation_reply``): status and headers from the paused ``responseStarted``
   (Chrome: the raw header text of CDP ``Network.responseReceivedExtraInfo`` when present, which
   keeps order and repeats), the body from the data collector.

Modules, top down: ``navigation`` -> ``navigation_settle`` -> ``navigation_reply`` ->
``navigation_events`` -> ``navigation_record`` (pure data).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from service.clients.browser_blocking import Blocking
from service.clients.navigation_events import STOP_BOUND, NavigationEvents
from service.clients.navigation_reply import Body, goto_result
from service.clients.navigation_settle import settle
from service.deadline import Deadline
from service.model import GotoRequest, GotoResult

if TYPE_CHECKING:
    from service.blocking import BlockRules
    from service.clients.bidi import Bidi
    from service.clients.browser_launch import Launched
    from service.clients.browser_options import BrowserSettings
    from service.model import Egress
    from service.policy import Policy

logger = logging.getLogger(__name__)

QUICK = 0.2  # seconds a clean-up waits for a browser that already answered nothing (bidi.BrowserUnresponsive)


class Navigation:
    """One goto attempt. Built and run by the session thread."""

    def __init__(
        self,
        launched: Launched,
        settings: BrowserSettings,
        max_redirects: int,
        policy: Policy,
        egress: Egress | None = None,
        middleware: BlockRules | None = None,
    ):
        self.launched = launched
        self.bidi: Bidi = launched.bidi
        self.context = launched.context
        self.settings = settings
        self.max_redirects = max_redirects
        self.policy = policy
        self.egress = egress
        # Chrome: pause each response too (hop data is only reliable while paused, and the
        # intercept must be gone before the page runs). Firefox: pausing a response costs ~45 ms
        # and neither reason applies, so the intercept goes on the final responseStarted event.
        self.phases = (
            ["beforeRequestSent", "responseStarted", "authRequired"]
            if launched.kind == "chrome"
            else ["beforeRequestSent", "authRequired"]
        )
        # The block middleware: Firefox, its own intercept on every request of the context, alive
        # from before the navigation until the goto returns; Chrome, a count of what its
        # extension failed (see browser_blocking).
        self.blocking = Blocking(self.bidi, self.context, middleware, launched.kind)
        self.events: NavigationEvents | None = None
        self.body: Body | None = None

    def run(self, request: GotoRequest, deadline: Deadline) -> GotoResult:
        bidi = self.bidi
        events = self.events = NavigationEvents(
            bidi, self.context, self.launched.kind, request, self.max_redirects, self.policy, self.blocking
        )
        events.stale = self.launched.unsettled.stale
        with bidi.cond:
            bidi.events.clear()
            bidi.listening = True
        # Collector and intercept in one round trip; the navigation only once both are in place.
        collector_reply, intercept_reply = bidi.pipeline(
            [
                (
                    "network.addDataCollector",
                    {
                        "dataTypes": ["response"],
                        "maxEncodedDataSize": self.settings.max_body_bytes,
                        "contexts": [self.context],
                    },
                ),
                ("network.addIntercept", {"phases": self.phases, "contexts": [self.context]}),
            ],
            deadline,
        )
        if not isinstance(intercept_reply, Exception):
            events.intercept = intercept_reply["intercept"]
        if isinstance(collector_reply, Exception):
            events.remove_intercept()
            if events.removal is not None:
                bidi.forget(events.removal)
            raise collector_reply
        collector = collector_reply["collector"]
        body = self.body = events.body = Body(bidi, collector, self.settings.max_body_bytes)
        nav_cmd: int | None = None
        try:
            if isinstance(intercept_reply, Exception):
                raise intercept_reply
            self.blocking.start(deadline)
            nav_cmd = bidi.send(
                "browsingContext.navigate",
                {"context": self.context, "url": request.url, "wait": "complete"},
            )
            reply_error = events.pump_until(lambda: bidi.has_reply(nav_cmd), deadline, nav_cmd)
            final = settle(events, self.settings, self.egress, reply_error, deadline)
            result = goto_result(events, final, body, self.settings, self.egress, deadline)
        except BaseException:
            self._cleanup(collector)
            self._blank(nav_cmd)
            raise
        finally:
            with bidi.cond:
                bidi.listening = False
                bidi.events.clear()
        self._cleanup(collector)
        result.blocked = self.blocking.count
        return result

    def _blank(self, nav_cmd: int | None) -> None:
        """After a failed goto, load about:blank (no intercept is active by now): Chrome otherwise
        keeps loading its error page, and that load meeting the next goto's intercept wedges it.
        Firefox, when the goto's navigate is still unanswered (the browser is busy): that navigate
        and the blank are kept until answered, and the next navigation waits for them
        (``navigation_cleanup``). Otherwise the blank is waited for (bounded) here: a blank sent
        with ``wait: none`` may still be committing when the next goto navigates, and Firefox
        then aborts that navigation and reports the blank's load under its id."""
        bidi = self.bidi
        busy = nav_cmd is not None and bidi.awaiting(nav_cmd)
        bound = QUICK if bidi.unresponsive_for() else STOP_BOUND
        try:
            if busy and self.launched.kind == "firefox":
                unsettled = self.launched.unsettled
                unsettled.keep(nav_cmd)
                unsettled.keep(bidi.send(
                    "browsingContext.navigate", {"context": self.context, "url": "about:blank", "wait": "none"}
                ), blank=True)
                unsettled.settle(bidi, Deadline(bound), quiet=True)
                return
            if busy:
                bidi.forget(nav_cmd)
            bidi.command(
                "browsingContext.navigate", {"context": self.context, "url": "about:blank", "wait": "complete"}, bound
            )
        except Exception as exc:  # noqa: BLE001 - best effort; a dead browser surfaces on the next call
            logger.debug("loading about:blank after a failed goto failed: %r", exc)

    def _cleanup(self, collector: str) -> None:
        """Remove the intercept and collector; continue whatever is still blocked."""
        bidi = self.bidi
        events = self.events
        assert events is not None
        events.remove_intercept()
        if self.body is not None:
            self.body.forget()
        for request in dict.fromkeys(events.collected):  # the data goes with its last owner
            if request:
                bidi.post("network.disownData", {"dataType": "response", "collector": collector, "request": request})
        bidi.post("network.removeDataCollector", {"collector": collector})  # its reply buys nothing
        commands = list(self.blocking.stop())
        if events.removal is not None:
            commands.append(events.removal)
        # A request blocked before the removal took effect is reported before its reply: answer
        # it, or it hangs forever (and with it the page, and Firefox's quit).
        with bidi.cond:
            bidi.listening = True
        try:
            bound = QUICK if bidi.unresponsive_for() else STOP_BOUND  # a silent browser: no more waiting
            events.pump_quietly(lambda: all(bidi.has_reply(c) for c in commands), Deadline(bound))
            with bidi.cond:
                bidi.listening = False
                pending = list(bidi.events)
                bidi.events.clear()
            for method, params in pending:
                events.handle(method, params)
        finally:
            for command in commands:
                bidi.forget(command)


def leave_document(bidi: Bidi, context: str, url: str, deadline: Deadline) -> None:
    """A URL differing from the current one only by its fragment would be a same-document
    navigation (no request, nothing to report): load about:blank first, so it is fetched."""
    tree = bidi.command("browsingContext.getTree", {"root": context, "maxDepth": 0}, deadline)
    current = (tree.get("contexts") or [{}])[0].get("url", "")
    if current.split("#", 1)[0] == url.split("#", 1)[0]:
        bidi.command("browsingContext.navigate", {"context": context, "url": "about:blank", "wait": "complete"}, deadline)
