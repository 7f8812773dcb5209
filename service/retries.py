"""``max_retries`` for goto: transport failures and timeouts are tried again, with backoff."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from service.errors import NOT_RETRIED, RETRYABLE

logger = logging.getLogger(__name__)
T = TypeVar("T")

BACKOFF_FIRST = 0.2  # seconds before the first retry; doubles each time
BACKOFF_MAX = 2.0


def retryable(error: BaseException) -> bool:
    return isinstance(error, RETRYABLE) and not isinstance(error, NOT_RETRIED)


def with_retries(attempt: Callable[[], T], max_retries: int) -> T:
    """Call ``attempt`` up to ``max_retries + 1`` times while it raises a retryable error; the
    last error is raised as it is, its message saying how many attempts were made."""
    retrying = Retrying(
        stop=stop_after_attempt(max_retries + 1),
        wait=wait_exponential(multiplier=BACKOFF_FIRST, max=BACKOFF_MAX),
        retry=retry_if_exception(retryable),
        reraise=True,
        before_sleep=lambda state: logger.info("goto attempt %d failed; retrying", state.attempt_number),
    )
    try:
        return retrying(attempt)
    except RETRYABLE as error:
        if max_retries and retryable(error):
            error.message = f"{error.message} (after {max_retries + 1} attempts)"
        raise
