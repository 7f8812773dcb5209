"""Is a session's browser still there? The checks a wait and an error path make.

- ``RemoteHeartbeat(launched)``: while a BiDi reply is awaited from a Grid, every
  ``REMOTE_HEARTBEAT`` seconds, ask the Grid over HTTP. A Grid keeps our BiDi socket open after
  its node died, but answers a classic command for that session with an error at once. A
  classic command that is merely slow (it waits for a pending page load) proves nothing, so a
  timeout counts as alive.
- ``still_there(launched)``: on error paths only: the local processes and the BiDi socket; a
  remote session is also asked a cheap BiDi question (bounded), since its socket outlives its
  node. A BiDi question, not a classic one: classic commands wait for a pending navigation (a
  page still loading after a timed-out goto), BiDi ones answer at once.
"""

from __future__ import annotations

import logging
import time

from selenium.webdriver.remote.command import Command

from service.clients.browser_errors import timed_out
from service.clients.browser_launch import Launched

logger = logging.getLogger(__name__)

REMOTE_PROBE = 3.0  # seconds a Grid may take to answer the liveness probe
REMOTE_HEARTBEAT = 2.0  # seconds between Grid checks while waiting on a remote browser


class RemoteHeartbeat:
    def __init__(self, launched: Launched):
        self.launched = launched
        self._next = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return True
        self._next = now + REMOTE_HEARTBEAT
        launched = self.launched
        executor = launched.driver.command_executor
        saved = executor.client_config.timeout
        try:
            launched.set_http_timeout(REMOTE_HEARTBEAT)
            launched.driver.execute(Command.W3C_GET_WINDOW_HANDLES)
        except Exception as exc:  # noqa: BLE001 - the Grid says the session is gone, unless slow
            if timed_out(exc):
                return True
            logger.warning("remote heartbeat failed: %r", exc)
            return False
        finally:
            executor.client_config.timeout = saved
        return True


def still_there(launched: Launched) -> bool:
    if not (launched.alive() and launched.bidi.alive()):
        return False
    if launched.remote:
        try:
            launched.bidi.command("browsingContext.getTree", {"maxDepth": 0}, REMOTE_PROBE)
        except Exception as exc:  # noqa: BLE001 - any failure here means the session is gone
            logger.debug("remote session probe failed: %r", exc)
            return False
    return True
