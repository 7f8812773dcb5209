"""service/resume.py: tokens, the replay buffer, and a link parked and resumed (no sockets)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from service import protocol, resume
from service.clients.base import ClientOptions
from service.errors import Forbidden, SessionExpired
from service.session import Session
from tests.unit.test_session_races import FakeClient


class Box:
    """An outbox that takes text frames (or refuses them, as a dropped socket does)."""

    def __init__(self, works: bool = True):
        self.works, self.frames, self.closed, self.failure = works, [], [], None

    def send(self, text):
        if self.works:
            self.frames.append(json.loads(text))
        return self.works

    def close(self, code, reason=""):
        self.closed.append(code)
        return True


def test_tokens_are_256_bits_and_only_their_hash_is_kept():
    credentials, token = resume.Credentials.issue("acme", "")
    assert len(token) == 43 and token != resume.Credentials.issue("acme", "")[1]
    assert token.encode() not in credentials.digest
    assert credentials.matches("acme", "", token)
    assert not credentials.matches("other", "", token) and not credentials.matches("acme", "key", token)
    assert not credentials.matches("acme", "", token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert not resume.check(None, "acme", "", token)


def test_the_buffer_keeps_the_last_64_replies_or_its_bytes():
    buffer = resume.ReplayBuffer(max_count=64, max_bytes=1000)
    for n in range(100):
        buffer.add(n, f"r{n}")
    assert buffer.after_id(97) == ["r98", "r99"]
    assert buffer.after_id(10) == [f"r{n}" for n in range(36, 100)]  # fell out: everything held came after it
    assert buffer.after_id("97") == [f"r{n}" for n in range(36, 100)]  # 97 and "97" are two ids
    assert buffer.since(98) == ["r98", "r99"]
    big = resume.ReplayBuffer(max_count=64, max_bytes=10)
    big.add(1, "x" * 8)
    big.add(2, "y" * 8)
    assert big.after_id(0) == ["y" * 8]  # the newest always stays


def _link(window=60.0):
    credentials, token = resume.Credentials.issue("acme", "")
    first = Box()
    link = resume.Link(first, window, credentials)
    link.send({"session_id": "s", "resume_token": token})
    return link, first, token


def test_a_parked_link_keeps_replies_and_a_resume_replays_them_in_order():
    link, first, token = _link()
    link.send({"action": "goto", "id": 1})
    assert link.detach(first, "reset") and link.parked
    assert link.send({"action": "content", "id": 2})  # produced while parked: kept
    second = Box()
    link.attach(second, ("acme", "", token), "s", None, False)
    resumed, *replayed = second.frames
    assert resumed["resumed"] is True and resumed["resume_token"] != token and replayed == [{"action": "content", "id": 2}]
    third = Box()
    link.attach(third, ("acme", "", resumed["resume_token"]), "s", 1, True)  # a takeover, from after id 1
    assert second.closed == [1008] and third.frames[1:] == [{"action": "content", "id": 2}]
    with pytest.raises(Forbidden):
        link.attach(Box(), ("acme", "", token), "s", None, False)  # the old token is spent


def test_a_failed_write_parks_and_that_reply_is_owed():
    link, first, token = _link()
    first.works = False
    assert link.send({"action": "goto", "id": "g"}) and link.parked
    second = Box()
    link.attach(second, ("acme", "", token), "s", None, False)
    assert second.frames[1:] == [{"action": "goto", "id": "g"}]


def test_refusals_are_403_then_410():
    link, first, token = _link()
    with pytest.raises(Forbidden, match=resume.REFUSED):
        link.attach(Box(), ("other", "", token), "s", None, False)
    link.end()
    with pytest.raises(Forbidden):
        link.attach(Box(), ("acme", "", "x" * 43), "s", None, False)
    with pytest.raises(SessionExpired):
        link.attach(Box(), ("acme", "", token), "s", None, False)


def test_no_park_before_the_open_reply_or_with_resuming_off():
    box = Box()
    link = resume.Link(box, 60.0, None)
    assert not link.detach(box, "reset")
    link, first, _ = _link(window=0)
    assert not link.detach(first, "reset") and not link.parked


def test_wait_attached_wakes_on_a_resume():
    link, first, token = _link()
    link.detach(first, "reset")
    stop = threading.Event()
    threading.Timer(0.1, lambda: link.attach(Box(), ("acme", "", token), "s", None, False)).start()
    started = time.monotonic()
    assert link.wait_attached(time.monotonic() + 5, stop) and time.monotonic() - started < 2


def test_the_replaced_token_works_until_a_frame_arrives_on_the_resumed_socket():
    link, first, token = _link()
    link.detach(first, "reset")
    lost = Box()
    link.attach(lost, ("acme", "", token), "s", None, False)  # its reply is lost with the socket
    link.detach(lost, "reset")
    again = Box()
    link.attach(again, ("acme", "", token), "s", None, False)  # the token the client still holds
    link.received(1)  # the client speaks on the resumed socket: it has the new token
    link.detach(again, "reset")
    with pytest.raises(Forbidden):
        link.attach(Box(), ("acme", "", token), "s", None, False)
    link.attach(Box(), ("acme", "", again.frames[0]["resume_token"]), "s", None, False)


# ---------------------------------------------------------------------------------- a whole session


def _parkable(window: float):
    credentials, token = resume.Credentials.issue("acme", "")
    client, outbox, ended = FakeClient(), Box(), threading.Event()
    session = Session("s-park", "acme", protocol.OpenFrame(), ClientOptions(), lambda: client, outbox,
                      on_end=ended.set, resume_window=window, credentials=credentials, resume_token=token)
    session.thread.start()
    deadline = time.monotonic() + 5
    while not outbox.frames and time.monotonic() < deadline:
        time.sleep(0.01)
    assert outbox.frames == [{"session_id": "s-park", "resume_token": token}]
    return session, client, outbox, ended, token


def test_a_parked_session_holds_its_client_until_the_window_ends():
    session, client, outbox, ended, _ = _parkable(window=0.3)
    started = time.monotonic()
    session.connection_lost(outbox, "reset")
    assert ended.wait(5) and client.closed.is_set()
    assert time.monotonic() - started >= 0.3 and "not resumed within" in session.end_reason


def test_a_resumed_session_runs_the_frames_that_waited_while_it_was_parked():
    session, client, outbox, ended, token = _parkable(window=5)
    session.connection_lost(outbox, "reset")
    session.submit(protocol.Action("content", id=1))  # read before the drop: it waits
    time.sleep(0.1)
    assert not ended.is_set() and not client.closed.is_set()
    again = Box()
    session.resume(again, ("acme", "", token), protocol.ResumeFrame("s-park", token))
    deadline = time.monotonic() + 5
    while len(again.frames) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert again.frames[0]["resumed"] is True and again.frames[1] == {"action": "content", "content": "", "id": 1}
    session.fail(SessionExpired("done"))
    assert ended.wait(5)
