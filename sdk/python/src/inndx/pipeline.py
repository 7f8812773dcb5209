"""Pipelining: several action frames sent before any reply is read; replies matched by ``id``."""

from __future__ import annotations

from typing import Any

from inndx import frames
from inndx.errors import Error


class Pending:
    """A reply not read yet: ``result()`` reads up to it and returns it (or raises its error)."""

    def __init__(self, session, frame_id: int, convert) -> None:
        self._session, self.id, self._convert = session, frame_id, convert
        self._outcome: tuple[bool, Any] | None = None

    def result(self) -> Any:
        """The converted reply; an error reply raises (again on every call)."""
        if self._outcome is None:
            try:
                self._outcome = (True, self._convert(self._session._reply(self.id)))
            except Error as exc:
                self._outcome = (False, exc)
        ok, value = self._outcome
        if not ok:
            raise value
        return value


class Pipeline:
    """Actions sent at once, replies read later in order. Methods return ``Pending`` handles.

    Leaving the ``with`` block reads every reply; ``results()`` then lists them in order, with
    an error reply in place as its exception (``raise_errors=True`` raises the first instead).
    """

    def __init__(self, session) -> None:
        self._session = session
        self.pending: list[Pending] = []
        self._results: list[Any] | None = None

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.gather()

    def _add(self, frame: dict[str, Any], convert) -> Pending:
        pending = Pending(self._session, self._session._send(frame), convert)
        self.pending.append(pending)
        return pending

    def goto(self, url: str, **options: Any) -> Pending:
        keys = ("method", "headers", "body", "cookies", "referrer", "user_agent")
        return self._add(frames.goto_frame(url, *(options.get(k) for k in keys)), frames.goto)

    def click(self, selector: str) -> Pending:
        return self._add({"action": "click", "selector": selector}, frames.nothing)

    def fill(self, selector: str, value: str) -> Pending:
        return self._add({"action": "fill", "selector": selector, "value": value}, frames.nothing)

    def content(self) -> Pending:
        return self._add({"action": "content"}, frames.content)

    def evaluate(self, script: str) -> Pending:
        return self._add({"action": "evaluate", "script": script}, frames.evaluated)

    def screenshot(self) -> Pending:
        return self._add({"action": "screenshot"}, frames.screenshot)

    def gather(self) -> list[Any]:
        """Read every reply; results in order, an error in place as its exception object."""
        if self._results is None:
            results = []
            for pending in self.pending:
                try:
                    results.append(pending.result())
                except Error as exc:
                    results.append(exc)
            self._results = results
        return self._results

    def results(self, raise_errors: bool = False) -> list[Any]:
        results = self.gather()
        if raise_errors:
            for item in results:
                if isinstance(item, Error):
                    raise item
        return results
