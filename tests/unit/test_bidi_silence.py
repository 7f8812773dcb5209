"""The BiDi channel's watch on a silent browser, and the gate a failed goto's navigations set.

A fake connection stands in for Selenium's (the attributes ``bidi.ASSUMPTIONS`` pins); the fake
browser answers what a test tells it to, on the sending thread, as a socket thread would.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from service import errors
from service.clients import bidi as channel
from service.clients import navigation_cleanup
from service.clients.bidi import Bidi, BrowserUnresponsive
from service.clients.navigation_cleanup import Unsettled
from service.deadline import Deadline


class FakeSocket:
    connected = True


class FakeWs:
    def __init__(self, conn: FakeConn):
        self.conn, self.sock = conn, FakeSocket()

    def send(self, text: str) -> None:
        self.conn.sent.append(json.loads(text))
        self.conn.answer(json.loads(text))


class FakeConn:
    """Answers probes when ``well``; answers the commands in ``replies`` (method -> result)."""

    def __init__(self) -> None:
        self._id_lock = threading.Lock()
        self._id = 0
        self.callbacks: dict = {}
        self.sent: list[dict] = []
        self.well = True
        self.replies: dict[str, dict] = {}
        self._ws = FakeWs(self)

    def _process_message(self, message: str) -> None:  # Selenium's, replaced by Bidi
        pass

    def answer(self, frame: dict) -> None:
        method = frame["method"]
        if (method, frame["params"]) == channel.PROBE and self.well:
            self.later({"id": frame["id"], "type": "success", "result": {"contexts": []}})
        elif method in self.replies:
            self.later({"id": frame["id"], "type": "success", "result": self.replies[method]})

    def later(self, data: dict) -> None:
        threading.Timer(0.01, self._process_message, [json.dumps(data)]).start()


@pytest.fixture()
def quick(monkeypatch):
    monkeypatch.setattr(channel, "QUIET", 0.2)
    monkeypatch.setattr(channel, "PROBE_BOUND", 0.4)
    monkeypatch.setattr(navigation_cleanup, "SUPERSEDED_GRACE", 0.2)


def probes(conn: FakeConn) -> int:
    return sum(1 for frame in conn.sent if (frame["method"], frame["params"]) == channel.PROBE)


def test_a_silent_browser_is_declared_once_per_silence(quick):
    conn = FakeConn()
    conn.well = False
    bidi = Bidi(conn)
    started = time.monotonic()
    with pytest.raises(BrowserUnresponsive, match="answered nothing"):
        bidi.command("browsingContext.navigate", {}, 30.0)
    assert time.monotonic() - started < 5.0  # QUIET + PROBE_BOUND (+ one 0.5 s wake), not the 30 s
    assert probes(conn) == 1 and bidi.unresponsive_for() > 0
    # the same silence: later waits run to their own bound (the clean-up after the 504)
    with pytest.raises(TimeoutError) as caught:
        bidi.command("browsingContext.navigate", {}, 1.0)
    assert not isinstance(caught.value, BrowserUnresponsive)
    # any message ends the silence
    conn.well = True
    bidi.command("browsingContext.getTree", {"maxDepth": 0}, 2.0)
    assert bidi.unresponsive_for() == 0.0


def test_a_busy_browser_is_declared_only_at_the_busy_limit(quick, monkeypatch):
    """A silent browser whose processes keep working (a huge result being serialized) is not
    wedged: the silence is declared only at BUSY_LIMIT; one that spends nothing at QUIET +
    PROBE_BOUND."""
    monkeypatch.setattr(channel, "BUSY_LIMIT", 2.0)
    conn = FakeConn()
    conn.well = False
    bidi = Bidi(conn)
    started = time.monotonic()
    bidi.cpu_seconds = lambda: (time.monotonic() - started) * 0.9  # most of a core
    with pytest.raises(BrowserUnresponsive):
        bidi.command("browsingContext.navigate", {}, 30.0)
    took = time.monotonic() - started
    assert 2.0 <= took < 5.0, took
    idle = Bidi(FakeConn())
    idle._conn.well = False
    idle.cpu_seconds = lambda: 1.5  # spends nothing
    started = time.monotonic()
    with pytest.raises(BrowserUnresponsive):
        idle.command("browsingContext.navigate", {}, 30.0)
    assert time.monotonic() - started < 1.8


def test_a_slow_command_of_a_well_browser_is_its_own_timeout(quick):
    conn = FakeConn()  # probes answered, the navigate never
    bidi = Bidi(conn)
    with pytest.raises(TimeoutError) as caught:
        bidi.command("browsingContext.navigate", {}, 2.0)
    assert not isinstance(caught.value, BrowserUnresponsive)
    assert probes(conn) >= 2  # one per silence of QUIET
    assert bidi.unresponsive_for() == 0.0


def test_no_probe_while_the_browser_talks(quick):
    conn = FakeConn()
    conn.replies["script.evaluate"] = {"type": "success"}
    bidi = Bidi(conn)
    for _ in range(5):
        bidi.command("script.evaluate", {}, 1.0)
    assert probes(conn) == 0


def test_the_next_navigation_waits_for_the_blank_and_ignores_its_events(quick):
    conn = FakeConn()
    conn.well = False  # the browser is busy: nothing answers
    bidi = Bidi(conn)
    unsettled = Unsettled()
    goto_nav = bidi.send("browsingContext.navigate", {"url": "http://x/"})
    unsettled.keep(goto_nav)
    unsettled.keep(bidi.send("browsingContext.navigate", {"url": "about:blank"}), blank=True)
    assert unsettled.settle(bidi, Deadline(0.3), quiet=True) is False
    with pytest.raises(errors.GatewayTimeout, match="still busy"):
        unsettled.settle(bidi, Deadline(0.3))
    assert unsettled  # still kept: the next goto waits again
    # the browser wakes up: the blank starts (its navigation id), the goto navigate never answers
    conn.later({"id": unsettled.blank, "type": "success", "result": {"navigation": "n-blank", "url": "about:blank"}})
    assert unsettled.settle(bidi, Deadline(5.0)) is True
    assert not unsettled and "n-blank" in unsettled.stale
    assert not bidi.awaiting(goto_nav)  # superseded by the blank, forgotten after the grace


def test_an_interrupted_navigation_is_settled_too(quick):
    conn = FakeConn()
    bidi = Bidi(conn)
    unsettled = Unsettled()
    goto_nav = bidi.send("browsingContext.navigate", {"url": "http://x/"})
    unsettled.keep(goto_nav)
    conn.later({"id": goto_nav, "type": "error", "error": "unknown error", "message": "interrupted"})
    assert unsettled.settle(bidi, Deadline(5.0)) is True and not unsettled
