"""What every fetch client offers, and the plain data it speaks.

A fetch client knows nothing about WebSockets or frames: it takes typed requests and a
``Deadline``, returns typed results, and raises ``service.errors.ServiceError`` subclasses
(translated from its library's own exceptions at its one boundary). Only the session's own
thread ever calls a client, except ``live_frame`` (the live view's).
"""

from __future__ import annotations

import abc
from typing import Any

from service.deadline import Deadline
from service.errors import NotSupported
from service.model import (  # noqa: F401 - re-exported: the vocabulary lives in service.model
    ClientOptions,
    Cookie,
    Egress,
    GotoRequest,
    GotoResult,
    Proxy,
    Redirect,
    Viewport,
)


class FetchClient(abc.ABC):
    """One session's way of fetching pages. ``close`` must be idempotent and must end every
    process the client started, whatever state it is in."""

    kind: str = "?"

    def start(self, deadline: Deadline) -> None:  # noqa: B027 - optional hook
        """Acquire resources (a browser). Raises ``Unavailable`` when there is no capacity."""

    @abc.abstractmethod
    def goto(self, request: GotoRequest, deadline: Deadline) -> GotoResult: ...

    @abc.abstractmethod
    def content(self, deadline: Deadline) -> bytes: ...

    @abc.abstractmethod
    def click(self, selector: str, deadline: Deadline) -> None: ...

    @abc.abstractmethod
    def fill(self, selector: str, value: str, deadline: Deadline) -> None: ...

    @abc.abstractmethod
    def evaluate(self, script: str, deadline: Deadline) -> Any: ...

    @abc.abstractmethod
    def screenshot(self, deadline: Deadline) -> bytes | None: ...

    def live_frame(self, timeout: float) -> bytes:
        """The screen as a JPEG for the live view (``service.live``). The one method called from
        another thread than the session's: it must touch nothing the session's thread uses
        unguarded, and wait at most ``timeout`` seconds."""
        raise NotSupported(f"a {self.kind} session has no screen to show")

    @abc.abstractmethod
    def close(self) -> None: ...
