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

What the events cannot say, and the archive therefore does not: a goto's request headers are the
browser's before the frame's own headers were added to it (those are the goto frame's); bodies
(``INNDX_HAR_BODY_BYTES``) are the standard client's only: a browser's would need a data
collector holding every response of the page until the next ``har``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from service.clients.browser_headers import bidi_headers
from service.har import HarLog
from service.model import Egress

SETTLE = 1.0  # seconds the har action waits at most for the requests in flight
logger = logging.getLogger(__name__)

BEFORE, STARTED = "network.beforeRequestSent", "network.responseStarted"
COMPLETED, FAILED = "network.responseCompleted", "network.fetchError"
Tap = Callable[[str, dict], None]
_VERSIONS = {"http/1.0": "HTTP/1.0", "http/1.1": "HTTP/1.1", "h2": "HTTP/2", "h3": "HTTP/3", "http/2": "HTTP/2"}


class BrowserHar:
    def __init__(self, log: HarLog, kind: str):
        self.log = log
        self.utf8 = kind != "chrome"  # Chrome's event strings are one character per byte already

    def install(self, bidi: Any) -> None:
        """Tap the four events (after any tap already there: the downloads watcher's)."""
        for method in (BEFORE, STARTED, COMPLETED, FAILED):
            bidi.taps[method] = _both(bidi.taps.get(method), self.on_event)

    def on_event(self, method: str, params: dict) -> None:
        try:
            self._record(method, params)
        except (TypeError, ValueError, AttributeError) as exc:  # an event of a shape we do not know
            logger.debug("HAR: %s dropped: %r", method, exc)

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
        elif method == FAILED:
            self.log.fail(key, str(params.get("errorText") or "the request failed"))

    def take(self, egress: Egress | None, settle: float) -> dict[str, Any]:
        """The archive (``HarLog.take``), each request the gateway answered itself marked so,
        after waiting up to ``settle`` seconds for the requests in flight to end (those still
        open then are in it as ``"no answer yet"``: a page's long poll)."""
        self.log.settle(settle)
        if egress is not None:
            for key, url in self.log.urls():
                answered = egress.answered(url)
                if answered is not None:
                    code, message = answered
                    self.log.refuse(key, message if code == 403 else f"the egress gateway answered {code}: {message}")
        return self.log.take()


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
