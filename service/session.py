"""A Session: one client's long-lived fetch client, driven from its own thread.

Rule 1: only the session's thread touches its fetch client (and so its WebDriver). Other
threads talk to it through ``submit`` (queue a frame, already read by the protocol), ``abort``
(the client went away), ``fail`` (shutdown), ``live_frame`` (the live view: the client's one
method made for another thread) and, at shutdown only, ``force_close_client``.

Rule 2: every frame the session sends goes through its ``Link`` (``service.resume``: the current
socket's ``Outbox``, one lock, a write deadline, owned by the endpoint; and the replay buffer), and
a ``fatal`` frame is always the last one, followed by the close.

Rule 4: a socket that drops without ``close`` parks the session (``connection_lost``): its thread
stops taking frames and waits for a resume (``resume``, from the new socket's thread) until the
window ends, its expiry comes, or a stop; an action running at the drop finishes first.

Rule 3: the session owns its whole life. Its thread checks its own expiry (idle time, maximum
lifetime) while it waits for frames; when it ends, that same thread closes the client (the
browser quits) and then calls ``on_end`` once, which frees its slots and releases the
tenant's ticket. Nobody else releases them. (States, their moves, the inbox: ``session_inbox``.)

Frames are handled strictly in the order they arrived: a frame the protocol refused (400, 413)
and a frame over the pending bound (429) get their error frame in their turn, after the replies
of the frames before them.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from service import actions, middleware, protocol, replies, resume, session_park
from service.clients.base import ClientOptions, FetchClient
from service.deadline import Deadline
from service.errors import Conflict, InternalError, ServiceError, SessionExpired, Unavailable
from service.session_inbox import MOVES, WAKE, IllegalTransition, Inbox, Outbox, State

logger = logging.getLogger(__name__)


class Session:
    def __init__(
        self,
        session_id: str,
        tenant: str,
        open_frame: protocol.OpenFrame,
        options: ClientOptions,
        client_factory: Callable[[], FetchClient],
        outbox: Outbox,
        *,
        max_pending: int = 16,
        max_pending_bytes: int = 32 * 1024 * 1024,
        start_timeout: float = 30.0,
        idle_timeout: float = 900.0,
        max_lifetime: float = 4 * 3600.0,
        on_action: Callable[[str, str, float], None] | None = None,
        on_end: Callable[[], None] | None = None,
        on_started: Callable[[], None] | None = None,
        resume_window: float = 0.0,
        credentials: resume.Credentials | None = None,
        resume_token: str = "",
        hello: dict[str, Any] | None = None,
        on_record: Callable[[FetchClient | None, Any, bool], None] | None = None,
    ):
        self.id = session_id
        self.tenant = tenant
        self.open_frame = open_frame
        self.options = options
        self.kind = open_frame.client
        self._client_factory = client_factory
        self._client: FetchClient | None = None
        self.link = resume.Link(outbox, resume_window, credentials)  # every frame goes through it (kept for a resume)
        self._resume_token = resume_token  # shown once, in the open reply
        self._hello = hello  # the first reply instead of the open reply (an adopted session's resume reply)
        # the session's record (``service.handover``): after its first reply, each frame handled and at a handover
        self._on_record = on_record or (lambda client, last_done, released: None)
        self.last_done: Any = None  # the id of the last frame handled (errors' included)
        self._start_timeout = start_timeout
        self._idle_timeout = idle_timeout
        self._max_lifetime = max_lifetime
        self._on_action = on_action or (lambda action, outcome, seconds: None)
        self._on_end = on_end or (lambda: None)
        self._on_started = on_started or (lambda: None)  # the client's start is over, however it went
        self._lock = threading.Lock()
        self._inbox = Inbox(self._lock, max_pending, max_pending_bytes)
        self._state = State.OPENING
        self._stop_error: ServiceError | None = None
        self._stop_requested = threading.Event()
        self._interrupt = threading.Event()  # wakes a goto's retry backoff: stop retrying
        self._client_gone = False
        self._forced = False
        self._rng = random.Random()
        self.started_at = time.monotonic()
        self.last_activity = self.started_at
        self.end_reason = "open"
        self.done = threading.Event()  # set once the session will write nothing more
        given = options.middleware  # the hub's Chain; the client sees it as its BlockRules
        self.middleware = given if isinstance(given, middleware.Chain) else middleware.Chain(client=open_frame.client)
        self.log = logging.LoggerAdapter(logger, {"tenant": tenant, "session_id": session_id})
        self.thread = threading.Thread(target=self._run, name=f"session-{session_id[:8]}", daemon=True)

    # ------------------------------------------------------------------ called from other threads

    @property
    def state(self) -> State:
        return self._state

    @property
    def finished(self) -> bool:
        return self._state in (State.CLOSED, State.FAILED)

    @property
    def ending(self) -> bool:
        """On its way out (its client gone, a stop asked for, or its last frame sent): its
        claims are freed soon, once its browser is gone (``Hub`` waits for that at capacity)."""
        return self.done.is_set() or self._stop_requested.is_set()

    def submit(self, item: protocol.Action | ServiceError) -> None:
        """Queue one frame as the protocol read it: an ``Action``, or the error it earned. An
        action over the pending bound is queued as its 429, so that it keeps its turn."""
        with self._lock:
            self.last_activity = time.monotonic()
            item = self._inbox.admit(item)
            if isinstance(item, protocol.Action) and item.name == "close":
                self._interrupt.set()  # a goto ahead of it stops retrying
        self._inbox.put(item)

    def wait_for_room(self, timeout: float) -> bool:
        """Backpressure for the reader: False while the backlog of refused frames is full."""
        return self._inbox.wait_for_room(timeout, self.done)

    def fail(self, error: ServiceError) -> None:
        """End the session with a fatal ``error`` as soon as its current action is done."""
        with self._lock:
            if self._stop_error is None:
                self._stop_error = error
        self._stop()

    def abort(self, reason: str) -> None:
        """The client went away: nothing more can be sent; end the session quietly."""
        with self._lock:
            if not self._client_gone:
                self._client_gone = True
                self.end_reason = reason
        self._stop()

    def connection_lost(self, outbox: Outbox, reason: str) -> None:
        """``outbox``'s socket dropped without a ``close`` action: the session parks (its thread
        waits for a resume, up to the window), or ends quietly when resuming is off."""
        if self.done.is_set():
            return
        if self.link.detach(outbox, reason):
            self._inbox.wake()  # its thread sees the park (and the window's end)
        else:
            self.abort(reason)

    def resume(self, outbox: Outbox, who: tuple[str, str, str], frame: protocol.ResumeFrame) -> None:
        """Take the session over on ``outbox`` (``Link.attach``: 403, 410, or the resume reply
        and the replay are written); the session's thread goes on."""
        self.link.attach(outbox, who, self.id, frame.last_id, frame.has_last_id)
        with self._lock:
            self.last_activity = time.monotonic()
        self.log.info("session resumed")

    def force_close_client(self) -> None:
        """Last resort at shutdown, when the session's thread is stuck past its deadline: the
        one time another thread touches the client. ``close`` is idempotent and kills processes;
        a client still being made or started is closed by the session's thread itself."""
        with self._lock:
            self._forced = True
            client = self._client
        self._stop()
        if client is not None:
            client.close()

    def live_frame(self, timeout: float) -> bytes:
        """The screen, for the live view's thread (``service.live``): the client's ``live_frame``,
        which waits at most ``timeout`` and touches nothing this session's thread uses."""
        with self._lock:
            client = self._client
        if client is None or self.done.is_set():
            raise Conflict("the session has no screen now")
        return client.live_frame(timeout)

    def _stop(self) -> None:
        self._stop_requested.set()
        self._interrupt.set()
        self._inbox.wake()
        self.link.end()  # on its way out: a resume from now on is 410

    # ------------------------------------------------------------------ the session's own thread

    def _move(self, new: State) -> None:
        """The one way the state changes."""
        with self._lock:
            if new not in MOVES[self._state]:
                raise IllegalTransition(f"{self._state.value} -> {new.value}")
            self._state = new

    def _send(self, frame: dict[str, Any]) -> None:
        if self._client_gone:
            return
        if not self.link.send(frame):
            self._lost_client()

    def _lost_client(self) -> None:
        failure = self.link.failure
        if failure is not None:
            self.log.warning("session ends: %s", failure)
        self.abort(failure or "the client went away")

    def _end(self, error: ServiceError | None, close_code: int, reason: str) -> None:
        """Send the fatal frame (if any) and close the socket; the client is closed by ``_run``."""
        if error is not None:
            self._send(replies.error_frame(error, fatal=True))
        if not self._client_gone:
            self.link.close(close_code, reason)
        self.done.set()

    def _run(self) -> None:
        try:
            if self._open():
                self._loop()
        except Exception:  # our bug: never let the thread die silently
            self.log.error("session thread crashed", exc_info=True)
            self.end_reason = "internal error"
            if not self.finished:
                self._move(State.FAILED)
            self._end(InternalError("internal error: the session cannot go on"), 1011, "internal error")
        finally:
            self.done.set()
            self.link.end()
            self._inbox.release_waiters()
            with self._lock:
                client = self._client
            if client is not None:
                try:
                    client.close()
                except Exception:
                    self.log.error("closing the fetch client failed", exc_info=True)
            self.log.info("session ended: %s", self.end_reason)
            if self.middleware.blocked:
                self.log.info("block middleware failed %d sub-resource requests", self.middleware.blocked)
            self._on_end()

    def _open(self) -> bool:
        if self._stop_requested.is_set() and self._stopping():
            return False
        try:
            client = self._client_factory()
            with self._lock:
                self._client = client
                forced = self._forced
            if forced:
                raise Unavailable("the server is shutting down", close_code=1001)
            try:
                client.start(Deadline(self._start_timeout))
            finally:
                self._on_started()
        except ServiceError as error:
            if self._client_gone:
                self._move(State.CLOSING)
                self._move(State.CLOSED)
                return False
            self.log.warning("session open failed: %s (%s)", error.message, error.code)
            self._fail(error)
            return False
        if self._stop_requested.is_set() and self._stopping():
            return False
        with self._lock:  # idle time and lifetime count from the open reply, not the browser start
            self.started_at = self.last_activity = time.monotonic()
        self._move(State.READY)
        self._send(self._hello or replies.session_opened(self.id, self._resume_token))
        self._resume_token = ""  # shown once
        self._on_record(client, self.last_done, False)
        self.log.info("session opened: client %s", self.kind)
        return True

    def _loop(self) -> None:
        while True:
            if self.link.parked and not self._sit_out_park():
                return
            item = self._inbox.get(self._until_expiry())
            if self._stopping() or self._expired():
                return
            if item is WAKE:
                continue
            if self.link.parked and not self._sit_out_park():  # the queue stops while parked
                return
            self._inbox.taken(item)
            if not self._handle(item) or (self._stop_requested.is_set() and self._stopping()):
                return

    def _sit_out_park(self) -> bool:
        args = (self._stop_requested, self._until_expiry, self._stopping, self._expired, self.abort)
        return session_park.sit_out(self.link, self.log, *args)

    def _until_expiry(self) -> float:
        """Seconds until the session would expire if nothing came (at least a little)."""
        with self._lock:
            end = min(self.last_activity + self._idle_timeout, self.started_at + self._max_lifetime)
        return max(0.01, end - time.monotonic())

    def _expired(self) -> bool:
        now = time.monotonic()
        if now - self.started_at >= self._max_lifetime:
            error = SessionExpired(f"the session reached its maximum lifetime of {self._max_lifetime:g}s")
        else:
            with self._lock:
                idle = self._inbox.backlog == 0 and now - self.last_activity >= self._idle_timeout
            if not idle:
                return False
            error = SessionExpired(f"the session was idle for {self._idle_timeout:g}s")
        self._fail(error)
        return True

    def _stopping(self) -> bool:
        if not self._stop_requested.is_set():
            return False
        if self._client_gone:
            if not self.finished:
                if self._state is not State.CLOSING:
                    self._move(State.CLOSING)
                self._move(State.CLOSED)
            self.done.set()
            return True
        self._fail(self._stop_error or InternalError("session stopped"))
        return True

    def _fail(self, error: ServiceError) -> None:
        self.end_reason = f"fatal {error.code}: {error.message}"
        if not self.finished:
            self._move(State.FAILED)  # from any state: a failed session stays failed
        if error.resumable:  # handed over: its record goes first, then the client is told
            self._on_record(self._client, self.last_done, True)
        self._end(error, error.close_code, error.message[:100])

    def _handle(self, item: protocol.Action | ServiceError) -> bool:
        """Handle one frame; False when the session is over."""
        if isinstance(item, ServiceError):  # refused by the protocol or over the pending bound
            self._report("invalid", str(item.code), time.monotonic())
            self._settled(item.action_id)
            self._send(replies.error_frame(item))
            return not self._client_gone
        action = item
        name = action.name
        started = time.monotonic()
        if name == "close":
            self.link.end()  # a resume from now on is 410
        try:
            self._move(State.BUSY)
            try:
                value = self._perform(action)
            finally:
                if self._state is State.BUSY:
                    self._move(State.READY)
            if action.name == "close":
                self._move(State.CLOSING)
                self._send(replies.reply(action))
                self._report(name, "ok", started)
                if not self._client_gone:
                    self.end_reason = "closed by the client"
                self._client.close()
                self._move(State.CLOSED)
                if not self._client_gone:
                    self.link.close(1000, "closed")
                self.done.set()
                return False
            self._settled(action.id)  # its record before its reply: a reply in hand is in the record
            self._send(replies.reply(action, value))
            self._report(name, "ok", started)
            return not self._client_gone
        except ServiceError as error:
            self._report(name, str(error.code), started)
            if error.fatal:
                self.log.warning("fatal error in %s: %s", name, error.message)
                self._fail(error)
                return False
            self._settled(action.id)
            self._send(replies.error_frame(error, action.id))
            return not self._client_gone
        finally:
            with self._lock:
                self.last_activity = time.monotonic()

    def _settled(self, done_id: Any) -> None:
        self.last_done = self.last_done if done_id is None else done_id
        if not self.done.is_set():
            self._on_record(self._client, self.last_done, False)

    def _report(self, name: str, outcome: str, started: float) -> None:
        seconds = time.monotonic() - started
        self.log.info("action %s: %s in %.3fs", name, outcome, seconds)
        self._on_action(name, outcome, seconds)

    def _perform(self, action: protocol.Action) -> Any:
        return actions.perform(self._client, action, self.open_frame, self.middleware, self._rng, self._interrupt)
