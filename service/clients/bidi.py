"""The BiDi channel, and every reach into Selenium's or websocket-client's private attributes.

Selenium 4.51 delivers each BiDi event on a new thread (arrival order lost) and waits for replies
by polling; ``Bidi`` hooks the connection's message handler so that our replies and events are
recorded in wire order, under one condition variable, and commands can be sent without waiting
(the goto loop answers blocked requests while its ``navigate`` is pending).

Nothing outside this module touches a private attribute of ``selenium`` or ``websocket``:
``connect(driver)`` opens the channel, ``disconnect(driver)`` closes it with short waits, and
``ASSUMPTIONS`` lists what we rely on; ``check_assumptions()`` (run by a unit test) fails loudly
when a pinned version changes one of them.
"""

from __future__ import annotations

import inspect
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from service.deadline import Deadline

logger = logging.getLogger(__name__)

WEBSOCKET_INTERVAL = 0.002  # Selenium polls its BiDi socket this often (default 0.1 s)
LIVENESS_EVERY = 0.25  # seconds between liveness checks while waiting (each reads /proc, and a
# wait wakes on every event: a goto's dozen or more events each paid for one)
# A browser that stops answering (Firefox busy inflating a bomb, a SIGSTOPped process): while a
# wait lasts, after QUIET seconds with no message from the browser, one cheap command is sent
# as a probe (answered by the browser process at once when it is well); when PROBE_BOUND more
# seconds pass with no message at all, the wait raises BrowserUnresponsive (once per silence).
QUIET = 2.0
PROBE_BOUND = 6.0
PROBE = ("browsingContext.getTree", {"maxDepth": 0})
# A browser that is merely busy (Chrome's BiDi mapper serializing a 24 MiB result) answers no
# probe either, but its processes work: while they spend at least BUSY_SHARE of a core through
# the probe's bound, the silence is not declared, up to BUSY_LIMIT seconds of it. A stopped or
# deadlocked browser spends nothing and is declared after QUIET + PROBE_BOUND.
BUSY_SHARE = 0.25
BUSY_LIMIT = 30.0
SELENIUM_PIN = ("4.51",)  # the versions whose private attributes are checked below

# (where, attribute) pairs: an attribute read or written on an instance made in ``__init__`` is
# checked in that class's source; a method or class attribute with hasattr.
ASSUMPTIONS: tuple[tuple[str, str], ...] = (
    ("selenium.webdriver.remote.webdriver.WebDriver", "_start_bidi"),
    ("selenium.webdriver.remote.webdriver.WebDriver", "self._websocket_connection"),
    ("selenium.webdriver.remote.websocket_connection.WebSocketConnection", "_process_message"),
    ("selenium.webdriver.remote.websocket_connection.WebSocketConnection", "self._id_lock"),
    ("selenium.webdriver.remote.websocket_connection.WebSocketConnection", "self._id"),
    ("selenium.webdriver.remote.websocket_connection.WebSocketConnection", "self._ws"),
    ("selenium.webdriver.remote.websocket_connection.WebSocketConnection", "self._ws_thread"),
    ("selenium.webdriver.remote.websocket_connection.WebSocketConnection", "self.callbacks"),
    ("selenium.webdriver.remote.websocket_connection.WebSocketConnection", "self.response_wait_timeout"),
    ("selenium.webdriver.remote.client_config.ClientConfig", "self.websocket_interval"),
    ("websocket._app.WebSocketApp", "self.sock"),
    ("websocket._app.WebSocketApp", "self.keep_running"),
    ("websocket._core.WebSocket", "self.frame_buffer"),
    ("websocket._core.WebSocket", "self.cont_frame"),
    ("websocket._core.WebSocket", "self.sock"),
    ("websocket._abnf.frame_buffer", "self.skip_utf8_validation"),
    ("websocket._abnf.continuous_frame", "self.skip_utf8_validation"),
)


