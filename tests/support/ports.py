"""Loopback ports, bounded polling and the one timeout factor of the test suite.

- ``free_port()``: a TCP port on 127.0.0.1 that was free a moment ago.
- ``wait_for(predicate, timeout, interval, what)``: poll until ``predicate()`` is truthy,
  return its value, or raise ``TimeoutError`` naming ``what``.
- ``TIMEOUT_FACTOR`` (``INNDX_TEST_TIMEOUT_FACTOR``, default 1) and ``scaled(seconds)``: every
  timeout in the tests goes through ``scaled`` so slow machines only need one knob.

Rule for all of ``tests.support``: a ``timeout`` argument is in nominal seconds and is scaled
inside the function that takes it (``wait_for`` included). Call ``scaled`` yourself only for
timeouts you hand to other libraries (``http.client``, ``httpx``, ``socket``).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

TIMEOUT_FACTOR: float = float(os.environ.get("INNDX_TEST_TIMEOUT_FACTOR", "1"))


def scaled(seconds: float) -> float:
    """Return ``seconds`` multiplied by the suite's timeout factor."""
    return seconds * TIMEOUT_FACTOR


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that the kernel just handed out and released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Call ``predicate`` until it returns a truthy value and return that value.

    Gives up after ``scaled(timeout)`` seconds and raises ``TimeoutError`` saying what was
    awaited and for how long. Exceptions from the predicate propagate.
    """
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout:.2f}s waiting for {what}")
        time.sleep(min(interval, remaining))
