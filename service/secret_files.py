"""Reading the operator's secret files (tenants: API keys; proxies: upstream passwords).

``read_json(path, what)`` reads one and warns, once per load, when the file is readable by
every user of the machine: the browser user (``clients/browser_user``) is such a user, so a
browser that a page took over beyond its sandbox could read it. Keep them ``chmod 600``, owned
by the service's user.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from typing import Any

logger = logging.getLogger(__name__)


def read_json(path: str, what: str) -> Any:
    with open(path, encoding="utf-8") as file:
        mode = os.fstat(file.fileno()).st_mode
        document = json.load(file)
    if mode & stat.S_IROTH:
        logger.warning(
            "the %s file %s is readable by every user, the browser user included: chmod 600 it", what, path
        )
    return document