def check_assumptions() -> list[str]:
    """What no longer holds in the installed Selenium / websocket-client (empty when all do)."""
    import importlib

    import selenium

    broken = []
    if not selenium.__version__.startswith(SELENIUM_PIN):
        broken.append(f"selenium {selenium.__version__} is not a checked version {SELENIUM_PIN}")
    for where, name in ASSUMPTIONS:
        module_name, _, class_name = where.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            broken.append(f"{where} is gone")
            continue
        if name.startswith("self."):
            text = inspect.getsource(cls)
            if f"{name} =" not in text and f"{name}: " not in text:
                broken.append(f"{where} no longer sets {name}")
        elif not hasattr(cls, name):
            broken.append(f"{where} has no {name}")
    # ``Bidi.ask`` sends from the live view's thread beside the session's: the socket that
    # WebSocketApp makes must serialise sends (websocket-client's per-socket lock)
    from websocket._app import WebSocketApp

    if "enable_multithread=True" not in inspect.getsource(WebSocketApp.run_forever):
        broken.append("websocket._app.WebSocketApp.run_forever no longer makes a socket safe to send on from two threads")
    # ``browser_launch.remote_config``: a Grid's classic commands are never retried
    from selenium.webdriver.remote.remote_connection import RemoteConnection

    making = getattr(RemoteConnection, "_get_connection_manager", None)
    if making is None or 'init_args_for_pool_manager.get("init_args_for_pool_manager"' not in inspect.getsource(making):
        broken.append("RemoteConnection no longer reads init_args_for_pool_manager the way remote_config gives it")
    return broken


def connect(driver: Any) -> Bidi:
    """Open the driver's BiDi socket (polled every ``WEBSOCKET_INTERVAL``) and wrap it."""
    driver.command_executor.client_config.websocket_interval = WEBSOCKET_INTERVAL
    driver._start_bidi()
    return Bidi(driver._websocket_connection)


def disconnect(driver: Any) -> None:
    """Close the BiDi socket ourselves with short waits: Firefox may never answer the close frame
    (websocket-client waits 3 s for it, Selenium's join up to 30 s more). Idempotent."""
    conn = getattr(driver, "_websocket_connection", None)
    if conn is None:
        return
    conn.response_wait_timeout = 0.2
    ws = getattr(conn, "_ws", None)
    try:
        if ws is not None:
            ws.keep_running = False
            if ws.sock is not None:
                ws.sock.close(timeout=0.2)
    except Exception as exc:  # noqa: BLE001 - closing a dead socket fails in many ways
        logger.debug("closing the BiDi socket failed: %r", exc)
    thread = getattr(conn, "_ws_thread", None)
    if thread is not None:
        thread.join(0.3)
    driver._websocket_connection = None


class BidiError(Exception):
    """A BiDi command answered with an error."""

    def __init__(self, error: str, message: str):
        super().__init__(f"{error}: {message}")
        self.error = error
        self.message = message


class BidiClosed(Exception):
    """The BiDi socket is gone (browser or node died)."""


class BrowserUnresponsive(TimeoutError):
    """The browser answered nothing, not even a probe, for ``seconds``: a wedge, not a slow page."""

    def __init__(self, seconds: float):
        super().__init__(f"the browser answered nothing for {seconds:.0f}s, not even a probe")
        self.seconds = seconds


