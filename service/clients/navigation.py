"""One goto in a browser, read off WebDriver BiDi network events (never off the DOM).

How a goto runs (``Navigation.run``):

1. Per goto: user-agent override (when it changed), request cookies into the browser's jar
   (``storage.setCookie``, no partition), a data collector for response bodies, and one
   intercept on ``beforeRequestSent`` + ``responseStarted`` scoped to the session's context.
2. ``browsingContext.navigate(wait=complete)`` is sent without waiting; the loop answers blocked
   requests meanwhile. Each hop of our navigation (same navigation id) is checked against
   ``max_redirects`` and the network policy before it is sent (``failRequest`` otherwise) and gets
   the goto's method/body/headers/referrer. Blocking each hop's ``responseStarted`` too means hop
   data is read while the hop is paused (Chrome's unpaused redirect events are unreliable) and
   the intercept is removed before the final response reaches the page, so no page-started
   navigation (meta refresh, script) ever meets an intercept: the Chrome traps never arm.
3. After load, a short settle window catches client-side redirects, followed without intercepts.
4. Status and headers come from the paused ``responseStarted`` (Chrome: the raw header text of
   CDP ``Network.responseReceivedExtraInfo`` when present, which keeps order and repeats), the
   body from the data collector.
"""

from __future__ import annotations

import base64
import functools
import logging
from typing import TYPE_CHECKING

from service import errors, redirects
from service.clients.browser_blocking import Blocking
from service.clients.browser_headers import BROWSER_OWNED, bidi_headers, wire_headers
from service.clients.navigation_record import Hop, Track, chain_and_cookies, cookie_params, location_of  # noqa: F401
from service.deadline import Deadline
from service.headers import header_value, media_type, reportable
from service.model import GotoRequest, GotoResult, Redirect

if TYPE_CHECKING:
    from service.clients.bidi import Bidi
    from service.clients.browser_launch import Launched
    from service.clients.browser_options import BrowserSettings
    from service.middleware import Chain
    from service.model import Egress
    from service.policy import Policy

logger = logging.getLogger(__name__)

# Not browsingContext.navigationStarted: in Firefox, subscribing to it makes every intercepted
# navigation ~40 ms slower; beforeRequestSent carries the navigation id anyway.
EVENTS = (
    "network.beforeRequestSent",
    "network.responseStarted",
    "network.responseCompleted",
    "network.fetchError",
    "network.authRequired",
    "browsingContext.load",
    "browsingContext.navigationFailed",
)
CHROME_EVENTS = ("goog:cdp.Network.responseReceivedExtraInfo",)
EMPTY_STATUSES = frozenset({204, 205, 304})
STOP_BOUND = 2.0


SETTLE_PROBE = """async function() {
  await new Promise(r => setTimeout(r, 0));
  const m = document.querySelector('meta[http-equiv="refresh" i]');
  let delay = -1;
  if (m) { const x = parseFloat((m.content || "").split(/[;,]/)[0]); delay = isNaN(x) ? 0 : x; }
  return {meta: delay, scripts: document.scripts.length};
}"""


