"""Races that could leak a browser, each forced with a slow fake client or a hook where a real
browser cannot hit the window (the real-browser half: tests/e2e/test_hostile_clients.py)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from simple_websocket import ConnectionClosed

from service import endpoint, protocol, replies
from service import hub as hub_module
from service.clients.base import ClientOptions, FetchClient
from service.config import Settings
from service.errors import Unavailable, UpstreamError
from service.hub import Hub
from service.session import Session

WAIT = 10.0


class FakeClient(FetchClient):
    """A fetch client whose start can be held, and whose goto always fails upstream."""

    kind = "standard"

    def __init__(self, hold_start: threading.Event | None = None):
        self.hold_start = hold_start
        self.starting = threading.Event()
        self.started = False
        self.closed = threading.Event()
        self.attempts = 0

    def start(self, deadline):
        self.starting.set()
        if self.hold_start is not None:
            assert self.hold_start.wait(WAIT)
        self.started = True

    def goto(self, request, deadline):
        self.attempts += 1
        time.sleep(0.05)
        raise UpstreamError("connection refused")

    def content(self, deadline):
        return b""

    def click(self, selector, deadline):
        return None

    def fill(self, selector, value, deadline):
        return None

    def evaluate(self, script, deadline):
        return None

    def screenshot(self, deadline, options=None):
        return None

    def close(self):
        self.closed.set()


class FakeOutbox:
    failure = None

    def __init__(self):
        self.frames: list[dict] = []
        self.closed: list[int] = []

    def send(self, frame):
        self.frames.append(json.loads(frame) if isinstance(frame, str) else frame)  # the session's link sends text
        return True

    def close(self, code, reason=""):
        self.closed.append(code)
        return True


def _session(factory, outbox=None, *, max_retries=0, on_end=None) -> Session:
    open_frame = protocol.OpenFrame(timeout=1.0, max_retries=max_retries)
    return Session("s-1234567890", "acme", open_frame, ClientOptions(), factory, outbox or FakeOutbox(),
                   on_end=on_end)


def _action(name: str, **args) -> protocol.Action:
    return protocol.Protocol().receive(replies.encode({"action": name, **args}), 1 << 20)


def test_a_close_before_the_client_exists_means_it_never_starts():
    made = threading.Event()
    release = threading.Event()
    client = FakeClient()
    ended = []

    def slow_factory():
        made.set()
        assert release.wait(WAIT)
        return client

    session = _session(slow_factory, on_end=lambda: ended.append(1))
    session.thread.start()
    assert made.wait(WAIT)
    session.force_close_client()  # the client is not there yet: nothing to close from here
    release.set()
    session.thread.join(WAIT)
    assert not session.thread.is_alive()
    assert not client.starting.is_set() and client.closed.is_set() and ended == [1]


def test_a_close_during_start_closes_the_client_when_start_returns():
    hold = threading.Event()
    client = FakeClient(hold)
    ended = []
    session = _session(lambda: client, on_end=lambda: ended.append(1))
    session.thread.start()
    assert client.starting.wait(WAIT)
    session.force_close_client()
    assert client.closed.is_set()
    hold.set()
    session.thread.join(WAIT)
    assert ended == [1] and session.finished


def test_open_session_after_shutdown_began_is_refused_and_holds_nothing():
    hub = Hub(Settings())
    ticket = hub.admit("acme", None)
    hub.shutdown(timeout=0)
    with pytest.raises(Unavailable):
        hub.open_session(ticket, protocol.OpenFrame(client="chrome"), FakeOutbox())
    assert hub.quotas.in_use("local_browsers") == 0 and hub.active_sessions() == 0


def test_shutdown_beginning_in_the_middle_of_open_session_is_seen(monkeypatch):
    hub = Hub(Settings())
    ticket = hub.admit("acme", None)
    real_resolve = hub.proxies.resolve

    def resolve_then_shutdown(ids, tenant):  # a hook inside open_session, before it registers
        stopper = threading.Thread(target=hub.shutdown, kwargs={"timeout": 0})
        stopper.start()
        stopper.join(WAIT)
        return real_resolve(ids, tenant)

    monkeypatch.setattr(hub.proxies, "resolve", resolve_then_shutdown)
    with pytest.raises(Unavailable):
        hub.open_session(ticket, protocol.OpenFrame(client="chrome"), FakeOutbox())
    assert hub.quotas.in_use("local_browsers") == 0 and hub.active_sessions() == 0


class FakeWs:
    """A socket whose client sends the open frame and then leaves."""

    def __init__(self):
        self.sock = None
        self.thread = None
        self.connected = True
        self.ping_interval, self.pong_received, self.close_reason = 20.0, True, 1001  # as simple-websocket's
        self.sent: list[str] = []
        self._frames = ['{"client": "standard"}']

    def receive(self, timeout=None):
        if self._frames:
            return self._frames.pop(0)
        self.connected = False
        raise ConnectionClosed(1001, "gone")

    def send(self, text):
        self.sent.append(text)

    def close(self, reason=None, message=None):
        self.connected = False


def test_the_endpoint_never_waits_for_a_slow_start_and_the_session_frees_its_slot(monkeypatch):
    hold = threading.Event()
    client = FakeClient(hold)
    monkeypatch.setattr(hub_module, "make_client", lambda kind, options, settings: client)
    hub = Hub(Settings(default_max_sessions=1))
    ticket = hub.admit("acme", None)
    started = time.monotonic()
    endpoint.serve(FakeWs(), hub, ticket)  # the client left while its browser is still starting
    assert time.monotonic() - started < 3
    assert client.starting.is_set() and not client.closed.is_set()
    monkeypatch.setattr(hub_module, "ENDING_WAIT", 0.2)  # an admit waits that long for an ending
    with pytest.raises(Exception, match="maximum"):  # the slot is still held: the browser may be alive
        hub.admit("acme", None)
    monkeypatch.setattr(hub_module, "ENDING_WAIT", WAIT)
    admitted: list = []
    waiter = threading.Thread(target=lambda: admitted.append(hub.admit("acme", None)))
    waiter.start()  # waits for the ending session, as a client that reconnects at once does
    hold.set()
    assert client.closed.wait(WAIT)
    waiter.join(WAIT)
    assert len(admitted) == 1 and hub.active_sessions() == 0  # freed by the session itself, after its client closed
    admitted[0].release()


def test_a_refusal_with_no_session_ending_waits_for_no_ending(monkeypatch):
    """At its limit with every session alive, an admit is refused after the drop grace alone,
    never the whole ENDING_WAIT."""
    monkeypatch.setattr(hub_module, "make_client", lambda kind, options, settings: FakeClient())
    monkeypatch.setattr(hub_module, "ENDING_WAIT", 60.0)
    hub = Hub(Settings(default_max_sessions=1))
    ticket = hub.admit("acme", None)
    outbox = FakeOutbox()
    session = hub.open_session(ticket, protocol.OpenFrame(client="standard"), outbox)
    refused: list = []

    def admit() -> None:
        try:
            hub.admit("acme", None)
        except Exception as exc:  # noqa: BLE001 - kept for the assertion
            refused.append(exc)

    waiter = threading.Thread(target=admit)
    waiter.start()
    waiter.join(WAIT)  # far below ENDING_WAIT: the alive session is not waited for
    assert not waiter.is_alive() and "maximum" in str(refused[0])
    session.abort("the client went away")
    hub.shutdown(WAIT)


@pytest.mark.parametrize("stop", ["close", "abort"])
def test_retries_stop_once_the_session_is_told_to_stop(stop):
    client = FakeClient()
    outbox = FakeOutbox()
    session = _session(lambda: client, outbox, max_retries=10)
    session.submit(_action("goto", url="http://127.0.0.1:9/", id=1))
    if stop == "close":  # queued behind the goto before the session even starts: no load can reorder it
        session.submit(_action("close", id=2))
    session.thread.start()
    if stop != "close":
        deadline = time.monotonic() + WAIT
        while client.attempts < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        session.abort("the client went away")
    session.thread.join(WAIT)
    assert not session.thread.is_alive()
    assert client.attempts <= 2  # ten retries with backoff would take seconds
    if stop == "close":
        replies = outbox.frames[1:]
        assert replies[0]["code"] == 502 and replies[0]["id"] == 1
        assert replies[1] == {"action": "closed", "id": 2}
