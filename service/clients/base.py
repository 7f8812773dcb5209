"""What every fetch client offers, and the plain data it speaks.

A fetch client knows nothing about WebSockets or frames: it takes typed requests and a
``Deadline``, returns typed results, and raises ``service.errors.ServiceError`` subclasses
(translated from its library's own exceptions at its one boundary). Only the session's own
thread ever calls a client, except ``live_frame`` (the live view's).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
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
    UploadFile,
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
    def screenshot(self, deadline: Deadline, options: Mapping[str, Any] | None = None) -> bytes | None:
        """The image (``options``: ``selector``, ``full_page``, ``format``, ``quality``)."""

    def live_frame(self, timeout: float) -> bytes:
        """The screen as a JPEG for the live view (``service.live``). The one method called from
        another thread than the session's: it must touch nothing the session's thread uses
        unguarded, and wait at most ``timeout`` seconds."""
        raise NotSupported(f"a {self.kind} session has no screen to show")

    @abc.abstractmethod
    def close(self) -> None: ...

    # ----- the actions a client may lack: 501 unless it has them ------------------------------
    def _unsupported(self, action: str) -> NotSupported:
        return NotSupported(f"{action} needs a browser: open the session with client chrome or firefox")

    def wait_for(self, args: Mapping[str, Any], deadline: Deadline) -> None:
        """Until ``args['kind']`` (selector + state, text, url glob, script, network_idle) holds;
        ``GatewayTimeout`` past the deadline."""
        raise self._unsupported("wait_for")

    def press(self, keys: list[str], selector: str | None, deadline: Deadline) -> None:
        """Press ``keys`` (WebDriver key values) as a chord, into ``selector`` focused first."""
        raise self._unsupported("press")

    def hover(self, selector: str, deadline: Deadline) -> None:
        raise self._unsupported("hover")

    def select(self, selector: str, values: list[str], deadline: Deadline) -> None:
        raise self._unsupported("select")

    def scroll(self, args: Mapping[str, Any], deadline: Deadline) -> dict[str, float]:
        """Scroll (``selector``, ``x``/``y`` or ``to``); the page's scroll position after."""
        raise self._unsupported("scroll")

    def pdf(self, options: Mapping[str, Any], deadline: Deadline) -> bytes:
        """The page printed (``landscape``, ``print_background``, ``page_ranges``, ``scale``)."""
        raise self._unsupported("pdf")

    def upload(self, selector: str, files: tuple[UploadFile, ...], deadline: Deadline) -> None:
        """Give the file input matching ``selector`` these files (the client's bytes)."""
        raise self._unsupported("upload")

    def cookies(self, deadline: Deadline) -> list[Cookie]:
        """Every cookie of the session."""
        raise self._unsupported("cookies")

    def set_cookies(self, cookies: tuple[Cookie, ...], deadline: Deadline) -> None:
        raise self._unsupported("set_cookies")

    def clear_cookies(self, deadline: Deadline) -> None:
        raise self._unsupported("clear_cookies")

    def har(self, deadline: Deadline) -> dict[str, Any]:
        """The session's requests since its open or the last ``har``, as HAR 1.2 (``service.har``)."""
        raise self._unsupported("har")

    def downloads(self, deadline: Deadline) -> list[dict[str, Any]]:
        """The downloads finished since the last reply listed them (reply items; none here)."""
        return []

    def download(self, ident: str, deadline: Deadline) -> dict[str, Any]:
        """The ``download`` reply's fields for a listed download: its metadata and ``content``."""
        raise self._unsupported("download")

    def storage_state(self, deadline: Deadline) -> tuple[list[Cookie], list[tuple[str, list[tuple[str, str]]]]]:
        """The session's cookies, and the open page's origin with its localStorage pairs."""
        return self.cookies(deadline), []
