"""A blocking view of the asyncio client (``inndx.aio``), so one test body drives both clients.

``AioLoop()`` (a context manager) runs an event loop in a thread of its own. ``loop.connect(...)``
is ``inndx.aio.connect(...)`` awaited on that loop; what it returns is a ``Blocking`` view: each
method call runs on the loop and the caller waits for it (bounded by ``CALL_BOUND`` seconds,
scaled): a coroutine is awaited there, a session, pipeline or pending handle comes back
as a view again, anything else as it is; ``with`` is ``async with``. Attributes (``closed``,
``session_id``, ``id``) are read through. The async client's readers and writers run on that loop
the whole time, as they would in an asyncio program; the view only waits on its futures.

On exit, every session the view opened and did not close is closed (bounded), then the loop stops
and its thread is joined.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Callable
from typing import Any

import inndx.aio

from tests.support.ports import scaled

CALL_BOUND = 180.0  # every call is bounded by the client's own timeouts; this only stops a hang


class AioLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="inndx-aio-tests", daemon=True)
        self._sessions: list[inndx.aio.Session] = []

    def __enter__(self) -> AioLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for session in self._sessions:
            with contextlib.suppress(Exception):
                self.run(session.close)

        async def _drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=scaled(5)) if tasks else None

        with contextlib.suppress(Exception):
            self.run(_drain)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(scaled(10))
        if not self._thread.is_alive():
            self.loop.close()

    def run(self, make: Callable[[], Any]) -> Any:
        """``make()`` on the loop (awaited when it is a coroutine: a ``Pending`` is only awaitable,
        and stays a handle); its value, or its exception raised."""

        async def call() -> Any:
            value = make()
            return await value if inspect.iscoroutine(value) else value

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(scaled(CALL_BOUND))

    def view(self, value: Any) -> Any:
        if isinstance(value, inndx.aio.Session) and value not in self._sessions:
            self._sessions.append(value)
        if isinstance(value, (inndx.aio.Session, inndx.aio.Pipeline, inndx.aio.Pending)):
            return Blocking(self, value)
        return value

    def connect(self, *args: Any, **kwargs: Any) -> Blocking:
        """``inndx.aio.connect(*args, **kwargs)``, awaited on the loop, as a blocking view."""
        async def opened() -> inndx.aio.Session:
            return await inndx.aio.connect(*args, **kwargs)

        return self.view(self.run(opened))


class Blocking:
    """A blocking view of an ``inndx.aio`` object (see the module's docstring)."""

    def __init__(self, loop: AioLoop, target: Any) -> None:
        self._loop, self._target = loop, target

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value
        return lambda *args, **kwargs: self._loop.view(self._loop.run(lambda: value(*args, **kwargs)))

    def __enter__(self) -> Any:
        return self._loop.view(self._loop.run(self._target.__aenter__))

    def __exit__(self, *exc: Any) -> None:
        self._loop.run(lambda: self._target.__aexit__(*exc))
