"""The ``block`` middleware in a browser: sub-resource requests failed before they leave it.

Chrome: the rules are an extension of the session's browser (``chrome_blocking``); nothing is
intercepted here, and a goto counts the requests Chrome reports as blocked by it.

Firefox: one BiDi intercept on ``beforeRequestSent``, scoped to the session's top-level context (which
covers its frames), lives from just before a goto's navigation until the goto returns. BiDi URL
patterns cannot say our globs, so the intercept covers every URL and the rules are checked here:
a matching sub-resource gets ``network.failRequest``; everything else is continued untouched.
A navigation request of the top-level context is never a sub-resource: it is left to the
navigation's own handling (``navigation``), which continues page-started navigations.

Outside a goto nothing is intercepted, so requests a page makes later (after a click, from a
timer) are not blocked: the session's thread only reads BiDi events while a goto runs, and an
intercept nobody answers would hang the page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.blocking import resource_type
from service.clients.chrome_blocking import BLOCKED_ERROR
from service.deadline import Deadline

if TYPE_CHECKING:
    from service.blocking import BlockRules
    from service.clients.bidi import Bidi


class Blocking:
    def __init__(self, bidi: Bidi, context: str, chain: BlockRules | None, kind: str):
        self.bidi = bidi
        self.context = context
        chain = chain if chain is not None and chain.blocks else None
        self.by_extension = chain is not None and kind == "chrome"
        self.chain = None if self.by_extension else chain  # the rules this module applies itself
        self.intercept: str | None = None
        self.count = 0  # requests failed during this goto

    def observe(self, method: str, params: dict) -> None:
        """Any event of the session's contexts (frames included): counts what Chrome's extension
        failed."""
        if self.by_extension and method == "network.fetchError" and params.get("errorText") == BLOCKED_ERROR:
            self.count += 1

    def start(self, deadline: Deadline) -> None:
        if self.chain is None:
            return
        self.intercept = self.bidi.command(
            "network.addIntercept",
            {"phases": ["beforeRequestSent"], "contexts": [self.context]},
            deadline,
        )["intercept"]

    def fails(self, params: dict) -> bool:
        """For a paused ``beforeRequestSent``: fail it when the rules block it (True), else leave
        it to the caller to continue (False)."""
        if self.chain is None:
            return False
        if params.get("context") == self.context and params.get("navigation") is not None:
            return False  # the page's own navigation, ours or page-started
        request = params.get("request") or {}
        has_range = any((h.get("name") or "").lower() == "range" for h in request.get("headers") or ())
        kind = resource_type(request.get("destination"), request.get("initiatorType"), has_range)
        if not self.chain.blocks_subresource(request.get("url", ""), kind):
            return False
        self.bidi.send("network.failRequest", {"request": request.get("request")})
        self.count += 1
        return True

    def foreign(self, params: dict) -> None:
        """A paused request of a child frame (the navigation ignores other contexts): fail or
        continue it, so it never hangs."""
        if not self.fails(params):
            request_id = (params.get("request") or {}).get("request")
            self.bidi.send("network.continueRequest", {"request": request_id})

    def stop(self) -> list[int]:
        """Remove the intercept; the removal command's id, for the caller to wait on."""
        if self.intercept is None:
            return []
        intercept, self.intercept = self.intercept, None
        return [self.bidi.send("network.removeIntercept", {"intercept": intercept})]
