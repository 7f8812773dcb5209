"""Cold opens on a Selenium Grid, counted until their browser has started (``service.hub``).

On a Grid, the pool never takes the slots sessions need: it launches only where the Grid has
room beyond the cold opens under way (``room``), and a cold open that finds no room ends an
idle pooled unit (of any kind: the Grid's slots are shared) before its browser is asked for
(``start``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from service.clients import grid_status

logger = logging.getLogger(__name__)


class ColdGridStarts:
    def __init__(self, grid_url: str, evict: Callable[[], bool]):
        self._url = grid_url
        self._evict = evict  # ends an idle pooled unit; False when there is none
        self._lock = threading.Lock()
        self._pending = 0

    def room(self, kind: str) -> bool:
        """The pool's question: may it launch a ``kind`` on the Grid now?"""
        free = grid_status.free_slots(self._url)
        with self._lock:
            pending = self._pending
        return free is not None and free.get(kind, 0) > pending

    def start(self, kind: str) -> Callable[[], None]:
        """Count a cold open on the Grid until its browser has started (the returned callable,
        idempotent, ends the count); make room for it by ending an idle pooled unit if the Grid
        has none."""
        with self._lock:
            self._pending += 1
        free = grid_status.free_slots(self._url)
        if free is not None and free.get(kind, 0) < 1 and self._evict():
            logger.info("the Grid has no room for a %s: an idle pooled browser was ended for it", kind)

        def started() -> None:
            with self._lock:
                self._pending -= 1

        return once(started)


def once(call: Callable[[], None]) -> Callable[[], None]:
    """``call``, run the first time only (thread-safe)."""
    lock = threading.Lock()
    done = [False]

    def run() -> None:
        with lock:
            if done[0]:
                return
            done[0] = True
        call()

    return run
