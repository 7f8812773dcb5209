"""``max_retries`` for goto: transport failures and timeouts are tried again, with backoff."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_any, wait_exponential

from service.errors import NOT_RETRIED, RETRYABLE

logger = logging.getLogger(__name__)
T = TypeVar("T")

BACKOFF_FIRST = 0.2  # seconds before the first retry; doubles each time
BACKOFF_MAX = 2.0


def retryable(error: BaseException) -> bool:
    return isinstance(error, RETRYABLE) and not isinstance(error, NOT_RETRIED)


def with_retries(attempt: Callable[[], T], max_retries: int, interrupt: threading.Event | None = None) -> T:
    """Call ``attempt`` up to ``max_retries + 1`` times while it raises a retryable error; the
    last error is raised as it is, its message saying how many attempts were made.

    ``interrupt`` (the session ending, or a ``close`` waiting behind this goto) stops the
    retries: the backoff wakes at once and no further attempt starts."""
    interrupt = interrupt or threading.Event()
    retrying = Retrying(
        stop=stop_any(stop_after_attempt(max_retries + 1), lambda state: interrupt.is_set()),
        sleep=interrupt.wait,
        wait=wait_exponential(multiplier=BACKOFF_FIRST, max=BACKOFF_MAX),
        retry=retry_if_exception(retryable),
        reraise=True,
        before_sleep=lambda state: logger.info("goto attempt %d failed; retrying", state.attempt_number),
    )
    try:
        return retrying(attempt)
    except RETRYABLE as error:
        attempts = retrying.statistics.get("attempt_number", max_retries + 1)
        if attempts > 1 and retryable(error):
            error.message = f"{error.message} (after {attempts} attempts)"
        raise
