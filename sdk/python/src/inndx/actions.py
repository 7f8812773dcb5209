"""Every action, written once: its frame from Python arguments and how its reply becomes a value.

``Actions`` is the one place an action is spelled; each I/O flavour only says what running a
``Call`` means with ``_run``: the sync ``Session`` sends it and returns the value, its
``Pipeline`` sends it and returns a ``Pending``, the asyncio ``Session`` returns an awaitable of
the value and its ``Pipeline`` an awaitable ``Pending``. So a method's result is its value
(``GotoResult``, ``bytes``, a JSON value, ``None``) in the sync client, and the same value
awaited (or a pending handle of it) in the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from inndx import frames
from inndx.core import Call
from inndx.results import Cookie


class Actions:
    """One method per action of the protocol; subclasses define ``_run(call)``."""

    def _run(self, call: Call[Any]) -> Any:
        raise NotImplementedError

    def goto(
        self,
        url: str,
        *,
        method: str | None = None,
        headers: Mapping[str, str] | Iterable[Iterable[str]] | None = None,
        body: bytes | str | None = None,
        cookies: Iterable[Cookie | Mapping[str, Any]] | None = None,
        referrer: str | None = None,
        user_agent: str | None = None,
        timeout: str | float | None = None,
    ) -> Any:
        """Navigate to ``url``; the final response, its hops and cookies (``GotoResult``).

        ``headers``: a mapping or ``(name, value)`` pairs; ``body``: bytes (str is UTF-8 encoded);
        ``user_agent``: ``inndx``, ``chrome``, ``firefox``, ``safari``, ``random`` or any string.
        """
        frame = frames.goto_frame(url, method, headers, body, cookies, referrer, user_agent)
        return self._act(frame, timeout, frames.goto)

    def click(self, selector: str, *, timeout: str | float | None = None) -> Any:
        """Click the first element matching the CSS ``selector`` (waits for it; 404 if none); None."""
        return self._act({"action": "click", "selector": selector}, timeout, frames.nothing)

    def fill(self, selector: str, value: str, *, timeout: str | float | None = None) -> Any:
        """Clear the field matching ``selector`` and type ``value`` (a select: pick that option); None."""
        return self._act({"action": "fill", "selector": selector, "value": value}, timeout, frames.nothing)

    def content(self, *, timeout: str | float | None = None) -> Any:
        """The page as the session sees it now (the live DOM for browsers), as bytes."""
        return self._act({"action": "content"}, timeout, frames.content)

    def evaluate(self, script: str, *, timeout: str | float | None = None) -> Any:
        """Run ``script`` as a function body in the page; its JSON result (promises awaited)."""
        return self._act({"action": "evaluate", "script": script}, timeout, frames.evaluated)

    def screenshot(
        self,
        *,
        selector: str | None = None,
        full_page: bool | None = None,
        format: str | None = None,  # noqa: A002 - the frame's own field name
        quality: int | None = None,
        timeout: str | float | None = None,
    ) -> Any:
        """An image of the viewport, of the whole page (``full_page``) or of one element
        (``selector``), as bytes: PNG, or ``format`` ``"jpeg"``/``"webp"`` at ``quality`` 0-100
        (None when the service sent none: the standard client)."""
        frame = frames.without_none({
            "action": "screenshot", "selector": selector, "full_page": full_page, "format": format, "quality": quality,
        })
        return self._act(frame, timeout, frames.screenshot)

    def pdf(
        self,
        *,
        landscape: bool | None = None,
        print_background: bool | None = None,
        page_ranges: Iterable[int | str] | None = None,
        scale: float | None = None,
        timeout: str | float | None = None,
    ) -> Any:
        """The page printed to PDF, as bytes; ``page_ranges`` such as ``[1, "3-5"]``."""
        frame = frames.without_none({
            "action": "pdf", "landscape": landscape, "print_background": print_background,
            "page_ranges": list(page_ranges) if page_ranges is not None else None, "scale": scale,
        })
        return self._act(frame, timeout, frames.pdf)

    def wait_for(
        self,
        selector: str | None = None,
        *,
        state: str | None = None,
        text: str | None = None,
        url: str | None = None,
        script: str | None = None,
        network_idle: str | float | None = None,
        timeout: str | float | None = None,
    ) -> Any:
        """Wait until one thing holds: ``selector`` reaches ``state`` (``attached``, ``visible``
        (default) or ``hidden``), ``text`` shows, the URL matches the glob ``url``, ``script``
        (a function body) returns something truthy, or no request is in flight for
        ``network_idle``; the milliseconds it took. Past ``timeout``: ``inndx.Timeout`` (504)."""
        frame = frames.without_none({
            "action": "wait_for", "selector": selector, "state": state, "text": text, "url": url,
            "script": script, "network_idle": frames.duration(network_idle),
        })
        return self._act(frame, timeout, frames.waited)

    def press(self, keys: str, *, selector: str | None = None, timeout: str | float | None = None) -> Any:
        """Press a key or a chord (``"Enter"``, ``"Control+A"``), into ``selector`` (focused first)
        or whatever has focus; None."""
        return self._act(frames.without_none({"action": "press", "keys": keys, "selector": selector}), timeout, frames.nothing)

    def hover(self, selector: str, *, timeout: str | float | None = None) -> Any:
        """Move the mouse over the element matching ``selector``; None."""
        return self._act({"action": "hover", "selector": selector}, timeout, frames.nothing)

    def select(self, selector: str, values: Iterable[str], *, timeout: str | float | None = None) -> Any:
        """Pick the options of these values (only these) in the select matching ``selector``; None."""
        return self._act({"action": "select", "selector": selector, "values": list(values)}, timeout, frames.nothing)

    def scroll(
        self,
        selector: str | None = None,
        *,
        x: float | None = None,
        y: float | None = None,
        to: str | None = None,
        timeout: str | float | None = None,
    ) -> Any:
        """Scroll ``selector`` into view, or the page to ``x``/``y``, or ``to`` ``"top"`` or
        ``"bottom"``; the page's scroll position after, ``(x, y)``."""
        frame = frames.without_none({"action": "scroll", "selector": selector, "x": x, "y": y, "to": to})
        return self._act(frame, timeout, frames.scrolled)

    def upload(self, selector: str, files: Iterable[frames.UploadEntry], *, timeout: str | float | None = None) -> Any:
        """Give the file input matching ``selector`` these files: each ``(name, content)``,
        ``(name, content, mime_type)``, a mapping of those, or a path of this machine (read here,
        sent as bytes); content is bytes, or str (UTF-8). More than one needs ``<input multiple>``;
        the service bounds their total (413). None."""
        frame = {"action": "upload", "selector": selector, "files": [frames.upload_file(entry) for entry in files]}
        return self._act(frame, timeout, frames.nothing)

    def download(self, download_id: str, *, timeout: str | float | None = None) -> Any:
        """The bytes of a download a reply listed (``GotoResult.downloads``, ``Session.downloads``),
        as a ``Download`` with its ``content``; an id no reply listed: ``inndx.NotFound`` (404)."""
        return self._act({"action": "download", "download_id": download_id}, timeout, frames.download)

    def cookies(self, *, timeout: str | float | None = None) -> Any:
        """Every cookie of the session, as ``Cookie``s."""
        return self._act({"action": "cookies"}, timeout, frames.cookies)

    def set_cookies(self, cookies: Iterable[Cookie | Mapping[str, Any]], *, timeout: str | float | None = None) -> Any:
        """Put these cookies (each naming its ``domain``) in the session's jar; None."""
        frame = {"action": "set_cookies", "cookies": [frames.cookie(c) for c in cookies]}
        return self._act(frame, timeout, frames.nothing)

    def clear_cookies(self, *, timeout: str | float | None = None) -> Any:
        """Empty the session's jar; None."""
        return self._act({"action": "clear_cookies"}, timeout, frames.nothing)

    def storage_state(self, *, timeout: str | float | None = None) -> Any:
        """The session's portable state (a dict: ``cookies`` and per-origin ``local_storage``), to
        open another session from: ``connect(..., storage_state=state)``."""
        return self._act({"action": "storage_state"}, timeout, frames.storage_state)

    def har(self, *, timeout: str | float | None = None) -> Any:
        """Every request the session's pages made since its open or the last ``har`` (a standard
        session: its gotos' requests), as a HAR 1.2 dict (``{"log": {...}}``), ready to save as
        a ``.har`` file."""
        return self._act({"action": "har"}, timeout, frames.har)

    def _act(self, frame: dict[str, Any], timeout: str | float | None, read: Any) -> Any:
        """Run ``frame`` with its own ``timeout`` (a duration or seconds) when one is given."""
        if timeout is not None:
            frame["timeout"] = frames.duration(timeout)
        return self._run(Call(frame, read))

    def request(self, frame: Mapping[str, Any]) -> Any:
        """Send any action frame (an ``id`` is added); its raw reply frame."""
        return self._run(Call(dict(frame), frames.raw))
