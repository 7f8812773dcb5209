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
    ) -> Any:
        """Navigate to ``url``; the final response, its hops and cookies (``GotoResult``).

        ``headers``: a mapping or ``(name, value)`` pairs; ``body``: bytes (str is UTF-8 encoded);
        ``user_agent``: ``inndx``, ``chrome``, ``firefox``, ``safari``, ``random`` or any string.
        """
        return self._run(Call(frames.goto_frame(url, method, headers, body, cookies, referrer, user_agent), frames.goto))

    def click(self, selector: str) -> Any:
        """Click the first element matching the CSS ``selector`` (waits for it; 404 if none); None."""
        return self._run(Call({"action": "click", "selector": selector}, frames.nothing))

    def fill(self, selector: str, value: str) -> Any:
        """Clear the field matching ``selector`` and type ``value`` (a select: pick that option); None."""
        return self._run(Call({"action": "fill", "selector": selector, "value": value}, frames.nothing))

    def content(self) -> Any:
        """The page as the session sees it now (the live DOM for browsers), as bytes."""
        return self._run(Call({"action": "content"}, frames.content))

    def evaluate(self, script: str) -> Any:
        """Run ``script`` as a function body in the page; its JSON result (promises awaited)."""
        return self._run(Call({"action": "evaluate", "script": script}, frames.evaluated))

    def screenshot(self) -> Any:
        """A PNG of the viewport, as bytes (None when the service sent none)."""
        return self._run(Call({"action": "screenshot"}, frames.screenshot))

    def request(self, frame: Mapping[str, Any]) -> Any:
        """Send any action frame (an ``id`` is added); its raw reply frame."""
        return self._run(Call(dict(frame), frames.raw))
