"""A goto's BiDi events: the record of what its navigations did, and the paused requests answered.

``NavigationEvents`` reads the events a goto subscribed to (``navigation_record.EVENTS``) in wire
order, keeps one ``Track`` per navigation (server hops, status, headers, errors, load), and
answers every request the goto's intercept paused: each hop of our navigation is checked against
``max_redirects`` and the network policy before it is sent (``failRequest`` otherwise) and gets
the goto's method/body/headers/referrer; anything else is continued untouched (or failed by the
``block`` middleware, ``browser_blocking``). The intercept is removed before the final response
reaches the page, so no page-started navigation ever meets one (Chrome's intercept traps, see
BROWSER-NOTES.md). No waiting on replies happens here: every command is sent, not awaited.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from service import errors, redirects, request_headers
from service.clients.browser_headers import BROWSER_OWNED, bidi_headers, wire_headers
from service.clients.navigation_record import SETTLE_CHANNEL, Track, page_facts
from service.deadline import Deadline
from service.headers import header_value
from service.model import GotoRequest, Redirect

if TYPE_CHECKING:
    from service.clients.bidi import Bidi
    from service.clients.browser_blocking import Blocking
    from service.clients.navigation_reply import Body
    from service.policy import Policy

# The responses a goto's collector may hold are disowned one by one when it ends (Firefox frees
# nothing on removeDataCollector: +2.5 MiB of its parent process per goto, bench/soak.py).
MAX_COLLECTED = 2000
STOP_BOUND = 2.0  # seconds for a command that stops or cleans up (about:blank, intercept removal)


class NavigationEvents:
    """The event side of one goto: its tracks, its intercept, the refusal (if any) of a hop."""

    def __init__(
        self,
        bidi: Bidi,
        context: str,
        kind: str,
        request: GotoRequest,
        max_redirects: int,
        policy: Policy,
        blocking: Blocking,
    ):
        self.bidi = bidi
        self.context = context
        self.kind = kind
        self.request = request
        self.max_redirects = max_redirects
        self.policy = policy
        self.blocking = blocking
        self.add_headers: list[tuple[str, str]] = wire_headers(request)
        self.left_origin = False  # a hop went to another origin: the frame's headers stay behind
        self.tracks: dict[str, Track] = {}
        self.by_request: dict[str, Track] = {}
        self.main: Track | None = None
        self.extra: dict[str, list[str]] = {}  # Chrome: request id -> raw header blocks
        self.client_hops: list[Redirect] = []  # client-side redirects followed, in order
        self.blocked: Exception | None = None  # a hop refused (policy, max_redirects)
        self.intercept: str | None = None
        self.removal: int | None = None  # the removeIntercept command, once sent
        self.last_loaded: Track | None = None  # the document a settle signal now comes from
        self.body: Body | None = None  # the goto's data collector, once it is in place
        self.collected: list[str] = []  # requests whose response the goto's collector may hold
        self.stale: dict[str, None] = {}  # navigations an earlier failed goto left (navigation_cleanup)

    # ----- reading events -------------------------------------------------------------------
    def take(self, done, deadline: Deadline) -> bool:
        """Wait (bounded) for events or ``done()``, then handle every event that came; whether
        anything happened before the deadline."""
        bidi = self.bidi
        with bidi.cond:
            arrived = bidi.wait(lambda: bool(bidi.events) or done(), deadline)
            events = list(bidi.events)
            bidi.events.clear()
        for method, params in events:
            self.handle(method, params)
        return arrived or bool(events)

    def pump_until(self, done, deadline: Deadline, nav_cmd: int | None) -> str | None:
        """Handle events until ``done()``; returns the navigate command's error text, if any.
        At the deadline the intercept goes (the caller loads about:blank) and it is a 504."""
        bidi = self.bidi
        while True:
            if not self.take(done, deadline):  # the caller keeps or forgets nav_cmd
                self.remove_intercept()
                raise errors.GatewayTimeout(
                    f"navigation to {self.request.url} did not finish within {deadline.seconds:g}s"
                )
            if done() and not bidi.events:
                break
        if nav_cmd is None:
            return None
        from service.clients.bidi import BidiError

        try:
            bidi.take_reply(nav_cmd)
        except BidiError as exc:
            return exc.message or exc.error
        return None

    def pump_quietly(self, done, window: Deadline) -> None:
        """Handle events until ``done()`` or the window ends (at least one look)."""
        first = True
        while not done() and (first or not window.expired()):
            first = False
            self.take(done, window)

    def handle(self, method: str, params: dict) -> None:
        if method.startswith("goog:cdp."):
            inner = params.get("params") or {}
            text = inner.get("headersText")
            self.extra.setdefault(inner.get("requestId", ""), []).append(text if text is not None else "")
            return
        if method == "script.message":
            source = params.get("source") or {}
            if params.get("channel") == SETTLE_CHANNEL and source.get("context") == self.context and self.last_loaded:
                self.last_loaded.facts = page_facts(params.get("data"))  # it follows its load event
            return
        if method == "network.responseCompleted" and len(self.collected) < MAX_COLLECTED:
            self.collected.append((params.get("request") or {}).get("request") or "")
        self.blocking.observe(method, params)  # Chrome: what its block extension failed, frames too
        if params.get("context") not in (None, self.context):
            if method == "network.beforeRequestSent" and params.get("isBlocked"):
                self.blocking.foreign(params)  # a frame's request, paused by the block intercept
            return
        nav = params.get("navigation")
        if nav in self.stale:  # a late event of an earlier goto's clean-up: not this goto's
            return
        if method.startswith("browsingContext."):
            self._on_context_event(method, nav)
            return
        request = params.get("request") or {}
        request_id = request.get("request")
        count = params.get("redirectCount") or 0
        # Chrome may tag a request's late events with a newer navigation: the request id decides.
        track = self.by_request.get(request_id)
        if track is None and nav:
            track = self.tracks.get(nav)
            if track is None:
                track = self.tracks[nav] = Track(navigation=nav)
                if self.main is None:
                    self.main = track
            if track.request is None:
                track.request = request_id
                self.by_request[request_id] = track
        mine = track is not None and track.request == request_id
        if method == "network.beforeRequestSent":
            if mine:
                track.hop(count, request.get("url", "")).method = request.get("method", "GET")  # type: ignore[union-attr]
            if params.get("isBlocked") and not self.blocking.fails(params):
                self._continue_request(params, track if mine else None, count)
            elif mine and track is not self.main:
                self.check_unblocked(request.get("url", ""))
        elif method in ("network.responseStarted", "network.responseCompleted"):
            self._on_response(method, params, track if mine else None, count)
        elif method == "network.authRequired" and params.get("isBlocked"):
            # A server's 401/407 challenge is never answered (no credential of ours may reach a
            # site): the browser shows the response as it is. Firefox would otherwise wait on a
            # login prompt nobody can see.
            self.bidi.send("network.continueWithAuth", {"request": request_id, "action": "cancel"})
        elif method == "network.fetchError" and mine:
            track.error = params.get("errorText") or "navigation failed"  # type: ignore[union-attr]

    def _on_context_event(self, method: str, nav: str | None) -> None:
        if nav is None:
            return
        track = self.tracks.get(nav)
        if method == "browsingContext.navigationStarted" and track is None and (self.main or nav):
            self.tracks[nav] = track = Track(navigation=nav)
            if self.main is None:
                self.main = track
        elif track is not None and method == "browsingContext.load":
            track.loaded = True
            self.last_loaded = track
        elif track is not None and method == "browsingContext.navigationFailed":
            track.failed = True

    def _on_response(self, method: str, params: dict, track: Track | None, count: int) -> None:
        request = params.get("request") or {}
        response = params.get("response") or {}
        if track is not None:
            hop = track.hop(count, response.get("url") or request.get("url", ""))
            if (response.get("status") or 0) > 0 and (hop.status is None or method == "network.responseStarted"):
                hop.status = response.get("status")
                hop.headers = bidi_headers(response.get("headers"), utf8=self.kind != "chrome")
            size = (response.get("content") or {}).get("size")
            if method == "network.responseCompleted" and isinstance(size, int):
                hop.size = size
        final = response.get("status") not in redirects.REDIRECT_STATUSES or not header_value(
            bidi_headers(response.get("headers"), utf8=self.kind != "chrome"), "location"
        )
        challenged = response.get("status") in (401, 407) and self.kind == "firefox"
        if final and track is not None and track is self.main and method == "network.responseStarted" and not challenged:
            self.remove_intercept()  # Firefox keeps it for a challenge: its authRequired is answered
        if final and track is not None and track is self.main and method == "network.responseCompleted":
            self.ask_body(track)
        if params.get("isBlocked"):
            self.bidi.send("network.continueResponse", {"request": request.get("request")})

    def ask_body(self, track: Track) -> None:
        """Ask for the track's body ahead: when its response completed (it is whole by then), or
        after load at the latest. A client redirect later makes the answer unused; ``Body`` then
        forgets it. Asking twice for one request sends one ``getData``."""
        if self.body is not None and track.request and self.request.method.upper() != "HEAD":
            self.body.ask(track.request)

    # ----- answering paused requests --------------------------------------------------------
    def _continue_request(self, params: dict, track: Track | None, count: int) -> None:
        request = params["request"]
        request_id = request["request"]
        if track is None or track is not self.main:
            self.bidi.send("network.continueRequest", {"request": request_id})
            return
        url = request.get("url", "")
        if count > self.max_redirects:
            self.blocked = errors.TooManyRedirects(f"more than {self.max_redirects} redirects (stopped before {url})")
        else:
            self.check_unblocked(url)
        if self.blocked is not None:
            self.bidi.send("network.failRequest", {"request": request_id})
            return
        self.bidi.send("network.continueRequest", {"request": request_id, **self._changes(request, count)})

    def _changes(self, request: dict, count: int) -> dict:
        """What our hop ``count`` carries that the browser's own request would not: the goto's
        method, body, headers."""
        goto = self.request
        changes: dict = {}
        method = request.get("method", "GET")
        if count == 0 and goto.method.upper() != "GET":
            method = goto.method.upper()
            changes["method"] = method
        send_body = goto.body is not None and (count == 0 or method not in ("GET", "HEAD"))
        if send_body:
            changes["body"] = {"type": "base64", "value": base64.b64encode(goto.body or b"").decode()}
        if count > 0 and not self.left_origin:
            self.left_origin = request_headers.cross_origin(goto.url, request.get("url", ""))
        if self.add_headers or send_body:
            # A hop that dropped the body (303, or 301/302 after POST) drops its Content-Type too,
            # as HTTP clients do.
            dropped = {"content-type"} if goto.body is not None and not send_body else set()
            ours = {name.lower() for name, _ in self.add_headers}  # the browser may carry them over
            added = self.add_headers
            if self.left_origin:
                added = request_headers.on_other_origin(self.add_headers)
                ours.discard("cookie")  # the jar's own cookies for this origin stay (the frame's go below)
            kept = (self._without_frame_cookies(h) for h in request.get("headers") or [])
            headers = [h for h in kept if h is not None and h["name"].lower() not in ours | BROWSER_OWNED | dropped]
            headers += [{"name": n, "value": {"type": "string", "value": v}} for n, v in added if n.lower() not in dropped]
            changes["headers"] = headers
        return changes

    def _without_frame_cookies(self, header: dict) -> dict | None:
        """A browser's own header as it goes on; its ``Cookie`` without the frame's cookies
        (Firefox carries a header set on one hop over to the next), None when none is left."""
        value = header.get("value") or {}
        if header["name"].lower() != "cookie" or value.get("type") != "string":
            return {"name": header["name"], "value": value}
        left = request_headers.without_pairs(value["value"], request_headers.header(self.add_headers, "cookie"))
        return {"name": header["name"], "value": {"type": "string", "value": left}} if left else None

    def check_unblocked(self, url: str) -> None:
        """The network policy for one hop. Page-started navigations are not interceptable in
        Chrome, so theirs are checked as they are seen (the request is already on its way)."""
        if self.blocked is not None:
            return
        try:
            self.policy.check_url(url)
        except errors.ServiceError as exc:
            self.blocked = exc

    def remove_intercept(self) -> None:
        if self.intercept is not None:
            intercept, self.intercept = self.intercept, None
            self.removal = self.bidi.send("network.removeIntercept", {"intercept": intercept})

    # ----- questions about the record -------------------------------------------------------
    def raise_blocked(self) -> None:
        if self.blocked is not None:
            raise self.blocked

    def newer(self, seen: set[str]) -> list[Track]:
        """Navigations that started after the ones in ``seen`` and sent a request."""
        return [t for n, t in self.tracks.items() if n not in seen and t.hops]

    def finished(self, track: Track) -> bool:
        return track.loaded or track.failed or track.error is not None or self.blocked is not None

    def redirect_total(self) -> int:
        server = sum(max(0, len(t.hops) - 1) for t in self.tracks.values())
        return server + len(self.client_hops)
