"""``retry_status``: a goto whose final status is listed is tried again (``retry``), sharing
``max_retries`` with transport retries, after ``backoff`` (doubling) or the response's
``Retry-After``."""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.config import parse_duration
from service.errors import BadRequest
from service.headers import header_value
from service.model import Cookie, GotoResult
from service.retries import with_retries

if TYPE_CHECKING:
    from service.middleware.draft import Draft

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryStatus:
    statuses: frozenset[int]
    backoff: float


def build_step(step: Mapping[str, Any], where: str, draft: Draft) -> None:
    if draft.retry is not None:
        raise BadRequest(f"invalid open frame at {where}: only one retry_status middleware is allowed", fatal=True)
    try:
        backoff = parse_duration(step.get("backoff", "1s"))
    except ValueError as exc:
        raise BadRequest(f"invalid open frame at {where}.backoff: {exc}", fatal=True) from exc
    draft.retry = RetryStatus(frozenset(step["statuses"]), backoff)


def apply(step: Mapping[str, Any], headers: list[tuple[str, str]], cookies: list[Cookie]) -> list[tuple[str, str]]:
    return headers  # acts on the answer (``retry``), not on the request


def retry(
    rule: RetryStatus,
    attempt: Callable[[], GotoResult],
    calls: Callable[[], int],
    max_retries: int,
    timeout: float,
    interrupt: threading.Event,
) -> GotoResult:
    """Run ``attempt`` with transport retries, and again while its status is listed: at most
    ``max_retries + 1`` attempts in all (``calls()`` counts them)."""
    delay = rule.backoff
    while True:
        result = with_retries(attempt, max(0, max_retries - calls()), interrupt)
        if result.status_code not in rule.statuses or calls() > max_retries or interrupt.is_set():
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
