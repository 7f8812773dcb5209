"""After a goto's navigate answered: client-side redirects (a meta refresh, a script changing the
location during load) seen within a settle window are followed, without intercepts, and reported
as ``side: client`` hops. The page's settle signal (an event one task after its load, from a
preload script; an in-page probe when it is late) first says whether the page can still redirect
itself at all: only then is the window (``client_redirect_settle``) waited out.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from service import errors, redirects
from service.clients.bidi import BrowserUnresponsive
from service.clients.navigation_events import STOP_BOUND
from service.clients.navigation_record import PAGE_FACTS, SETTLE_KINDS, SETTLE_SANDBOX, page_facts
from service.clients.navigation_reply import raise_failed
from service.deadline import Deadline

if TYPE_CHECKING:
    from service.clients.browser_options import BrowserSettings
    from service.clients.navigation_events import NavigationEvents
    from service.clients.navigation_record import Track
    from service.model import Egress

logger = logging.getLogger(__name__)

# Asked of the page only when its settle signal is late (see navigation_record.SETTLE_SIGNAL).
SETTLE_PROBE = "async function() { await new Promise(r => setTimeout(r, 0)); return " + PAGE_FACTS + "; }"
SIGNAL_LAG = 0.02  # seconds the settle signal may trail the navigate's reply before the page is asked


def settle(
    events: NavigationEvents,
    settings: BrowserSettings,
    egress: Egress | None,
    reply_error: str | None,
    deadline: Deadline,
) -> Track:
    """Follow client-side redirects seen within the settle window; the final track."""
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
    events.ask_body(current)  # asked already when its response completed, unless that event was missed
    while True:
        window = (
            deadline.remaining()
            if concurrent
            else min(settle_window(events, current, settings, deadline), deadline.remaining())
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


def settle_window(events: NavigationEvents, track: Track, settings: BrowserSettings, deadline: Deadline) -> float:
    """How long to watch for a client redirect: the settle window when the page can still
    redirect itself (a meta refresh due within the window, or any script), else nothing."""
    settle_for = settings.client_redirect_settle
    facts = page_facts_of(events, track, deadline)
    if facts is None:  # the page went away or did not answer: a navigation may be under way
        return settle_for
    meta, scripts = facts
    if 0 <= meta <= settle_for:
        return meta + settle_for
    return settle_for if scripts else 0.0


def page_facts_of(events: NavigationEvents, track: Track, deadline: Deadline) -> tuple[float, int] | None:
    """The track's settle signal, which follows its load event by one task; when it is late, the
    same facts asked of the page (whichever comes first; Chrome has no signal: it asks at once).
    None when neither came in time."""
    if events.kind in SETTLE_KINDS:
        events.pump_quietly(lambda: track.facts is not None, Deadline(min(SIGNAL_LAG, deadline.remaining())))
        if track.facts is not None:
            return track.facts
    bidi = events.bidi
    probe = bidi.send(
        "script.callFunction",
        {
            "functionDeclaration": SETTLE_PROBE,
            "target": {"context": events.context, "sandbox": SETTLE_SANDBOX},  # out of the page's reach
            "awaitPromise": True,
        },
    )
    try:
        events.pump_quietly(
            lambda: track.facts is not None or bidi.has_reply(probe), Deadline(min(STOP_BOUND, deadline.remaining()))
        )
        if track.facts is not None:
            return track.facts
        reply = bidi.take_reply(probe)
    except BrowserUnresponsive:
        raise
    except Exception as exc:  # noqa: BLE001 - the page went away: a navigation is under way
        logger.debug("settle probe failed: %r", exc)
        return None
    finally:
        bidi.forget(probe)
    return None if reply is None else page_facts(reply.get("result"))
