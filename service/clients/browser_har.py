"""A browser session's HTTP archive, from the BiDi network events of its pages.

The session's tab is subscribed to ``network.*`` for all its life (``navigation_record.EVENTS``,
the goto's events); ``BrowserHar.install`` taps four of them on the BiDi socket's thread and
feeds ``service.har.HarLog``: every request of the tab and its frames, the goto's navigations,
sub-resources and scripts' fetches alike, whether an action was running or not. One BiDi request
is one entry per hop (the key is the request id with its redirect count). The response's status
and headers are taken from ``responseStarted`` already: Chrome sends no ``responseCompleted``
for a script's fetch whose body the script never reads (measured, Chromium 156).

``take(egress)`` adds what the egress gateway knows: a request it answered itself (a refusal of
the network policy: 403, or a tunnel it would not open) carries the gateway's message as
``_refusal``, so a page's refused fetch says why in the archive, as a goto's error does.

Bodies (``INNDX_HAR_BODY_BYTES`` > 0 only; with 0 there is no collector and nothing is held):
each completed response's body stays in the browser, in a data collector of the session's tab,
until the next ``har`` reads it (``browser_har_bodies``, bounded there and in ``HarLog``).

What the events cannot say, and the archive therefore does not: a goto's request headers are the
browser's before the frame's own headers were added to it (those are the goto frame's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from service import redirects
from service.clients.browser_har_bodies import HarBodies
from service.clients.browser_headers import bidi_headers
from service.deadline import Deadline
from service.har import HarLog
from service.headers import header_value
from service.model import Egress

SETTLE = 1.0  # seconds the har action waits at most for the requests in flight
logger = logging.getLogger(__name__)

BEFORE, STARTED = "network.beforeRequestSent", "network.responseStarted"
COMPLETED, FAILED = "network.responseCompleted", "network.fetchError"
Tap = Callable[[str, dict], None]
_VERSIONS = {"http/1.0": "HTTP/1.0", "http/1.1": "HTTP/1.1", "h2": "HTTP/2", "h3": "HTTP/3", "http/2": "HTTP/2"}


class BrowserHar:
    def __init__(self, log: HarLog, kind: str, max_body_bytes: int):
        self.log = log
        self.kind = kind
        self.utf8 = kind != "chrome"  # Chrome's event strings are one character per byte already
        self.bodies = HarBodies(log.body_bytes, max_body_bytes) if log.body_bytes else None

    def install(self, bidi: Any, context: str, deadline: Deadline) -> None:
        """Tap the four events (after any tap already there: the downloads watcher's); with
        bodies, give the tab its collector."""
        for method in (BEFORE, STARTED, COMPLETED, FAILED):
            bidi.taps[method] = _both(bidi.taps.get(method), self.on_event)
        self.watch(bidi, context, deadline)

    def watch(self, bidi: Any, context: str, deadline: Deadline) -> None:
        """The session's tab is ``context`` from now on: its bodies are collected."""
        if self.bodies is not None:
            self.bodies.watch(bidi, context, deadline)

    def move(self, bidi: Any, old: str, new: str, deadline: Deadline) -> None:
        """The session moves from tab ``old`` (about to close) to ``new``: the new one's bodies
        are collected, the old one's read now (they would go with the tab)."""
        if self.bodies is not None:
            self.bodies.watch(bidi, new, deadline)
            self.bodies.leave(self.log, old, deadline)
            self.bodies.let_go(self.log.released())

    def leave(self, context: str, deadline: Deadline) -> None:
        """The session leaves its browser (``browser_move``): the tab's held bodies are read now."""
        if self.bodies is not None:
            self.bodies.leave(self.log, context, deadline)
            self.bodies.let_go(self.log.released())

    def before_goto(self, deadline: Deadline) -> None:
        """Chrome: the bodies the page's document holds go with it when the goto replaces it
        (``browser_har_bodies``): read them now."""
        if self.bodies is not None and self.kind == "chrome":
            self.bodies.read_now(self.log, deadline)
            self.bodies.let_go(self.log.released())

    def on_event(self, method: str, params: dict) -> None:
        try:
            self._record(method, params)
        except (TypeError, ValueError, AttributeError) as exc:  # an event of a shape we do not know
            logger.debug("HAR: %s dropped: %r", method, exc)
        if self.bodies is not None:
            self.bodies.let_go(self.log.released())  # bodies of entries the log dropped

    def _record(self, method: str, params: dict) -> None:
        request = params.get("request") if isinstance(params.get("request"), dict) else {}
        key = (str(request.get("request")), _count(params.get("redirectCount")) or 0)
        when = params.get("timestamp")
        seconds = when / 1000 if _number(when) and 0 < when < 1e14 else None
        if method == BEFORE:
            self.log.begin(
                key,
                str(request.get("method") or "GET"),
                str(request.get("url") or ""),
                bidi_headers(request.get("headers") or [], utf8=self.utf8),
                started=seconds,
            )
        elif method in (STARTED, COMPLETED):
            response = params.get("response") if isinstance(params.get("response"), dict) else {}
            version = _VERSIONS.get(str(response.get("protocol") or "").lower())
            self.log.respond(
                key,
                _count(response.get("status")) or 0,
                bidi_headers(response.get("headers") or [], utf8=self.utf8),
                status_text=str(response.get("statusText") or ""),
                http_version=version,
                mime_type=str(response.get("mimeType") or ""),
            )
            if method == STARTED:
                return
            content = response.get("content") if isinstance(response.get("content"), dict) else {}
            timings = request.get("timings") if isinstance(request.get("timings"), dict) else {}
            timings = {str(k): float(v) for k, v in timings.items() if _number(v)}
            size, received = _count(content.get("size")), _count(response.get("bytesReceived"))
            self.log.finish(key, size=size, transferred=received, timings=timings, ended=seconds)
            if self.bodies is not None:
                self._hold(key, params, response, max(size or 0, received or 0))
        elif method == FAILED:
            self.log.fail(key, str(params.get("errorText") or "the request failed"))

    def _hold(self, key: tuple[str, int], params: dict, response: dict, size: int) -> None:
        """A completed response's body is in the tab's collector (a redirect hop's is not kept by
        the browser, and its request id is the next hop's too: it holds none)."""
        assert self.bodies is not None
        headers = bidi_headers(response.get("headers") or [], utf8=self.utf8)
        if response.get("status") in redirects.REDIRECT_STATUSES and header_value(headers, "location"):
            return
        request_id = (params.get("request") or {}).get("request")
        token = self.bodies.token(params.get("context"), request_id) if isinstance(request_id, str) else None
        if token is not None and not self.log.hold(key, token, size or self.bodies.cap):
            self.bodies.let_go([token])  # its entry was taken already

    def take(self, egress: Egress | None, deadline: Deadline) -> dict[str, Any]:
        """The archive (``HarLog.take``), each request the gateway answered itself marked so,
        after waiting up to ``SETTLE`` seconds for the requests in flight to end (those still
        open then are in it as ``"no answer yet"``: a page's long poll); with bodies, each held
        one read from the browser within the deadline."""
        self.log.settle(min(SETTLE, max(0.0, deadline.remaining() - 1.0)))
        if egress is not None:
            for key, url in self.log.urls():
                answered = egress.answered(url)
                if answered is not None:
                    code, message = answered
                    self.log.refuse(key, message if code == 403 else f"the egress gateway answered {code}: {message}")
        bodies = self.bodies
        if bodies is None:
            return self.log.take()
        archive = self.log.take(lambda held, keep: bodies.read(held, keep, deadline))
        bodies.let_go(self.log.released())
        return archive


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) < 1e300


def _count(value: Any) -> int | None:
    """A non-negative integer from an event, or None (a browser's event is an outsider's text)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53 else None


def _both(first: Tap | None, second: Tap) -> Tap:
    if first is None:
        return second

    def both(method: str, params: dict) -> None:
        first(method, params)
        second(method, params)

    return both
