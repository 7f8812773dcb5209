"""The open frame's ``middleware``: a chain applied, in order, to every goto of a session.

Each type has its own schema in ``schemas/middleware/`` (the open frame refers to them); this
module turns the validated list into a ``Chain`` once, at the handshake, and the session asks
the chain for every goto:

``headers``
    ``{"type": "headers", "set": [[name, value], ...], "remove": [name, ...]}``: ``set`` replaces
    every header of that name (case-insensitive) in the goto's request, the goto's own included,
    then ``remove`` drops headers by name. The older form ``{"type": "headers", "headers": [...]}``
    still works and keeps its meaning: defaults, where a goto's own header of the same name wins.
``cookies``
    ``{"type": "cookies", "cookies": [Cookie, ...]}``: put in the session's jar before every goto;
    a goto's own cookie of the same name wins (it is set after).
``block``
    ``{"type": "block", "url_patterns": [...], "resource_types": [...]}``. A URL pattern is a glob
    matched against the whole URL: ``*`` stands for any run of characters (``/`` included), every
    other character for itself (``*.png``, ``http://ads.example/*``, ``*://*/tracker.js?*``).
    Browsers fail matching sub-resource requests before they leave the browser; a request
    matches when its URL matches one of the patterns (or none are given) and its type is one of
    ``resource_types`` (or none are given). The standard client fetches no sub-resources: it
    ignores ``resource_types`` and refuses a goto whose URL matches a pattern (error 403).
``retry_status``
    ``{"type": "retry_status", "statuses": [429, 503], "backoff": "1s"}``: a goto whose final
    status is listed is tried again, sharing ``max_retries`` with transport retries. The wait is
    ``backoff``, doubling each time, or the response's ``Retry-After`` when it sent one; a wait
    longer than the session's timeout is not made, and that response is the goto's answer.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from service.blocking import RESOURCE_TYPES, UNSAYABLE, Block, BlockRules, glob, resource_type  # noqa: F401 - re-exported
from service.config import parse_duration
from service.errors import BadRequest
from service.headers import header_value
from service.model import Cookie, GotoRequest, GotoResult
from service.retries import with_retries

logger = logging.getLogger(__name__)

TYPES = ("headers", "cookies", "block", "retry_status")

@dataclass(frozen=True)
class RetryStatus:
    statuses: frozenset[int]
    backoff: float


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

    # -- building the request

    def apply(self, request: GotoRequest) -> GotoRequest:
        headers = list(request.headers)
        cookies: list[Cookie] = []
        for step in self.steps:
            kind = step["type"]
            if kind == "headers":
                headers = _headers(step, headers)
            elif kind == "cookies":
                cookies.extend(Cookie(**c) for c in step["cookies"])
        if not cookies and headers == list(request.headers):
            return request
        return replace(request, headers=tuple(headers), cookies=tuple(cookies) + request.cookies)

    # -- running the goto

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

        delay = self.retry.backoff
        while True:
            result = with_retries(counted, max(0, max_retries - calls), interrupt)
            if result.status_code not in self.retry.statuses or calls > max_retries or interrupt.is_set():
                return result
            after = retry_after(result.headers)
            pause = after if after is not None else min(delay, timeout)
            if pause > timeout:
                logger.info("goto status %d: Retry-After %.1fs is past the timeout", result.status_code, pause)
                return result
            logger.info("goto status %d: retrying in %.2fs", result.status_code, pause)
            if interrupt.wait(pause):
                return result
            delay *= 2


def retry_after(headers: Sequence[tuple[str, str]], now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None."""
    value = (header_value(list(headers), "retry-after") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _headers(step: Mapping[str, Any], headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    if "headers" in step:  # the first form: defaults, the goto's own headers win
        present = {name.lower() for name, _ in headers}
        return headers + [(n, v) for n, v in step["headers"] if n.lower() not in present]
    for name, value in step.get("set", ()):
        headers = [(n, v) for n, v in headers if n.lower() != name.lower()] + [(name, value)]
    drop = {name.lower() for name in step.get("remove", ())}
    return [(n, v) for n, v in headers if n.lower() not in drop]


def build(
    middleware: Sequence[Mapping[str, Any]],
    client: str = "standard",
    on_blocked: Callable[[str, int], Any] | None = None,
) -> Chain:
    """The chain for a validated open frame's ``middleware`` and client kind; unknown types are
    fatal 400. ``on_blocked(client, count)`` is told of every blocked sub-resource request."""
    blocks, retry = [], None
    for index, step in enumerate(middleware):
        kind = step.get("type")
        if kind not in TYPES:  # unreachable while the schema lists the types
            raise BadRequest(f"invalid open frame at $.middleware[{index}]: unknown type {kind!r}", fatal=True)
        if kind == "block":
            patterns = step.get("url_patterns", ())
            for position, pattern in enumerate(patterns):
                if client == "chrome" and UNSAYABLE & set(pattern):
                    # Chrome blocks through declarativeNetRequest, whose urlFilter gives | and ^
                    # a meaning of their own, with no escape (clients/chrome_blocking.py)
                    raise BadRequest(
                        f"invalid open frame at $.middleware[{index}].url_patterns[{position}]: "
                        "a Chrome block pattern cannot hold '|' or '^'",
                        fatal=True,
                    )
            blocks.append(Block.build(patterns, step.get("resource_types", ())))
        elif kind == "retry_status":
            if retry is not None:
                raise BadRequest(
                    f"invalid open frame at $.middleware[{index}]: only one retry_status middleware is allowed",
                    fatal=True,
                )
            try:
                backoff = parse_duration(step.get("backoff", "1s"))
            except ValueError as exc:
                raise BadRequest(f"invalid open frame at $.middleware[{index}].backoff: {exc}", fatal=True) from exc
            retry = RetryStatus(frozenset(step["statuses"]), backoff)
    return Chain(blocks=tuple(blocks), steps=tuple(middleware), retry=retry, client=client, on_blocked=on_blocked)


__all__ = ["Block", "Chain", "RetryStatus", "build", "glob", "resource_type", "retry_after"]
