"""The live view's feed and bounds (``service.live``), with a stand-in session: pacing, frames
shared by viewers, equal frames not sent again, a capture that hangs holding up no other viewer,
the session's end, and the viewer bounds."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from service import live
from service.errors import Conflict, Forbidden, NotFound, NotSupported, TooManyRequests, Unavailable
from service.tenants import Tenant

SID = "12345678-1234-4234-8234-123456789abc"


class FakeSession:
    def __init__(self, kind: str = "chrome", tenant: str = "acme", same: bool = False, hang: bool = False):
        self.id, self.kind, self.tenant = SID, kind, tenant
        self.done = threading.Event()
        self.log = logging.LoggerAdapter(logging.getLogger("test.live"), {})
        self.calls = 0
        self.same, self.hang = same, hang
        self.release = threading.Event()
        self.entered = threading.Event()  # a capture is under way
        self._lock = threading.Lock()

    def live_frame(self, timeout: float) -> bytes:
        with self._lock:
            self.calls += 1
            n = self.calls
        self.entered.set()
        if self.hang:
            self.release.wait(timeout)
            raise Conflict("no frame")
        return b"same" if self.same else f"frame {n}".encode()


def test_viewers_share_one_paced_feed():
    session = FakeSession()
    feed = live.Feed(session, interval=0.1)
    seen: dict[int, list[int]] = {0: [], 1: [], 2: []}
    end = time.monotonic() + 1.0

    def watch(who: int) -> None:
        last = 0
        while time.monotonic() < end:
            frame = feed.next_frame(last, 0.3)
            if frame is not None:
                assert frame.seq > last
                last = frame.seq
                seen[who].append(frame.seq)

    threads = [threading.Thread(target=watch, args=(who,)) for who in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert 8 <= session.calls <= 12  # ten a second, for three viewers together
    for frames in seen.values():
        assert len(frames) >= 7 and frames == sorted(set(frames))


def test_an_unchanged_screen_is_not_sent_again():
    session = FakeSession(same=True)
    feed = live.Feed(session, interval=0.05)
    first = feed.next_frame(0, 1.0)
    assert first is not None and first.seq == 1
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        assert feed.next_frame(1, 0.1) is None
    assert 4 <= session.calls <= 9  # captured all along (20 a second), sent once


def test_a_capture_that_hangs_holds_up_no_other_viewer():
    session = FakeSession(hang=True)
    feed = live.Feed(session, interval=0.05)
    capturer = threading.Thread(target=feed.next_frame, args=(0, 0.1))
    capturer.start()
    assert session.entered.wait(5)  # the capturer is in live_frame now (it waits up to CAPTURE_WAIT)
    started = time.monotonic()
    assert feed.next_frame(0, 0.2) is None
    assert time.monotonic() - started < 0.5
    assert session.calls == 1  # one capture at a time
    session.release.set()
    capturer.join(5)
    assert not capturer.is_alive()


def test_a_failed_capture_backs_off():
    session = FakeSession(hang=True)
    session.release.set()  # every capture fails at once
    feed = live.Feed(session, interval=0.05)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        feed.next_frame(0, 0.1)
    assert session.calls == 1  # the next try waits BACKOFF


def test_an_ended_session_gives_no_frame_and_no_wait():
    session = FakeSession()
    session.done.set()
    started = time.monotonic()
    assert live.Feed(session, interval=0.05).next_frame(0, 5) is None
    assert time.monotonic() - started < 0.5 and session.calls == 0


def test_the_bounds_on_viewers():
    viewers = live.Viewers(fps=4, per_session=2, per_worker=3, retry_after=5)
    session, other = FakeSession(), FakeSession()
    other.id = SID.replace("1", "2")
    first, second = viewers.join(session), viewers.join(session)
    assert first.feed is second.feed
    with pytest.raises(TooManyRequests):
        viewers.join(session)
    third = viewers.join(other)
    with pytest.raises(Unavailable) as refused:
        viewers.join(other)
    assert refused.value.code == 503 and refused.value.retry_after == 5
    first.leave()
    first.leave()  # idempotent
    assert viewers.count() == 2
    second.leave()
    third.leave()
    assert viewers.count() == 0
    assert viewers.join(session).feed is not first.feed  # the last viewer's leaving ended the feed


class FakeHub:
    def __init__(self, session: FakeSession):
        self.session = session

    def find(self, session_id: str):
        return self.session if session_id == self.session.id else None


def test_whose_session_and_what_it_can_show():
    acme, other = Tenant("acme", 5), Tenant("other", 5)
    hub = FakeHub(FakeSession())
    assert live.owned(hub, acme, SID) is hub.session
    with pytest.raises(Forbidden):
        live.owned(hub, other, SID)
    with pytest.raises(NotFound):
        live.owned(hub, acme, SID.replace("1", "3"))
    with pytest.raises(NotFound):
        live.owned(hub, acme, "../" + SID)
    hub.session.done.set()
    with pytest.raises(NotFound):
        live.owned(hub, acme, SID)
    standard = FakeHub(FakeSession(kind="standard"))
    with pytest.raises(Forbidden):  # whose it is, before what it is
        live.owned(standard, other, SID)
    with pytest.raises(NotSupported):
        live.owned(standard, acme, SID)


def test_a_place_a_closed_viewer_still_holds_is_waited_for(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(live, "LEAVE_WAIT", 0.5)
    viewers = live.Viewers(fps=4, per_session=1, per_worker=4, retry_after=5)
    session = FakeSession()
    old = viewers.join(session)
    old.connected = lambda: False  # its page was reloaded; its thread has not noticed yet
    started = time.monotonic()
    with pytest.raises(TooManyRequests):  # it never leaves: refused after the wait
        viewers.join(session)
    assert 0.4 < time.monotonic() - started < 2
    timer = threading.Timer(0.1, old.leave)
    timer.start()
    new = viewers.join(session)  # it leaves meanwhile: the place is the new viewer's
    timer.join(5)
    assert viewers.count() == 1 and new is not old
