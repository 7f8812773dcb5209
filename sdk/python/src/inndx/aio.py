"""The asyncio client: the same session, methods and typed results as ``inndx.connect``, awaited.

>>> async with inndx.aio.connect("ws://127.0.0.1:8022", tenant="acme", client="chrome") as s:
...     page = await s.goto("https://example.com/")
...     first, second = await asyncio.gather(s.goto(url_a), s.goto(url_b))  # both in flight

One WebSocket (the ``websockets`` package) per session, its protocol in ``inndx.core``. A reader
task of the session's own reads every frame as it arrives and hands it to the core, so the
service's pings are answered while the program awaits something else; each call waits for its
own reply, found by ``id``, so several calls of one session can be in flight at once
(``asyncio.gather``, or ``async with s.pipeline() as p``). Frames go out in the order their ids
were given, through one writer.

``connect(..., resume=True)``: a link that breaks is resumed on a new socket by the reader task,
as the sync client does (``inndx.core`` Rule 5); the writer pauses meanwhile, and the frames the
server did not read go out again, in order, before any later one.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from inndx import core
from inndx.actions import Actions
from inndx.core import Call, ws_url
from inndx.errors import ConnectionClosed, Error
from inndx.pipeline import outcomes
from inndx.results import Download

__all__ = ["Pending", "Pipeline", "Session", "connect"]


class Session(Actions):
    """An open session; ``async with`` closes it. Every action method returns an awaitable of
    the value the sync client's returns; an error frame raises ``inndx.Error`` (or a family class)."""

    def __init__(
        self, ws: ClientConnection, session_id: str, reply_timeout: float | None,
        connection: core.Connection | None = None, reconnect: Callable[[], Awaitable[ClientConnection]] | None = None,
        resume_timeout: float = 90.0,
    ) -> None:
        self._ws = ws
        self.session_id = session_id
        self.reply_timeout = reply_timeout
        self._core = connection or core.Connection()
        self._reconnect = reconnect  # a new upgraded socket for a resume (None: no resuming)
        self._resume_timeout = resume_timeout
        self._resuming = False  # the writer waits while the reader resumes
        self.resumes = 0  # how many times the session was resumed on a new socket
        self._loop = asyncio.get_running_loop()
        self._waiters: dict[int, asyncio.Future[None]] = {}  # set once core.answered(id)
        self._outbox: collections.deque[str] = collections.deque()
        self._writer: asyncio.Task[None] | None = None
        self._reader = self._loop.create_task(self._read_forever(), name=f"inndx-reader-{session_id[:8]}")

    @property
    def closed(self) -> Error | None:
        """Why the session is over, once it is (None while it is open)."""
        return self._core.closed

    @property
    def downloads(self) -> list[Download]:
        """Every download the session's replies listed so far, oldest first (a goto's, a click's,
        any action's); ``download(d.id)`` gives its bytes."""
        return list(self._core.downloads)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- actions (inndx.actions) ------------------------------------------------------------
    def _run(self, call: Call[Any]) -> Awaitable[Any]:
        return self._call(call)

    async def _call(self, call: Call[Any]) -> Any:
        return call.convert(await self._reply(self._submit(call.frame)))

    async def close(self) -> None:
        """Send ``close``, wait for ``closed`` and the server's close; idempotent."""
        if self.closed is None:
            try:
                await self._call(Call({"action": "close"}, lambda reply: None))
            except Error:
                pass
        self._lose(ConnectionClosed("the session was closed", 1000, fatal=True))
        await self._ws.close()  # bounded by the connection's close_timeout
        if self._writer is not None:
            self._writer.cancel()
        await asyncio.wait([self._reader], timeout=2)
        self._reader.cancel()

    def pipeline(self) -> Pipeline:
        """Several actions sent at once: ``async with s.pipeline() as p: a = p.goto(...)``."""
        return Pipeline(self)

    # -- plumbing -------------------------------------------------------------------------
    def _submit(self, frame: dict[str, Any]) -> int:
        """Give ``frame`` its id and queue it for the writer (raises once the session is over)."""
        frame_id, text = self._core.send(frame)
        self._waiters[frame_id] = self._loop.create_future()
        self._outbox.append(text)
        if self._writer is None or self._writer.done():
            self._writer = self._loop.create_task(self._write())
        return frame_id

    async def _write(self) -> None:
        while self._outbox and not self._resuming:
            text = self._outbox.popleft()
            try:
                await self._ws.send(text)
            except (websockets.ConnectionClosed, OSError) as exc:
                if self._core.resumable and self._core.closed is None:
                    return  # the core keeps it: sent again once the reader has resumed the session
                self._outbox.clear()
                self._lose(ConnectionClosed(f"the connection was lost: {exc}", 1006, fatal=True))

    async def _reply(self, frame_id: int) -> dict[str, Any]:
        """Wait until the reply to ``frame_id`` is in; raise it if it is an error."""
        waiter = self._waiters[frame_id]
        try:
            if not waiter.done():
                done, _ = await asyncio.wait([waiter], timeout=self.reply_timeout)
                if not done:
                    self._core.forget(frame_id)
                    raise Error(f"no reply within {self.reply_timeout} s", None)
        except asyncio.CancelledError:
            self._core.forget(frame_id)
            raise
        finally:
            self._waiters.pop(frame_id, None)
        return self._core.result(frame_id)

    async def _read_forever(self) -> None:
        """The reader task: every frame into the core (websockets answers pings as it reads)."""
        try:
            while True:
                try:
                    message = await self._ws.recv()
                except websockets.ConnectionClosed as exc:
                    code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd is not None else (1006, "")
                    if self._reconnect is not None and self._core.dropped(code, reason) and await self._resume():
                        continue
                    self._core.receive_close(code, reason)
                    return
                if isinstance(message, str):
                    self._core.receive(message)
                else:
                    self._core.receive_binary()
                self._wake()
        finally:
            self._lose(ConnectionClosed("the connection was lost", 1006, fatal=True))

    async def _resume(self) -> bool:
        """The reader, after a drop: a new socket, the resume frame, the frames the server did
        not read sent again; with backoff until ``resume_timeout``. False when it gave up or the
        server refused (the session is then over with that refusal)."""
        assert self._reconnect is not None
        self._resuming = True
        deadline, delay = self._loop.time() + self._resume_timeout, 0.1
        try:
            while self._loop.time() < deadline and self._core.closed is None:
                try:
                    ws: ClientConnection | None = await self._reconnect()
                except Error as refusal:  # the upgrade was refused
                    if refusal.code in (401, 403):
                        self._lose(refusal)
                        return False
                    ws = None
                except (websockets.InvalidHandshake, OSError, TimeoutError):
                    ws = None
                if ws is not None:
                    try:
                        await ws.send(self._core.resume_frame())
                        data = await asyncio.wait_for(ws.recv(), max(1.0, deadline - self._loop.time()))
                        if not isinstance(data, str):
                            raise OSError("no resume reply")
                        again = self._core.resumed(data)
                        self._outbox.clear()  # all of them are in ``again``, in order
                        self._ws = ws
                        for text in again:
                            await ws.send(text)
                    except Error as refusal:
                        await asyncio.shield(ws.close())
                        if refusal.fatal and refusal.code in (403, 410):
                            self._lose(refusal)
                            return False
                    except (websockets.ConnectionClosed, OSError, TimeoutError):
                        await asyncio.shield(ws.close())
                    else:
                        self.resumes += 1
                        return True
                await asyncio.sleep(min(delay, max(0.0, deadline - self._loop.time())))
                delay = min(delay * 2, 2.0)
            return False
        finally:
            self._resuming = False
            if self._outbox and (self._writer is None or self._writer.done()):
                self._writer = self._loop.create_task(self._write())

    def _lose(self, reason: Error) -> None:
        self._core.lost(reason)
        self._wake()

    def _wake(self) -> None:
        for frame_id, waiter in self._waiters.items():
            if not waiter.done() and self._core.answered(frame_id):
                waiter.set_result(None)


