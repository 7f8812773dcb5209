"""A Session: one client's long-lived fetch client, driven from its own thread.

Rule 1: only the session's thread touches its fetch client (and so its WebDriver). Other
threads talk to it through ``submit`` (queue a frame), ``abort`` (the client went away) and
``fail`` (expiry, shutdown); the thread picks those up between actions.

Rule 2: every frame the session sends goes through its ``Outbox`` (one lock, owned by the
endpoint), and a ``fatal`` frame is always the last one, followed by the socket's close.

States, and the only moves between them (anything else raises ``IllegalTransition``)::

    OPENING --> READY <--> BUSY
       |          |          |
       +----------+----------+--> CLOSING --> CLOSED
       +----------+----------+--> FAILED             (a failed session stays failed)

Frames are handled strictly in the order they arrived: an invalid frame gets its error frame
in its turn, after the replies of the frames before it.
"""

from __future__ import annotations

import enum
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any
from typing import Protocol as TypingProtocol

from service import middleware, protocol, user_agents
from service.clients.base import ClientOptions, FetchClient, GotoRequest
from service.deadline import Deadline
from service.errors import Conflict, InternalError, NotSupported, ServiceError, TooManyRequests

logger = logging.getLogger(__name__)


class Outbox(TypingProtocol):
    """Where a session's frames go: the endpoint's one locked writer."""

    def send(self, frame: dict[str, Any]) -> None: ...

    def close(self, code: int, reason: str = "") -> None: ...


class State(enum.Enum):
    OPENING = "opening"
    READY = "ready"
    BUSY = "busy"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


_MOVES = {
    State.OPENING: {State.READY, State.CLOSING, State.FAILED},
    State.READY: {State.BUSY, State.CLOSING, State.FAILED},
    State.BUSY: {State.READY, State.CLOSING, State.FAILED},
    State.CLOSING: {State.CLOSED, State.FAILED},
    State.CLOSED: set(),
    State.FAILED: set(),
}


class IllegalTransition(RuntimeError):
    pass


_WAKE = object()


