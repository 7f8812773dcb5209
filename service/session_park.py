"""A parked session's thread, waiting out its park (``service.session``, Rule 4).

Parked (its socket dropped without a ``close`` action), the session's thread takes no frame: it
waits for a resume (``resume.Link.wait_attached``) while its idle clock runs, until the resume
window ends, its expiry comes, or a stop. Called only from the session's own thread.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.session import Session


def sit_out(session: Session) -> bool:
    """Parked: wait for a resume (True), while the idle clock runs; False when the session
    is over (a stop, its expiry, or the resume window passed: it then ends quietly)."""
    link = session.link
    session.log.info("session parked: %s", link.failure or "the client went away")
    expiry_passed = False  # and it did not expire (frames wait): then only the window counts
    while True:
        since = link.parked_since
        if since is None:
            return True
        window_end = since + link.window
        until = window_end if expiry_passed else min(window_end, time.monotonic() + session._until_expiry())
        if link.wait_attached(until, session._stop_requested):
            return True
        if session._stopping() or session._expired():
            return False
        expiry_passed = True
        if link.parked_since == since and time.monotonic() >= window_end:
            session.abort(f"not resumed within {link.window:g}s of the drop ({link.failure})")
            session._stopping()
            return False
