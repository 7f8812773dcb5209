"""A parked session's thread, waiting out its park (``service.session``, Rule 4).

Parked (its socket dropped without a ``close`` action), the session's thread takes no frame: it
waits for a resume (``resume.Link.wait_attached``) while its idle clock runs, until the resume
window ends, its expiry comes, or a stop. Called only from the session's own thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from service.resume import Link


def sit_out(
    link: Link,
    log: logging.LoggerAdapter,
    stop: threading.Event,
    until_expiry: Callable[[], float],
    stopping: Callable[[], bool],
    expired: Callable[[], bool],
    abort: Callable[[str], None],
) -> bool:
    """Parked: wait for a resume (True), while the idle clock runs (``until_expiry``: seconds
    left); False when the session is over (``stop`` set and ``stopping()``, ``expired()``, or the
    resume window passed: it then ends quietly, ``abort`` and ``stopping()``)."""
    log.info("session parked: %s", link.failure or "the client went away")
    expiry_passed = False  # and it did not expire (frames wait): then only the window counts
    while True:
        since = link.parked_since
        if since is None:
            return True
        window_end = since + link.window
        until = window_end if expiry_passed else min(window_end, time.monotonic() + until_expiry())
        if link.wait_attached(until, stop):
            return True
        if stopping() or expired():
            return False
        expiry_passed = True
        if link.parked_since == since and time.monotonic() >= window_end:
            abort(f"not resumed within {link.window:g}s of the drop ({link.failure})")
            stopping()
            return False