class Pending:
    """A reply not read yet: ``await pending`` (or ``await pending.result()``) gives its value,
    or raises its error (again on every await)."""

    def __init__(self, session: Session, frame_id: int, convert: Callable[[dict[str, Any]], Any]) -> None:
        self._session, self.id, self._convert = session, frame_id, convert
        self._settled: asyncio.Task[tuple[bool, Any]] | None = None

    async def _settle(self) -> tuple[bool, Any]:
        try:
            return True, self._convert(await self._session._reply(self.id))
        except Error as exc:
            return False, exc

    async def result(self) -> Any:
        if self._settled is None:
            self._settled = asyncio.ensure_future(self._settle())
        ok, value = await asyncio.shield(self._settled)
        if not ok:
            raise value
        return value

    def __await__(self) -> Generator[Any, None, Any]:
        return self.result().__await__()


class Pipeline(Actions):
    """Actions sent at once (each method sends its frame and returns a ``Pending``); leaving
    ``async with`` reads every reply; ``await p.results()`` lists them in order, an error reply in
    place as its exception (``raise_errors=True`` raises the first instead)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.pending: list[Pending] = []
        self._results: list[Any] | None = None

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is None:
            await self.gather()

    def _run(self, call: Call[Any]) -> Pending:
        pending = Pending(self._session, self._session._submit(call.frame), call.convert)
        self.pending.append(pending)
        return pending

    async def gather(self) -> list[Any]:
        """Read every reply; results in order, an error in place as its exception object."""
        if self._results is None:
            results = []
            for pending in self.pending:
                try:
                    results.append(await pending.result())
                except Error as exc:
                    results.append(exc)
            self._results = results
        return self._results

    async def results(self, raise_errors: bool = False) -> list[Any]:
        return outcomes(await self.gather(), raise_errors)


class _Connect:
    """What ``connect()`` returns: ``await`` it for the ``Session``, or ``async with`` it."""

    def __init__(self, opening: Callable[[], Awaitable[Session]]) -> None:
        self._opening, self._session = opening, None

    def __await__(self) -> Generator[Any, None, Session]:
        return self._opening().__await__()

    async def __aenter__(self) -> Session:
        self._session = await self._opening()
        return self._session

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()


def connect(
    url: str,
    tenant: str | None = None,
    api_key: str | None = None,
    *,
    client: str | None = None,
    viewport: tuple[int, int] | None = None,
    timeout: str | float | None = None,
    max_redirects: int | None = None,
    max_retries: int | None = None,
    proxies: list[str] | None = None,
    middleware: list[dict[str, Any]] | None = None,
    connect_timeout: float = 30.0,
    reply_timeout: float | None = None,
    resume: bool = False,
    resume_timeout: float = 90.0,
    **fields: Any,
) -> _Connect:
    """Open a session: ``s = await inndx.aio.connect(...)`` or ``async with inndx.aio.connect(...) as s``.

    The arguments are ``inndx.connect``'s, with the same meaning and the same errors.
    """
    frame = core.open_frame(client, viewport, timeout, max_redirects, max_retries, proxies, middleware, fields)
    headers = core.handshake_headers(tenant, api_key)
    return _Connect(lambda: _open(ws_url(url), headers, frame, connect_timeout, reply_timeout, resume, resume_timeout))


async def _upgrade(url: str, headers: list[tuple[str, str]], connect_timeout: float) -> ClientConnection:
    try:  # the service pings; the client answers (no pings of its own), frames of any size, no deflate
        return await ws_connect(url, additional_headers=headers, open_timeout=connect_timeout, ping_interval=None,
                                max_size=None, compression=None)
    except websockets.InvalidStatus as exc:
        raise core.refused(exc.response.status_code, exc.response.body) from None


async def _open(url: str, headers: list[tuple[str, str]], frame: dict[str, Any], connect_timeout: float,
                reply_timeout: float | None, resume: bool = False, resume_timeout: float = 90.0) -> Session:
    try:
        ws = await _upgrade(core.open_url(url, resume), headers, connect_timeout)
    except (websockets.InvalidHandshake, websockets.InvalidURI, OSError, TimeoutError) as exc:
        raise Error(f"cannot connect to {url}: {exc}", None, fatal=True) from None
    try:
        await ws.send(json.dumps(frame))
        try:
            data = await asyncio.wait_for(ws.recv(), connect_timeout)
        except TimeoutError:
            raise Error(f"no reply within {connect_timeout} s", None) from None
        except websockets.ConnectionClosed as exc:
            code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd is not None else (1006, "")
            raise ConnectionClosed(f"the server closed the socket before the open reply ({reason})", code, fatal=True) from None
        if not isinstance(data, str):
            raise Error("the server sent a binary frame", None, fatal=True)
        connection = core.Connection(resumable=resume)
        session_id = core.opened(data, connection)
    except BaseException:
        await asyncio.shield(ws.close())
        raise

    def reconnect() -> Awaitable[ClientConnection]:
        return _upgrade(core.resume_url(url, session_id), headers, connect_timeout)

    return Session(ws, session_id, reply_timeout, connection, reconnect if resume else None, resume_timeout)
