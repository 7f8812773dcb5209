"""The reaper: browsers and temp dirs of workers that died, found by their owner's marker.

``reap_orphans()`` runs once when a worker starts (``app.create_app``). A worker killed with its
browsers' death signals armed leaves nothing (see ``browser_process``); this catches whatever
still escaped: a process an owner that no longer runs owns, and that owner's temp dirs.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

from service.clients import mounts
from service.clients.browser_process import (
    LEGACY_OWNER_ENV,
    OWNER_ENV,
    TEMP_NAME,
    kill_processes,
    owned_by,
    owner_alive,
)

logger = logging.getLogger(__name__)


def reap_orphans(temp_root: str | None = None, grace: float = 0.5) -> tuple[int, int]:
    """Kill every process an owner that no longer runs owns (its marker, and every process in
    the session id of a marked one: ``browser_process.owned_by``), and remove the temp dirs of
    such owners. Returns (processes killed, dirs removed). Safe to call at any time: an
    owner that runs keeps its processes and dirs."""
    me = os.getpid()
    verdicts: dict[str, bool] = {}

    def orphaned(owner: str) -> bool:
        if owner not in verdicts:
            verdicts[owner] = not owner_alive(owner)
        return verdicts[owner]

    victims = [
        proc
        for proc in owned_by(lambda env: any(env.get(name) and orphaned(env[name]) for name in (OWNER_ENV, LEGACY_OWNER_ENV)))
        if proc.pid != me
    ]
    kill_processes(victims, grace=grace)
    removed = 0
    root = temp_root or tempfile.gettempdir()
    try:
        names = os.listdir(root)
    except OSError:
        names = []
    for name in names:
        match = TEMP_NAME.match(name)
        if match and orphaned(match.group(1)):
            mounts.unmount_below(os.path.join(root, name))
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed += 1
    if victims or removed:
        logger.warning(
            "reaped %d browser processes and %d temp dirs left by workers that died",
            len(victims),
            removed,
        )
    return len(victims), removed
