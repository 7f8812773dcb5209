"""inndx: the Python client for inndx sessions.

>>> import inndx
>>> with inndx.connect("ws://127.0.0.1:8022", tenant="acme", client="chrome") as s:
...     page = s.goto("https://example.com/")
...     png = s.screenshot()

The asyncio client is ``inndx.aio`` (``async with inndx.aio.connect(...) as s``: the same
methods, awaited); both are thin I/O around the sans-I/O core in ``inndx.core``.
"""

from typing import Any

from inndx.errors import CapacityError, ConnectionClosed, Error, NotFound, PolicyError, Timeout, error_for
from inndx.pipeline import Pending, Pipeline
from inndx.results import Cookie, Download, GotoResult, Headers, Redirect
from inndx.session import Session, connect

__version__ = "0.1.0"

__all__ = [
    "CapacityError", "ConnectionClosed", "Cookie", "Download", "Error", "GotoResult", "Headers", "NotFound", "Pending",
    "Pipeline", "PolicyError", "Redirect", "Session", "Timeout", "aio", "connect", "error_for",
]


def __getattr__(name: str) -> Any:
    if name == "aio":  # imported on first use: a sync program never loads asyncio and websockets
        import importlib

        return importlib.import_module("inndx.aio")
    raise AttributeError(f"module 'inndx' has no attribute {name!r}")