class Bidi:
    """Commands and events over Selenium's BiDi websocket, in wire order.

    ``send`` returns a command id at once; ``wait_reply`` waits for it under a deadline. Events
    of subscribed names are appended to ``events`` (a deque the owner drains) and wake waiters.
    The session thread sends and waits; the socket thread only records and notifies. One other
    thread may use the channel: the live view's (``ask``), which sends (websocket-client's send
    takes its own lock) and waits for its own reply alone, with no probe and no liveness check.
    """

    def __init__(self, conn: Any):
        self._conn = conn
        self.cond = threading.Condition()
        self._replies: dict[int, dict] = {}
        self._pending: set[int] = set()
        self._ignored: set[int] = set()  # commands sent without wanting the reply (dropped on arrival)
        self.events: deque[tuple[str, dict]] = deque(maxlen=50000)
        self.listening = False
        self.liveness: Callable[[], bool] | None = None  # extra check while waiting (processes)
        self.cpu_seconds: Callable[[], float | None] | None = None  # the browser's CPU time (local)
        self._cpu_mark: float | None = None  # cpu_seconds() when the probe's bound began
        # events also handed to a callback, on the socket thread (the download watcher's): a tap
        # must be quick and must not wait for anything
        self.taps: dict[str, Callable[[str, dict], None]] = {}
        self._liveness_due = 0.0  # monotonic time of the next liveness check
        self._heard = time.monotonic()  # the last message from the browser
        self.received = 0  # characters of every message received (chrome_mapper's measure)
        self._probe_at: float | None = None  # when the probe of the current silence was sent
        self._declared: float | None = None  # when this silence was declared unresponsive
        self._original = conn._process_message
        conn._process_message = self._on_message
        # websocket-client validates UTF-8 of every frame in pure Python (seconds for a 10 MB
        # body); the text is decoded by bytes.decode right after anyway, which still rejects bad
        # UTF-8, so the slow pass is skipped.
        sock = getattr(getattr(conn, "_ws", None), "sock", None)
        for part in (
            getattr(sock, "frame_buffer", None),
            getattr(sock, "cont_frame", None),
        ):
            if part is not None and hasattr(part, "skip_utf8_validation"):
                part.skip_utf8_validation = True

    def _quickack(self) -> None:
        """Acknowledge at once. Firefox's BiDi server writes small frames without TCP_NODELAY, so
        a frame sent right after another waits for our ACK, which Linux delays up to 40 ms:
        re-arming TCP_QUICKACK after every message removes that stall."""
        raw = getattr(getattr(getattr(self._conn, "_ws", None), "sock", None), "sock", None)
        if raw is not None and hasattr(socket, "TCP_QUICKACK"):
            try:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                pass

    def _on_message(self, message: str) -> None:
        self._heard = time.monotonic()
        self.received += len(message)
        self._quickack()
        try:
            data = json.loads(message)
        except ValueError:
            return
        with self.cond:
            ident = data.get("id")
            if ident in self._pending:
                self._pending.discard(ident)
                self._replies[ident] = data
                self.cond.notify_all()
                return
            if ident in self._ignored:  # never to Selenium, which would keep it forever
                self._ignored.discard(ident)
                return
            method = data.get("method")
            tap = self.taps.get(method) if method else None
            if method and self.listening:
                self.events.append((method, data.get("params") or {}))
                self.cond.notify_all()
        if tap is not None:
            try:
                tap(method, data.get("params") or {})
            except Exception:  # noqa: BLE001 - a tap's failure must not end the socket thread
                logger.error("BiDi event tap for %s failed", method, exc_info=True)
        if ident is not None or (method and self._conn.callbacks.get(method)):
            self._original(message)

    def alive(self) -> bool:
        ws = getattr(self._conn, "_ws", None)
        sock = getattr(ws, "sock", None)
        return bool(sock is not None and getattr(sock, "connected", False))

    def send(self, method: str, params: dict) -> int:
        conn = self._conn
        with conn._id_lock:
            conn._id += 1
            ident = conn._id
        payload = {"id": ident, "method": method, "params": params}
        with self.cond:
            self._pending.add(ident)
        try:
            conn._ws.send(json.dumps(payload))
        except Exception as exc:
            with self.cond:
                self._pending.discard(ident)
            raise BidiClosed(f"BiDi socket closed: {exc}") from exc
        return ident

    def forget(self, ident: int) -> None:
        """Drop a command whose reply we no longer want (if it comes later, it is dropped too)."""
        with self.cond:
            if ident in self._pending:
                self._pending.discard(ident)
                self._ignored.add(ident)
            self._replies.pop(ident, None)

    def post(self, method: str, params: dict) -> None:
        """Send a command whose reply buys nothing (a clean-up): no round trip is waited for."""
        self.forget(self.send(method, params))

    def pipeline(self, calls: list[tuple[str, dict]], timeout: Deadline | float) -> list[dict | BidiError]:
        """Send every command at once, then wait for all replies: one round trip for all. Each
        entry is the result, or the BidiError it answered; raises TimeoutError if any is late."""
        idents = [self.send(method, params) for method, params in calls]
        with self.cond:
            arrived = self.wait(lambda: all(ident in self._replies for ident in idents), timeout)
        if not arrived:
            for ident in idents:
                self.forget(ident)
            raise TimeoutError(f"BiDi {', '.join(method for method, _ in calls)} got no answer in time")
        results: list[dict | BidiError] = []
        for ident in idents:
            try:
                results.append(self.take_reply(ident) or {})
            except BidiError as exc:
                results.append(exc)
        return results

    def take_reply(self, ident: int) -> dict | None:
        """The reply if it has arrived (raises BidiError for an error reply), else None."""
        with self.cond:
            data = self._replies.pop(ident, None)
        if data is None:
            return None
        if "error" in data:
            raise BidiError(str(data.get("error")), str(data.get("message", "")))
        return data.get("result") or {}

    def wait(self, predicate: Callable[[], bool], deadline: Deadline | float) -> bool:
        """Wait under the condition until ``predicate()`` or the deadline; raise BidiClosed when
        the socket dies meanwhile. Call with the condition held."""
        end = time.monotonic() + deadline if isinstance(deadline, (int, float)) else None
        while not predicate():
            left = (end - time.monotonic()) if end is not None else deadline.remaining()
            if left <= 0:
                return False
            self.cond.wait(min(left, 0.5))
            if not predicate() and not self.alive():
                raise BidiClosed("BiDi socket closed: the browser went away")
            if not predicate() and self.liveness is not None and self._liveness_due_now() and not self.liveness():
                raise BidiClosed("the browser or driver process died")
            if not predicate() and self._unresponsive_now():
                raise BrowserUnresponsive(time.monotonic() - self._heard)
        return True

    def _unresponsive_now(self) -> bool:
        """Probe a silent browser; True once per silence, when the probe went unanswered too."""
        now, heard = time.monotonic(), self._heard
        if now - heard < QUIET:
            return False
        if self._probe_at is None or self._probe_at < heard:
            self._probe_at, self._cpu_mark = now, self._cpu()
            self.post(*PROBE)  # its reply is dropped; its arrival is what counts
            return False
        if now - self._probe_at < PROBE_BOUND or (self._declared is not None and self._declared > heard):
            return False
        cpu = self._cpu()
        busy = cpu is not None and self._cpu_mark is not None and cpu - self._cpu_mark >= BUSY_SHARE * (now - self._probe_at)
        if busy and now - heard < BUSY_LIMIT:
            self._probe_at, self._cpu_mark = now, cpu  # working, not wedged: another bound
            return False
        self._declared = now
        return True

    def _cpu(self) -> float | None:
        try:
            return self.cpu_seconds() if self.cpu_seconds is not None else None
        except Exception:  # noqa: BLE001 - a process that went away: no figure
            return None

    def unresponsive_for(self) -> float:
        """Seconds of the current silence, once it was declared unresponsive; else 0."""
        heard, declared = self._heard, self._declared
        return time.monotonic() - heard if declared is not None and declared > heard else 0.0

    def _liveness_due_now(self) -> bool:
        """At most one liveness check per ``LIVENESS_EVERY``: a wait wakes on every event."""
        now = time.monotonic()
        if now < self._liveness_due:
            return False
        self._liveness_due = now + LIVENESS_EVERY
        return True

    def command(self, method: str, params: dict, timeout: Deadline | float) -> dict:
        ident = self.send(method, params)
        with self.cond:
            arrived = self.wait(lambda: ident in self._replies, timeout)
        if not arrived:
            self.forget(ident)
            raise TimeoutError(f"BiDi {method} got no answer in time")
        result = self.take_reply(ident)
        assert result is not None
        return result

    def ask(self, method: str, params: dict, timeout: float) -> dict:
        """``command`` for a thread that is not the session's (the live view): its reply is
        waited for on the condition alone, at most ``timeout`` seconds, with none of ``wait``'s
        side effects (the silence probe, the liveness checks: the session thread's to make).
        Raises TimeoutError (the reply, if it comes later, is dropped), BidiClosed, BidiError."""
        ident = self.send(method, params)
        with self.cond:
            arrived = self.cond.wait_for(lambda: ident in self._replies, timeout)
        if not arrived:
            self.forget(ident)
            raise TimeoutError(f"BiDi {method} got no answer within {timeout:g}s")
        result = self.take_reply(ident)
        assert result is not None
        return result

    def awaiting(self, ident: int) -> bool:
        """Whether the command's reply is still wanted and has not come."""
        with self.cond:
            return ident in self._pending

    def has_reply(self, ident: int) -> bool:
        return ident in self._replies  # read under self.cond by callers

