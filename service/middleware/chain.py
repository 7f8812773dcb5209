"""One session's middleware: the table of kinds, ``build`` (open frame -> ``Chain``) and the
``Chain`` the session asks at every goto."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

from service.blocking import BlockRules
from service.errors import BadRequest
from service.middleware import block, cookies, headers, retry_status
from service.middleware.draft import Draft
from service.middleware.retry_status import RetryStatus
from service.model import Cookie, GotoRequest, GotoResult
from service.retries import with_retries

# Every kind, by its ``type``: a module with ``build_step(step, where, draft)`` (check the step
# and add what it builds to the draft) and ``apply(step, headers, cookies) -> headers`` (its
# part of each goto's request). Open-frame order is kept: steps apply in the order given.
KINDS: dict[str, ModuleType] = {
    "headers": headers,
    "cookies": cookies,
    "block": block,
    "retry_status": retry_status,
}


@dataclass
class Chain(BlockRules):
    """One session's middleware, in the open frame's order (its ``block`` rules: ``BlockRules``,
    what a fetch client is given). Used by the session's thread only; ``blocked`` counts the
    sub-resource requests its ``block`` rules failed in this session."""

    steps: tuple[Mapping[str, Any], ...] = ()
    retry: RetryStatus | None = None
    client: str = "standard"
    on_blocked: Callable[[str, int], Any] | None = None  # (client kind, count): the metrics
    blocked: int = 0

    def apply(self, request: GotoRequest) -> GotoRequest:
        """The goto's request with every step's headers and cookies."""
        sent = list(request.headers)
        jar: list[Cookie] = []
        for step in self.steps:
            sent = KINDS[step["type"]].apply(step, sent, jar)
        if not jar and sent == list(request.headers):
            return request
        return replace(request, headers=tuple(sent), cookies=tuple(jar) + request.cookies)

    def goto(
        self,
        url: str,
        attempt: Callable[[], GotoResult],
        max_retries: int,
        timeout: float,
        interrupt: threading.Event | None = None,
    ) -> GotoResult:
        """The goto of ``url``: refused when the standard client's ``block`` patterns match it;
        else run ``attempt`` with transport retries and, with ``retry_status``, status retries: at
        most ``max_retries + 1`` attempts in all. ``interrupt`` (the session ending, or a
        ``close`` waiting behind this goto) ends the waits and the retries."""
        interrupt = interrupt or threading.Event()
        calls = 0

        def counted() -> GotoResult:
            nonlocal calls
            calls += 1
            result = attempt()
            if result.blocked:
                self.blocked += result.blocked
                if self.on_blocked is not None:
                    self.on_blocked(self.client, result.blocked)
            return result

        if self.client == "standard":
            self.check_url(url)
        if self.retry is None:
            return with_retries(counted, max_retries, interrupt)
        return retry_status.retry(self.retry, counted, lambda: calls, max_retries, timeout, interrupt)


def build(
    middleware: Sequence[Mapping[str, Any]],
    client: str = "standard",
    on_blocked: Callable[[str, int], Any] | None = None,
) -> Chain:
    """The chain for a validated open frame's ``middleware`` and client kind; unknown types are
    fatal 400. ``on_blocked(client, count)`` is told of every blocked sub-resource request."""
    draft = Draft(client)
    for index, step in enumerate(middleware):
        kind = KINDS.get(step.get("type"))
        if kind is None:  # unreachable while the schema lists the types
            raise BadRequest(f"invalid open frame at $.middleware[{index}]: unknown type {step.get('type')!r}", fatal=True)
        kind.build_step(step, f"$.middleware[{index}]", draft)
    return Chain(
        blocks=tuple(draft.blocks), steps=tuple(middleware), retry=draft.retry, client=client, on_blocked=on_blocked
    )
