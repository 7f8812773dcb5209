"""inndx: the Python client for inndx sessions.

>>> import inndx
>>> with inndx.connect("ws://127.0.0.1:8022", tenant="acme", client="chrome") as s:
...     page = s.goto("https://example.com/")
...     png = s.screenshot()
"""

from inndx.errors import CapacityError, ConnectionClosed, Error, NotFound, PolicyError, Timeout, error_for
from inndx.pipeline import Pending, Pipeline
from inndx.results import Cookie, GotoResult, Headers, Redirect
from inndx.session import Session, connect

__version__ = "0.1.0"

__all__ = [
    "CapacityError", "ConnectionClosed", "Cookie", "Error", "GotoResult", "Headers", "NotFound", "Pending",
    "Pipeline", "PolicyError", "Redirect", "Session", "Timeout", "connect", "error_for",
]
