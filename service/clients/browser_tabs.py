"""A browser session's tab: what a tab needs before its first goto (``context_calls``: the goto
events and, in Firefox, the settle signal), and the move to a fresh tab (``fresh_tab``), from
``browser_launch``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from service.clients.navigation_record import CHROME_EVENTS, EVENTS, SETTLE_CHANNEL, SETTLE_KINDS, SETTLE_SANDBOX, SETTLE_SIGNAL
from service.deadline import Deadline

if TYPE_CHECKING:
    from service.clients.browser_launch import Launched

BeforeClose = Callable[[Any, str, str, Deadline], None]


def context_calls(kind: str, context: str) -> list[tuple[str, dict]]:
    """What a tab needs before its first goto: the goto events and (Firefox) the settle signal."""
    events = list(EVENTS) + (list(CHROME_EVENTS) if kind == "chrome" else [])
    calls = [("session.subscribe", {"events": events, "contexts": [context]})]
    if kind in SETTLE_KINDS:
        signal = {
            "functionDeclaration": SETTLE_SIGNAL,
            "arguments": [{"type": "channel", "value": {"channel": SETTLE_CHANNEL}}],
            "contexts": [context],
            "sandbox": SETTLE_SANDBOX,
        }
        calls.append(("script.addPreloadScript", signal))
    return calls


def fresh_tab(launched: Launched, deadline: Deadline, before_close: BeforeClose | None = None) -> None:
    """Move the session to a new tab of the same browser and close the old one, with its
    renderer: a page renderer keeps much of every document it showed (Chrome about 10 MiB per
    goto of a 2 MB page, Firefox's content process too, bench/soak.py) and gives it back only
    when it ends. Cookies and localStorage are the profile's and stay; the old tab's history and
    sessionStorage go. Called before a goto, which replaces the page anyway. ``before_close`` is
    called with the channel, the old tab, the new one and the deadline, before the old one closes."""
    bidi = launched.bidi
    old = launched.context
    new = bidi.command("browsingContext.create", {"type": "tab", "referenceContext": old}, deadline)["context"]
    calls = context_calls(launched.kind, new)
    calls.append(("browsingContext.setViewport", {
        "context": new, "viewport": {"width": launched.viewport.width, "height": launched.viewport.height},
    }))
    try:
        for reply in bidi.pipeline(calls, deadline):
            if isinstance(reply, Exception):
                raise reply
    except Exception:
        bidi.post("browsingContext.close", {"context": new, "promptUnload": False})
        raise
    launched.context = new
    launched.unsettled.drop(bidi)  # the old tab's navigations end with it
    if before_close is not None:
        before_close(bidi, old, new, deadline)
    bidi.command("browsingContext.close", {"context": old, "promptUnload": False}, deadline)
