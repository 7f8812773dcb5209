"""service/resume.py: tokens, the replay buffer, and a link parked and resumed (no sockets)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from service import resume
from service.errors import Forbidden, SessionExpired


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
