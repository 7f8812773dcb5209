"""``wait_for`` in a browser: until a selector reaches a state, a text shows, the top-level URL
matches a glob, the user's script returns something truthy, or no request is in flight for a
while; ``GatewayTimeout`` (504) past the action's deadline, and the session goes on.

- selector and text are polled in our sandbox (every 25 ms, one ``script.callFunction`` for the
  whole wait), the user's script in the page's world (every 50 ms). A navigation that replaces
  the document during the wait ends that call; the wait starts again in the new document.
- url: the context's URL from ``browsingContext.getTree``, read again on each of its events and
  at least every 250 ms; the glob is ``fnmatch``'s (``*`` any run of characters, ``/`` included).
- network_idle: the session's network events (requests of the page and its frames) counted from
  the start of the wait; it ends when none has been in flight for the duration asked. A request
  already in flight when the wait starts is not seen.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from service import errors
from service.clients import browser_page as page
from service.clients.bidi import BidiError
from service.clients.page_scripts import SANDBOX, SYNTAX
from service.deadline import Deadline

if TYPE_CHECKING:
    from service.clients.bidi import Bidi

MARGIN = 0.2  # seconds left to the in-page poll's answer before the action's deadline
URL_POLL = 0.25  # seconds between reads of the URL when no event comes

# "ok", "timeout", or "invalid:<why>" for a selector that does not parse
WAIT_SELECTOR = """async function(kind, arg, state, waitMs) {
  const end = performance.now() + waitMs;
  const visible = (el) => {
    const style = getComputedStyle(el), rect = el.getBoundingClientRect();
    return style.visibility !== "hidden" && style.display !== "none" && rect.width > 0 && rect.height > 0;
  };
  const test = () => {
    if (kind === "text") return !!document.body && document.body.innerText.includes(arg);
    const el = document.querySelector(arg);
    if (state === "attached") return !!el;
    if (state === "hidden") return !el || !visible(el);
    return !!el && visible(el);
  };
  for (;;) {
    try { if (test()) return "ok"; }
    catch (e) { return "invalid:" + String(e.message || e); }
    if (performance.now() >= end) return "timeout";
    await new Promise(r => setTimeout(r, 25));
  }
}"""

# true when the user's function body returned something truthy, false past waitMs
WAIT_SCRIPT = """async function(waitMs) {
  const end = performance.now() + waitMs;
  for (;;) {
    if (await (async function() {
%s
    })()) return true;
    if (performance.now() >= end) return false;
    await new Promise(r => setTimeout(r, 50));
  }
}"""


def wait_for(bidi: Bidi, context: str, args: Mapping[str, Any], deadline: Deadline) -> None:
    kind = args["kind"]
    if kind == "url":
        return _wait_url(bidi, context, args["url"], deadline)
    if kind == "network_idle":
        return _wait_idle(bidi, context, args["network_idle"], deadline)
    if kind == "script":
        syntax = page.call(bidi, context, SYNTAX, [args["script"]], deadline, activation=False, sandbox=SANDBOX)
        if syntax != "":
            raise errors.ScriptError(f"the script is not a function body: {str(syntax)[1:2000]}")
    what = _describe(args)
    while True:
        wait_ms = int(1000 * max(0.0, deadline.remaining() - MARGIN))
        try:
            if kind == "script":
                done = page.call(bidi, context, WAIT_SCRIPT % args["script"], [wait_ms], deadline, user_error=True)
            else:
                arg = args[kind]
                call_args = [kind, arg, args.get("state", "visible"), wait_ms]
                done = page.call(bidi, context, WAIT_SELECTOR, call_args, deadline, activation=False, sandbox=SANDBOX)
        except errors.GatewayTimeout:
            raise _timeout(what, deadline) from None
        except (BidiError, errors.InternalError):
            # the document went away under the call (a navigation): wait again in the new one
            if deadline.remaining() <= MARGIN:
                raise _timeout(what, deadline) from None
            _pause(bidi, min(0.05, deadline.remaining()))
            continue
        if isinstance(done, str) and done.startswith("invalid:"):
            raise errors.BadRequest(f"invalid CSS selector {args.get('selector')!r}: {done[8:300]}")
        if done is True or done == "ok":
            return None
        if deadline.remaining() <= MARGIN:
            raise _timeout(what, deadline)


def _describe(args: Mapping[str, Any]) -> str:
    kind = args["kind"]
    if kind == "selector":
        return f"{args['selector']!r} to be {args['state']}"
    if kind == "network_idle":
        return f"{args['network_idle']:g}s with no request in flight"
    if kind == "script":
        return "the script to return a truthy value"
    return f"the {kind} {args[kind][:200]!r}"


def _timeout(what: str, deadline: Deadline) -> errors.GatewayTimeout:
    return errors.GatewayTimeout(f"wait_for: waited {deadline.seconds:g}s for {what}; it did not come")


def _pause(bidi: Bidi, seconds: float) -> None:
    """A bounded pause that ends early on any event we listen to."""
    with bidi.cond:
        bidi.wait(lambda: bool(bidi.events), seconds)


def _current_url(bidi: Bidi, context: str, deadline: Deadline) -> str:
    tree = bidi.command("browsingContext.getTree", {"root": context, "maxDepth": 0}, deadline)
    return (tree.get("contexts") or [{}])[0].get("url", "")


def _wait_url(bidi: Bidi, context: str, glob: str, deadline: Deadline) -> None:
    with bidi.cond:
        bidi.events.clear()
        bidi.listening = True
    try:
        while True:
            try:
                url = _current_url(bidi, context, deadline)
            except TimeoutError:
                raise _timeout(f"the URL to match {glob[:200]!r}", deadline) from None
            if fnmatch.fnmatchcase(url, glob):
                return
            if deadline.remaining() <= 0:
                raise _timeout(f"the URL to match {glob[:200]!r} (it is {url[:200]!r})", deadline)
            with bidi.cond:
                bidi.events.clear()
                bidi.wait(lambda: bool(bidi.events), min(URL_POLL, deadline.remaining()))
    finally:
        with bidi.cond:
            bidi.listening = False
            bidi.events.clear()


REQUEST_START = "network.beforeRequestSent"
REQUEST_END = ("network.responseCompleted", "network.fetchError")


def _wait_idle(bidi: Bidi, context: str, idle: float, deadline: Deadline) -> None:
    in_flight: set[str] = set()
    quiet_since = time.monotonic()

    def scan() -> bool:
        nonlocal quiet_since
        while bidi.events:
            method, params = bidi.events.popleft()
            request = (params.get("request") or {}).get("request")
            if not isinstance(request, str):
                continue
            if method == REQUEST_START:
                in_flight.add(request)
            elif method in REQUEST_END:
                in_flight.discard(request)
                if not in_flight:
                    quiet_since = time.monotonic()
        return not in_flight and time.monotonic() - quiet_since >= idle

    with bidi.cond:
        bidi.events.clear()
        bidi.listening = True
        try:
            while not scan():
                left = deadline.remaining()
                if left <= 0:
                    busy = f"; {len(in_flight)} in flight" if in_flight else ""
                    raise _timeout(f"{idle:g}s with no request in flight{busy}", deadline)
                step = left if in_flight else min(left, idle - (time.monotonic() - quiet_since))
                bidi.wait(lambda: bool(bidi.events), max(0.001, step))
        finally:
            bidi.listening = False
            bidi.events.clear()
