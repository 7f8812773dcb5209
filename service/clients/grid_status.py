"""What a Selenium Grid says it has room for: ``GET <grid>/status``, read by the hub so that its
warm pool never takes the slots a session needs (issue: a Grid of 2 slots, the default pool of
2 Chromes and 1 Firefox, and every Firefox open failed 503 while pooled Chromes sat idle).

The Grid is the operator's, but its answer is still bounded: ``MAX_STATUS_BYTES`` read, a
timeout on the whole request, and any answer not of the documented shape is "unknown" (None).
"""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

logger = logging.getLogger(__name__)

MAX_STATUS_BYTES = 4 * 1024 * 1024  # a Grid of hundreds of nodes answers well under this
BROWSER_NAMES = {"chrome": "chrome", "firefox": "firefox"}  # our kinds -> the stereotypes' browserName


def free_slots(grid_url: str, timeout: float = 2.0) -> dict[str, int] | None:
    """How many more sessions of each kind the Grid would start now, or None when it cannot be
    told (unreachable, slow, not the answer of a Grid). A node that is not UP offers nothing;
    one that is offers, for a kind, its free slots of that kind, at most ``maxSessions`` minus
    its sessions of any kind."""
    url = grid_url.rstrip("/") + "/status"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - the operator's Grid URL
            data = resp.read(MAX_STATUS_BYTES + 1)
        if len(data) > MAX_STATUS_BYTES:
            raise ValueError(f"the status is over {MAX_STATUS_BYTES} bytes")
        return count_free(json.loads(data))
    except (OSError, ValueError, RecursionError) as exc:  # URLError and JSON's errors among them
        logger.info("the Grid's status could not be read: %s", exc)
        return None


def count_free(status: Any) -> dict[str, int] | None:
    """``free_slots`` of a parsed ``/status`` answer (None when it is not of its shape)."""
    value = status.get("value") if isinstance(status, dict) else None
    nodes = value.get("nodes") if isinstance(value, dict) else None
    if not isinstance(nodes, list):
        return None
    free = dict.fromkeys(BROWSER_NAMES, 0)
    for node in nodes:
        if not isinstance(node, dict) or node.get("availability") != "UP" or not isinstance(node.get("slots"), list):
            continue
        slots = [slot for slot in node["slots"] if isinstance(slot, dict)]
        busy = sum(1 for slot in slots if slot.get("session"))
        limit = node.get("maxSessions")
        room = (limit if isinstance(limit, int) and not isinstance(limit, bool) else len(slots)) - busy
        for kind, name in BROWSER_NAMES.items():
            idle = sum(1 for slot in slots if not slot.get("session") and _browser(slot) == name)
            free[kind] += max(0, min(idle, room))
    return free


def _browser(slot: dict) -> Any:
    stereotype = slot.get("stereotype")
    return stereotype.get("browserName") if isinstance(stereotype, dict) else None
