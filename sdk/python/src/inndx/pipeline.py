"""Pipelining in the sync client: several action frames sent before any reply is read; replies
matched by ``id``. The actions are ``inndx.actions``; here a call returns a ``Pending``."""

from __future__ import annotations

from typing import Any

from inndx.actions import Actions
from inndx.core import Call
from inndx.errors import Error


class Pending:
    """A reply not read yet: ``result()`` waits for it and returns it (or raises its error)."""

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


def outcomes(pending: list[Any], raise_errors: bool) -> list[Any]:
    """The settled results of a pipeline in order (an error in place), or its first error raised."""
    if raise_errors:
        for item in pending:
            if isinstance(item, Error):
                raise item
    return pending


class Pipeline(Actions):
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

    def _run(self, call: Call[Any]) -> Pending:
        pending = Pending(self._session, self._session._send(call.frame), call.convert)
        self.pending.append(pending)
        return pending

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
        return outcomes(self.gather(), raise_errors)