class Session:
    def __init__(
        self,
        session_id: str,
        tenant: str,
        open_frame: protocol.OpenFrame,
        options: ClientOptions,
        client_factory: Callable[[], FetchClient],
        outbox: Outbox,
        proto: protocol.Protocol,
        *,
        max_pending: int = 16,
        max_frame_bytes: int = 16 * 1024 * 1024,
        start_timeout: float = 30.0,
        on_action: Callable[[str, str, float], None] | None = None,
    ):
        self.id = session_id
        self.tenant = tenant
        self.open_frame = open_frame
        self.options = options
        self.kind = open_frame.client
        self._client_factory = client_factory
        self._client: FetchClient | None = None
        self._outbox = outbox
        self._protocol = proto
        self._max_pending = max_pending
        self._max_frame_bytes = max_frame_bytes
        self._start_timeout = start_timeout
        self._on_action = on_action or (lambda action, outcome, seconds: None)
        self._frames: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._state = State.OPENING
        self._stop_error: ServiceError | None = None
        self._stop_requested = threading.Event()
        self._client_gone = False
        self._rng = random.Random()
        self.started_at = time.monotonic()
        self.last_activity = self.started_at
        self.end_reason = "open"
        self.middleware = options.middleware or middleware.Chain(client=open_frame.client)
        self.log = logging.LoggerAdapter(logger, {"tenant": tenant, "session_id": session_id})
        self.thread = threading.Thread(target=self._run, name=f"session-{session_id[:8]}", daemon=True)

    # ------------------------------------------------------------------ called from other threads

    @property
    def state(self) -> State:
        return self._state

    @property
    def finished(self) -> bool:
        return self._state in (State.CLOSED, State.FAILED)

    def idle_since(self) -> float | None:
        """When the session last did anything, or None while it has work."""
        with self._lock:
            if self._pending or self._state in (State.OPENING, State.BUSY):
                return None
            return self.last_activity

    def submit(self, data: str | bytes) -> None:
        """Queue one incoming frame; ``TooManyRequests`` when the queue is full."""
        with self._lock:
            self.last_activity = time.monotonic()
            if self._pending >= self._max_pending:
                raise TooManyRequests(f"too many pending actions: at most {self._max_pending} may wait")
            self._pending += 1
        self._frames.put(data)

    def fail(self, error: ServiceError) -> None:
        """End the session with a fatal ``error`` as soon as its current action is done."""
        with self._lock:
            if self._stop_error is None:
                self._stop_error = error
        self._stop_requested.set()
        self._frames.put(_WAKE)

    def abort(self, reason: str) -> None:
        """The client went away: nothing more can be sent; end the session quietly."""
        with self._lock:
            self._client_gone = True
            self.end_reason = reason
        self._stop_requested.set()
        self._frames.put(_WAKE)

    def force_close_client(self) -> None:
        """Last resort at shutdown, when the session's thread is stuck past its deadline: the
        one time another thread touches the client. ``close`` is idempotent and kills processes."""
        client = self._client
        if client is not None:
            client.close()

    # ------------------------------------------------------------------ the session's own thread

    def _move(self, new: State) -> None:
        with self._lock:
            if new not in _MOVES[self._state]:
                raise IllegalTransition(f"{self._state.value} -> {new.value}")
            self._state = new

    def _send(self, frame: dict[str, Any]) -> None:
        if not self._client_gone:
            self._outbox.send(frame)

    def _end(self, error: ServiceError | None, close_code: int, reason: str) -> None:
        """Send the fatal frame (if any) and close the socket; the client is closed by ``_run``."""
        if error is not None:
            self._send(protocol.error_frame(error, fatal=True))
        if not self._client_gone:
            self._outbox.close(close_code, reason)

    def _run(self) -> None:
        try:
            if self._open():
                self._loop()
        except Exception:  # our bug: never let the thread die silently
            self.log.error("session thread crashed", exc_info=True)
            self.end_reason = "internal error"
            if not self.finished:
                self._state = State.FAILED
            self._end(InternalError("internal error: the session cannot go on"), 1011, "internal error")
        finally:
            if self._client is not None:
                try:
                    self._client.close()
                except Exception:
                    self.log.error("closing the fetch client failed", exc_info=True)
            self.log.info("session ended: %s", self.end_reason)
            if self.middleware.blocked:
                self.log.info("block middleware failed %d sub-resource requests", self.middleware.blocked)

    def _open(self) -> bool:
        try:
            self._client = self._client_factory()
            self._client.start(Deadline(self._start_timeout))
        except ServiceError as error:
            self.log.warning("session open failed: %s (%s)", error.message, error.code)
            self._fail(error)
            return False
        if self._stop_requested.is_set() and self._stopping():
            return False
        with self._lock:
            self.last_activity = time.monotonic()  # idle time counts from the open, not the browser start
        self._move(State.READY)
        self._send(protocol.session_opened(self.id))
        self.log.info("session opened: client %s", self.kind)
        return True

    def _loop(self) -> None:
        while True:
            item = self._frames.get()
            if self._stopping():
                return
            if item is _WAKE:
                continue
            with self._lock:
                self._pending -= 1
            if not self._handle(item):
                return

    def _stopping(self) -> bool:
        if not self._stop_requested.is_set():
            return False
        if self._client_gone:
            self._move(State.CLOSING)
            self._move(State.CLOSED)
            return True
        self._fail(self._stop_error or InternalError("session stopped"))
        return True

    def _fail(self, error: ServiceError) -> None:
        self.end_reason = f"fatal {error.code}: {error.message}"
        self._state = State.FAILED  # from any state: a failed session stays failed
        self._end(error, error.close_code, error.message[:100])

    def _handle(self, data: str | bytes) -> bool:
        """Handle one frame; False when the session is over."""
        action_id = None
        name = "invalid"
        started = time.monotonic()
        try:
            protocol.check_size(data, self._max_frame_bytes)
            frame = self._protocol.decode_json(data)
            action_id = self._protocol.peek_id(frame)
            action = self._protocol.parse_action(frame)
            name = action.name
            self._move(State.BUSY)
            try:
                value = self._perform(action)
            finally:
                if self._state is State.BUSY:
                    self._move(State.READY)
            if action.name == "close":
                self._move(State.CLOSING)
                self._send(protocol.reply(action))
                self._report(name, "ok", started)
                self.end_reason = "closed by the client"
                self._client.close()
                self._move(State.CLOSED)
                if not self._client_gone:
                    self._outbox.close(1000, "closed")
                return False
            self._send(protocol.reply(action, value))
            self._report(name, "ok", started)
            return True
        except ServiceError as error:
            self._report(name, str(error.code), started)
            if error.fatal:
                self.log.warning("fatal error in %s: %s", name, error.message)
                self._fail(error)
                return False
            self._send(protocol.error_frame(error, action_id))
            return True
        finally:
            with self._lock:
                self.last_activity = time.monotonic()

    def _report(self, name: str, outcome: str, started: float) -> None:
        seconds = time.monotonic() - started
        self.log.info("action %s: %s in %.3fs", name, outcome, seconds)
        self._on_action(name, outcome, seconds)

    def _perform(self, action: protocol.Action) -> Any:
        client = self._client
        args = action.args
        timeout = self.open_frame.timeout
        if action.name == "goto":
            request = self._goto_request(args)
            return self.middleware.goto(  # middleware: status retries, standard-client blocks
                request.url,
                lambda: client.goto(request, Deadline(timeout)),
                self.open_frame.max_retries,
                timeout,
                self._stop_requested.wait,
            )
        if action.name == "content":
            return client.content(Deadline(timeout))
        if action.name == "click":
            return client.click(args["selector"], Deadline(timeout))
        if action.name == "fill":
            return client.fill(args["selector"], args["value"], Deadline(timeout))
        if action.name == "evaluate":
            return client.evaluate(args["script"], Deadline(timeout))
        if action.name == "screenshot":
            return client.screenshot(Deadline(timeout))
        if action.name == "close":
            return None
        raise Conflict(f"unhandled action {action.name}")  # unreachable: the schema lists actions

    def _goto_request(self, args: dict[str, Any]) -> GotoRequest:
        if args["method"] == "CONNECT":
            raise NotSupported("CONNECT opens a proxy tunnel, not a page: no client can goto with it")
        request = GotoRequest(
            url=args["url"],
            method=args["method"],
            referrer=args["referrer"],
            user_agent=user_agents.resolve(args["user_agent"], self._rng),
            headers=args["headers"],
            cookies=args["cookies"],
            body=args["body"],
        )
        return self.middleware.apply(request)  # middleware: headers and cookies, in order