class Navigation:
    """One goto attempt. Built and run by the session thread."""

    def __init__(
        self,
        launched: Launched,
        settings: BrowserSettings,
        max_redirects: int,
        policy: Policy,
        egress: Egress | None = None,
        middleware: Chain | None = None,
    ):
        self.launched = launched
        self.bidi: Bidi = launched.bidi
        self.context = launched.context
        self.settings = settings
        self.max_redirects = max_redirects
        self.policy = policy
        self.egress = egress
        self.tracks: dict[str, Track] = {}
        self.by_request: dict[str, Track] = {}
        self.main: Track | None = None
        self.extra: dict[str, list[str]] = {}  # Chrome: request id -> raw header blocks
        self.intercept: str | None = None
        self.removal: int | None = None  # the removeIntercept command, once sent
        # Chrome: pause each response too (hop data is only reliable while paused, and the
        # intercept must be gone before the page runs). Firefox: pausing a response costs ~45 ms
        # and neither reason applies, so the intercept goes on the final responseStarted event.
        self.phases = (
            ["beforeRequestSent", "responseStarted", "authRequired"]
            if launched.kind == "chrome"
            else ["beforeRequestSent", "authRequired"]
        )
        self.blocked: Exception | None = None
        self.request: GotoRequest | None = None
        self.add_headers: list[tuple[str, str]] = []
        # The block middleware: its own intercept on every request of the context, alive from
        # before the navigation until the goto returns (see browser_blocking).
        self.blocking = Blocking(self.bidi, self.context, middleware)
        self.collector: str | None = None
        self.early_body: tuple[str, int] | None = None  # (request id, getData command) sent ahead

    # ----- the loop -------------------------------------------------------------------------
    def run(self, request: GotoRequest, deadline: Deadline) -> GotoResult:
        self.request = request
        self.add_headers = wire_headers(request)
        bidi = self.bidi
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
            self.intercept = intercept_reply["intercept"]
        if isinstance(collector_reply, Exception):
            self._remove_intercept()
            if self.removal is not None:
                bidi.forget(self.removal)
            raise collector_reply
        collector = self.collector = collector_reply["collector"]
        try:
            if isinstance(intercept_reply, Exception):
                raise intercept_reply
            self.blocking.start(deadline)
            nav_cmd = bidi.send(
                "browsingContext.navigate",
                {"context": self.context, "url": request.url, "wait": "complete"},
            )
            reply_error = self._pump_until(lambda: bidi.has_reply(nav_cmd), deadline, nav_cmd)
            final = self._settle(deadline, reply_error)
            result = self._result(final, collector, deadline)
        except BaseException:
            self._cleanup(collector)
            self._blank()
            raise
        finally:
            with bidi.cond:
                bidi.listening = False
                bidi.events.clear()
        self._cleanup(collector)
        result.blocked = self.blocking.count
        return result

    def _blank(self) -> None:
        """After a failed goto, load about:blank (no intercept is active by now): Chrome otherwise
        keeps loading its error page, and that load meeting the next goto's intercept wedges it."""
        try:
            self.bidi.command(
                "browsingContext.navigate",
                {"context": self.context, "url": "about:blank", "wait": "complete"},
                STOP_BOUND,
            )
        except Exception as exc:  # noqa: BLE001 - best effort; a dead browser surfaces on the next call
            logger.debug("loading about:blank after a failed goto failed: %r", exc)

    def _pump_until(self, done, deadline: Deadline, nav_cmd: int | None) -> str | None:
        """Handle events until ``done()``; returns the navigate command's error text, if any."""
        bidi = self.bidi
        while True:
            with bidi.cond:
                arrived = bidi.wait(lambda: bool(bidi.events) or done(), deadline)
                events = list(bidi.events)
                bidi.events.clear()
            for method, params in events:
                self._on_event(method, params)
            if not arrived and not events:
                if nav_cmd is not None:
                    bidi.forget(nav_cmd)
                self._abort(deadline)
                raise errors.GatewayTimeout(
                    f"navigation to {self.request.url} did not finish within {deadline.seconds:g}s"  # type: ignore[union-attr]
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

    def _on_event(self, method: str, params: dict) -> None:
        if method.startswith("goog:cdp."):
            inner = params.get("params") or {}
            text = inner.get("headersText")
            if text is not None:
                self.extra.setdefault(inner.get("requestId", ""), []).append(text)
            else:
                self.extra.setdefault(inner.get("requestId", ""), []).append("")
            return
        if params.get("context") not in (None, self.context):
            if method == "network.beforeRequestSent" and params.get("isBlocked"):
                self.blocking.foreign(params)  # a frame's request, paused by the block intercept
            return
        nav = params.get("navigation")
        if method.startswith("browsingContext."):
            if nav is None:
                return
            track = self.tracks.get(nav)
            if method == "browsingContext.navigationStarted" and track is None and (self.main or nav):
                self.tracks[nav] = track = Track(navigation=nav)
                if self.main is None:
                    self.main = track
            elif track is not None and method == "browsingContext.load":
                track.loaded = True
            elif track is not None and method == "browsingContext.navigationFailed":
                track.failed = True
            return
        request = params.get("request") or {}
        request_id = request.get("request")
        count = params.get("redirectCount") or 0
        track = self.by_request.get(
            request_id
        )  # Chrome may tag a request's late events with a newer navigation
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
                self._check_unblocked(request.get("url", ""))
        elif method in ("network.responseStarted", "network.responseCompleted"):
            response = params.get("response") or {}
            if mine:
                hop = track.hop(count, response.get("url") or request.get("url", ""))  # type: ignore[union-attr]
                if (response.get("status") or 0) > 0 and (
                    hop.status is None or method == "network.responseStarted"
                ):
                    hop.status = response.get("status")
                    hop.headers = bidi_headers(response.get("headers"))
                size = (response.get("content") or {}).get("size")
                if method == "network.responseCompleted" and isinstance(size, int):
                    hop.size = size
            final = response.get("status") not in redirects.REDIRECT_STATUSES or not header_value(
                bidi_headers(response.get("headers")), "location"
            )
            challenged = response.get("status") in (401, 407) and self.launched.kind == "firefox"
            if final and mine and track is self.main and method == "network.responseStarted" and not challenged:
                self._remove_intercept()  # Firefox keeps it for a challenge: its authRequired is answered
            if params.get("isBlocked"):
                self.bidi.send("network.continueResponse", {"request": request_id})
        elif method == "network.authRequired" and params.get("isBlocked"):
            # A server's 401/407 challenge is never answered (no credential of ours may reach a
            # site): the browser shows the response as it is. Firefox would otherwise wait on a
            # login prompt nobody can see.
            self.bidi.send("network.continueWithAuth", {"request": request_id, "action": "cancel"})
        elif method == "network.fetchError" and mine:
            track.error = params.get("errorText") or "navigation failed"  # type: ignore[union-attr]

    def _continue_request(self, params: dict, track: Track | None, count: int) -> None:
        request = params["request"]
        request_id = request["request"]
        if track is None or track is not self.main:
            self.bidi.send("network.continueRequest", {"request": request_id})
            return
        url = request.get("url", "")
        if count > self.max_redirects:
            self.blocked = errors.TooManyRedirects(
                f"more than {self.max_redirects} redirects (stopped before {url})"
            )
        else:
            self._check_unblocked(url)
        if self.blocked is not None:
            self.bidi.send("network.failRequest", {"request": request_id})
            return
        goto = self.request
        assert goto is not None
        changes: dict = {}
        method = request.get("method", "GET")
        if count == 0 and goto.method.upper() != "GET":
            method = goto.method.upper()
            changes["method"] = method
        send_body = goto.body is not None and (count == 0 or method not in ("GET", "HEAD"))
        if send_body:
            changes["body"] = {
                "type": "base64",
                "value": base64.b64encode(goto.body or b"").decode(),
            }
        if self.add_headers or send_body:
            # A hop that dropped the body (303, or 301/302 after POST) drops its Content-Type too,
            # as HTTP clients do.
            dropped = {"content-type"} if goto.body is not None and not send_body else set()
            ours = {name.lower() for name, _ in self.add_headers}
            headers = [
                {"name": h["name"], "value": h["value"]}
                for h in request.get("headers") or []
                if h["name"].lower() not in ours | BROWSER_OWNED | dropped
            ]
            headers += [
                {"name": n, "value": {"type": "string", "value": v}}
                for n, v in self.add_headers
                if n.lower() not in dropped
            ]
            changes["headers"] = headers
        self.bidi.send("network.continueRequest", {"request": request_id, **changes})

    def _check_unblocked(self, url: str) -> None:
        """The network policy for one hop. Page-started navigations are not interceptable in
        Chrome, so theirs are checked as they are seen (the request is already on its way)."""
        if self.blocked is not None:
            return
        try:
            self.policy.check_url(url)
        except errors.ServiceError as exc:
            self.blocked = exc

    def _remove_intercept(self) -> None:
        if self.intercept is not None:
            intercept, self.intercept = self.intercept, None
            self.removal = self.bidi.send("network.removeIntercept", {"intercept": intercept})

    # ----- after navigate answered ----------------------------------------------------------
    def _settle(self, deadline: Deadline, reply_error: str | None) -> Track:
        """Follow client-side redirects seen within the settle window; the final track."""
        self._raise_blocked()
        current = self.main
        if current is None:
            raise errors.UpstreamError(
                f"navigation to {self.request.url} failed: {reply_error or 'no request seen'}"
            )  # type: ignore[union-attr]
        concurrent = reply_error is not None and "concurrent navigation" in reply_error
        if reply_error is not None and not concurrent:
            self._raise_failed(current, reply_error)
            return current  # aborted but answered (204, a download): report what came
        self.client_hops: list[Redirect] = []
        seen = {current.navigation}
        if current.request and self.collector and self.request.method != "HEAD":  # type: ignore[union-attr]
            # The body is asked for with the settle probe, in the same round trip: the document
            # has loaded (navigate waited for "complete"), so its data is complete. A client
            # redirect makes this one unused; it is then forgotten.
            ident = self.bidi.send(
                "network.getData",
                {"dataType": "response", "collector": self.collector, "request": current.request},
            )
            self.early_body = (current.request, ident)
        while True:
            window = (
                deadline.remaining()
                if concurrent
                else min(self._settle_window(deadline), deadline.remaining())
            )
            self._pump_quietly(functools.partial(self._newer, seen), Deadline(window))
            fresh = self._newer(seen)
            if not fresh:
                if concurrent:
                    raise errors.GatewayTimeout(
                        "navigation was replaced by a client redirect that never started"
                    )
                return current
            concurrent = False
            nxt = fresh[0]
            seen.add(nxt.navigation)
            source = current.hops[-1].url if current.hops else self.request.url  # type: ignore[union-attr]
            self.client_hops.append(redirects.client_hop(source, nxt.hops[0].url))
            if self._redirect_total() > self.max_redirects:
                self._abort(deadline)
                raise errors.TooManyRedirects(
                    f"more than {self.max_redirects} redirects (client redirect to {nxt.hops[0].url})"
                )
            self._pump_until(functools.partial(self._finished, nxt), deadline, None)
            self._raise_blocked()
            if self._redirect_total() > self.max_redirects:
                raise errors.TooManyRedirects(
                    f"more than {self.max_redirects} redirects (after client redirect)"
                )
            if nxt.error is not None or nxt.failed:
                self._raise_failed(nxt, nxt.error or "navigation failed")
            current = nxt

    def _settle_window(self, deadline: Deadline) -> float:
        """How long to watch for a client redirect: the settle window when the page can still
        redirect itself (a meta refresh due within the window, or any script), else nothing.
        The in-page probe first yields a task so a location change made during load starts."""
        settle = self.settings.client_redirect_settle
        try:
            reply = self.bidi.command(
                "script.callFunction",
                {
                    "functionDeclaration": SETTLE_PROBE,
                    "target": {"context": self.context},
                    "awaitPromise": True,
                },
                min(STOP_BOUND, deadline.remaining()),
            )
        except Exception as exc:  # noqa: BLE001 - the page went away: a navigation is under way
            logger.debug("settle probe failed: %r", exc)
            return settle
        fields = {k: v.get("value") for k, v in (reply.get("result") or {}).get("value") or []}
        meta, scripts = fields.get("meta", -1), fields.get("scripts", 0)
        if meta is not None and 0 <= meta <= settle:
            return meta + settle
        return settle if scripts else 0.0

    def _pump_quietly(self, done, window: Deadline) -> None:
        bidi = self.bidi
        first = True
        while not done() and (first or not window.expired()):
            first = False
            with bidi.cond:
                bidi.wait(lambda: bool(bidi.events) or done(), window)
                events = list(bidi.events)
                bidi.events.clear()
            for method, params in events:
                self._on_event(method, params)

    def _newer(self, seen: set[str]) -> list[Track]:
        """Navigations that started after the ones in ``seen`` and sent a request."""
        return [t for n, t in self.tracks.items() if n not in seen and t.hops]

    def _finished(self, track: Track) -> bool:
        return track.loaded or track.failed or track.error is not None or self.blocked is not None

    def _redirect_total(self) -> int:
        server = sum(max(0, len(t.hops) - 1) for t in self.tracks.values())
        return server + len(getattr(self, "client_hops", []))

    def _raise_blocked(self) -> None:
        if self.blocked is not None:
            raise self.blocked

    def _raise_failed(self, track: Track, reply_error: str) -> None:
        last = track.hops[-1] if track.hops else None
        if last is not None and (last.status or 0) > 0 and last.status not in redirects.REDIRECT_STATUSES:
            return
        reason = track.error or reply_error
        url = last.url if last else self.request.url  # type: ignore[union-attr]
        self._raise_gateway_answer(url)
        location = location_of(track, self.extra) if last is not None else None
        if location is not None:
            # the browser would not follow it (a bad port, host, scheme): not worth a retry
            raise errors.BadAnswer(f"fetching {url} failed: {reason}: invalid Location {location[:200]!r}")
        if "INVALID_REDIRECT" in reason or "UNSAFE_REDIRECT" in reason:
            # Chrome reports neither the response nor its Location for these
            raise errors.BadAnswer(f"fetching {url} failed: {reason}: the server's Location is not one to follow")
        raise errors.UpstreamError(f"fetching {url} failed: {reason}")

    def _raise_gateway_answer(self, url: str) -> None:
        """When the egress gateway answered ``url`` itself (a refusal, an unreachable target or
        upstream proxy), the goto reports that as an error, not as the server's page."""
        answer = self.egress.answered(url) if self.egress is not None else None
        if answer is None:
            return
        code, message = answer
        message = message.removeprefix("inndx egress gateway: ")
        if code == 403:
            raise errors.Forbidden(message)
        raise errors.UpstreamError(message)

    # ----- the result -----------------------------------------------------------------------
    def _result(self, final: Track, collector: str, deadline: Deadline) -> GotoResult:
        chain, cookies = chain_and_cookies(
            [t for t in self.tracks.values() if t.hops], self.extra, list(getattr(self, "client_hops", [])), final
        )
        last = final.hops[-1]
        status = last.status or 0
        if status in (400, 403, 502, 503):
            self._raise_gateway_answer(last.url)
        if status and not 100 <= status <= 999:  # browsers take "HTTP/1.1 099" as 99; no HTTP status is
            raise errors.BadAnswer(f"{last.url} answered an invalid status code {status}")
        body = None
        if status not in EMPTY_STATUSES and last.method != "HEAD" and final.request:
            body = self._body(collector, final.request, deadline)
            length = header_value(last.headers, "content-length") or ""
            declared = max(last.size or 0, int(length) if length.isdigit() else 0)
            if body is None and declared > self.settings.max_body_bytes:  # Firefox does not keep it
                raise errors.TooLarge(f"response body is over {self.settings.max_body_bytes} bytes")
        return GotoResult(
            url=last.url,
            status_code=status,
            headers=reportable(last.headers),
            cookies=cookies,
            body=body or None,
            redirects=chain,
            content_type=media_type(last.headers),
        )

    def _body(self, collector: str, request_id: str, deadline: Deadline) -> bytes | None:
        from service.clients.bidi import BidiError

        early, self.early_body = self.early_body, None
        try:
            if early is not None and early[0] == request_id:
                data = self._reply_of(early[1], deadline)
            else:
                if early is not None:
                    self.bidi.forget(early[1])
                data = self.bidi.command(
                    "network.getData",
                    {"dataType": "response", "collector": collector, "request": request_id},
                    deadline,
                )
        except BidiError as exc:
            logger.debug("no body for the final response: %s", exc)
            return None
        value = data.get("bytes") or {}
        raw = (
            base64.b64decode(value.get("value", ""))
            if value.get("type") == "base64"
            else value.get("value", "").encode()
        )
        if len(raw) > self.settings.max_body_bytes:
            raise errors.TooLarge(f"response body is over {self.settings.max_body_bytes} bytes")
        return raw

    def _reply_of(self, ident: int, deadline: Deadline) -> dict:
        bidi = self.bidi
        with bidi.cond:
            arrived = bidi.wait(lambda: bidi.has_reply(ident), deadline)
        if not arrived:
            bidi.forget(ident)
            raise TimeoutError("BiDi network.getData got no answer in time")
        return bidi.take_reply(ident) or {}

    # ----- cleanup --------------------------------------------------------------------------
    def _abort(self, deadline: Deadline) -> None:
        """Stop the load so the browser stays usable (after a timeout or a refused hop)."""
        # window.stop() cannot run while Chrome waits for a response (the script waits for the
        # navigation); the new navigation to about:blank that ``_blank`` makes cancels the load.
        self._remove_intercept()

    def _cleanup(self, collector: str) -> None:
        """Remove the intercept and collector; continue whatever is still blocked."""
        bidi = self.bidi
        self._remove_intercept()
        if self.early_body is not None:
            bidi.forget(self.early_body[1])
            self.early_body = None
        bidi.post("network.removeDataCollector", {"collector": collector})  # its reply buys nothing
        commands = list(self.blocking.stop())
        if self.removal is not None:
            commands.append(self.removal)
        # A request blocked before the removal took effect is reported before its reply: answer
        # it, or it hangs forever (and with it the page, and Firefox's quit).
        with bidi.cond:
            bidi.listening = True
        try:
            self._pump_quietly(lambda: all(bidi.has_reply(c) for c in commands), Deadline(STOP_BOUND))
            with bidi.cond:
                bidi.listening = False
                events = list(bidi.events)
                bidi.events.clear()
            for method, params in events:
                self._on_event(method, params)
        finally:
            for command in commands:
                bidi.forget(command)
