"""After a goto's navigate answered: client-side redirects (a meta refresh, a script changing the
location during load) seen within a settle window are followed, without intercepts, and reported
as ``side: client`` hops. One in-page probe (a few ms) first says whether the page can still
redirect itself at all: only then is the window (``client_redirect_settle``) waited out.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from service import errors, redirects
from service.clients.navigation_events import STOP_BOUND
from service.clients.navigation_reply import raise_failed
from service.deadline import Deadline

if TYPE_CHECKING:
    from service.clients.browser_options import BrowserSettings
    from service.clients.navigation_events import NavigationEvents
    from service.clients.navigation_record import Track
    from service.clients.navigation_reply import Body
    from service.model import Egress

logger = logging.getLogger(__name__)

SETTLE_PROBE = """async function() {
  await new Promise(r => setTimeout(r, 0));
  const m = document.querySelector('meta[http-equiv="refresh" i]');
  let delay = -1;
  if (m) { const x = parseFloat((m.content || "").split(/[;,]/)[0]); delay = isNaN(x) ? 0 : x; }
  return {meta: delay, scripts: document.scripts.length};
}"""


def settle(
    events: NavigationEvents,
    body: Body | None,
    settings: BrowserSettings,
    egress: Egress | None,
    reply_error: str | None,
    deadline: Deadline,
) -> Track:
    """Follow client-side redirects seen within the settle window; the final track. ``body`` (when
    the goto wants one) is asked for with the settle probe, in the same round trip."""
    events.raise_blocked()
    current = events.main
    request = events.request
    if current is None:
        raise errors.UpstreamError(f"navigation to {request.url} failed: {reply_error or 'no request seen'}")
    concurrent = reply_error is not None and "concurrent navigation" in reply_error
    if reply_error is not None and not concurrent:
        raise_failed(events, current, reply_error, egress)
        return current  # aborted but answered (204, a download): report what came
    seen = {current.navigation}
    if current.request and body is not None and request.method != "HEAD":
        # The document has loaded (navigate waited for "complete"), so its data is complete. A
        # client redirect makes this one unused; it is then forgotten.
        body.ask(current.request)
    while True:
        window = (
            deadline.remaining()
            if concurrent
            else min(settle_window(events, settings, deadline), deadline.remaining())
        )
        events.pump_quietly(functools.partial(events.newer, seen), Deadline(window))
        fresh = events.newer(seen)
        if not fresh:
            if concurrent:
                raise errors.GatewayTimeout("navigation was replaced by a client redirect that never started")
            return current
        concurrent = False
        nxt = fresh[0]
        seen.add(nxt.navigation)
        source = current.hops[-1].url if current.hops else request.url
        events.client_hops.append(redirects.client_hop(source, nxt.hops[0].url))
        if events.redirect_total() > events.max_redirects:
            events.remove_intercept()
            raise errors.TooManyRedirects(
                f"more than {events.max_redirects} redirects (client redirect to {nxt.hops[0].url})"
            )
        events.pump_until(functools.partial(events.finished, nxt), deadline, None)
        events.raise_blocked()
        if events.redirect_total() > events.max_redirects:
            raise errors.TooManyRedirects(f"more than {events.max_redirects} redirects (after client redirect)")
        if nxt.error is not None or nxt.failed:
            raise_failed(events, nxt, nxt.error or "navigation failed", egress)
        current = nxt


def settle_window(events: NavigationEvents, settings: BrowserSettings, deadline: Deadline) -> float:
    """How long to watch for a client redirect: the settle window when the page can still
    redirect itself (a meta refresh due within the window, or any script), else nothing.
    The in-page probe first yields a task so a location change made during load starts."""
    settle_for = settings.client_redirect_settle
    try:
        reply = events.bidi.command(
            "script.callFunction",
            {
                "functionDeclaration": SETTLE_PROBE,
                "target": {"context": events.context},
                "awaitPromise": True,
            },
            min(STOP_BOUND, deadline.remaining()),
        )
    except Exception as exc:  # noqa: BLE001 - the page went away: a navigation is under way
        logger.debug("settle probe failed: %r", exc)
        return settle_for
    fields = {k: v.get("value") for k, v in (reply.get("result") or {}).get("value") or []}
    meta, scripts = fields.get("meta", -1), fields.get("scripts", 0)
    if meta is not None and 0 <= meta <= settle_for:
        return meta + settle_for
    return settle_for if scripts else 0.0
