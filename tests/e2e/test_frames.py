"""Action frames on the wire: validation (with JSON paths), correlation ids, ordering and
pipelining, the pending-queue bound, the frame size limit, and close."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ports import wait_for
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import Session, connect

pytestmark = pytest.mark.clientless

SCREENSHOT = {"action": "screenshot", "screenshot": None}


@pytest.fixture(scope="module")
def limited(logs: Path) -> Iterator[Service]:
    """A service with a pending queue of 2 holding at most 1500 bytes, frames of at most 1024 bytes."""
    env = {"INNDX_MAX_PENDING": "2", "INNDX_MAX_PENDING_BYTES": "1500", "INNDX_MAX_FRAME_BYTES": "1024",
           "INNDX_IDLE_TIMEOUT": "10m"}
    with Service(env=env, log_dir=logs) as running:
        yield running


@pytest.fixture()
def session(open_session) -> Session:
    return open_session("standard", timeout="10s", max_retries=0)


def expect_error(frame: dict, code: int, *, where: str | None = None, id_: object = None) -> None:
    assert frame.get("type") == "error", frame
    assert frame["code"] == code, frame
    if where is not None:
        assert where in frame["message"], frame
    if id_ is None:
        assert "id" not in frame, frame
    else:
        assert frame["id"] == id_ and type(frame["id"]) is type(id_), frame


def still_usable(session: Session) -> None:
    assert session.request({"action": "screenshot", "id": "probe"}, timeout=10) == {**SCREENSHOT, "id": "probe"}


# ------------------------------------------------------------------------- bad frames


def test_binary_frame_is_error_400_and_the_session_goes_on(session):
    expect_error(session.request(b'{"action": "screenshot"}', timeout=10), 400)
    still_usable(session)


@pytest.mark.parametrize("text", ["not json", "{", "{'action': 'close'}", "", '{"action": "screenshot"'])
def test_non_json_text_is_error_400(session, text):
    expect_error(session.request(text, timeout=10), 400)
    still_usable(session)


@pytest.mark.parametrize("frame", [[], "a string", 1, None, [{"action": "screenshot"}]])
def test_json_that_is_not_an_object_is_error_400(session, frame):
    expect_error(session.request(json.dumps(frame), timeout=10), 400, where="$")
    still_usable(session)


@pytest.mark.parametrize("action", ["dance", "Goto", "open", "closed", "", 3])
def test_unknown_action_is_400_naming_action(session, action):
    expect_error(session.request({"action": action}, timeout=10), 400, where="$.action")
    still_usable(session)


def test_missing_action_is_400_naming_action(session):
    expect_error(session.request({"url": "http://127.0.0.1/"}, timeout=10), 400, where="$.action")


@pytest.mark.parametrize(
    "frame, where",
    [
        ({"action": "click", "selector": 5}, "$.selector"),
        ({"action": "click", "selector": ""}, "$.selector"),
        ({"action": "fill", "selector": "#a", "value": 1}, "$.value"),
        ({"action": "evaluate", "script": ["return 1"]}, "$.script"),
        ({"action": "goto", "url": "ftp://127.0.0.1/"}, "$.url"),
        ({"action": "goto", "url": "/relative"}, "$.url"),
        ({"action": "goto", "url": 42}, "$.url"),
        ({"action": "goto", "url": "http://a/", "method": "FETCH"}, "$.method"),
        ({"action": "goto", "url": "http://a/", "headers": [["X-A", 1]]}, "$.headers[0][1]"),
        ({"action": "goto", "url": "http://a/", "headers": [["X-A", "1"], ["Bad Name", "v"]]}, "$.headers[1][0]"),
        ({"action": "goto", "url": "http://a/", "headers": [["X-A", "a\r\nInjected: 1"]]}, "$.headers[0][1]"),
        ({"action": "goto", "url": "http://a/", "headers": [["X-A"]]}, "$.headers[0]"),
        ({"action": "goto", "url": "http://a/", "cookies": [{"name": "n"}]}, "$.cookies[0]"),
        ({"action": "goto", "url": "http://a/", "cookies": [{"name": "n", "value": "v", "same_site": "lax"}]},
         "$.cookies[0].same_site"),
        ({"action": "goto", "url": "http://a/", "body": "!!not base64!!"}, "$.body"),
        ({"action": "goto", "url": "http://a/", "user_agent": "a\nb"}, "$.user_agent"),
        ({"action": "goto", "url": "http://a/", "referrer": 1}, "$.referrer"),
        ({"action": "screenshot", "id": 1.5}, "$.id"),
        ({"action": "screenshot", "id": "x" * 129}, "$.id"),
    ],
)
def test_schema_violations_name_the_json_path(session, frame, where):
    expect_error(session.request(frame, timeout=10), 400, where=where)


def test_missing_required_field_is_named(session):
    reply = session.request({"action": "click"}, timeout=10)
    expect_error(reply, 400, where="selector")
    reply = session.request({"action": "goto"}, timeout=10)
    expect_error(reply, 400, where="url")


@pytest.mark.parametrize(
    "frame, field",
    [
        ({"action": "content", "extra": 1}, "extra"),
        ({"action": "goto", "url": "http://a/", "header": [["A", "b"]]}, "header"),
        ({"action": "close", "force": True}, "force"),
        ({"action": "screenshot", "fullPage": True}, "fullPage"),  # full_page is a field; its camel case is not
    ],
)
def test_unknown_fields_are_rejected(session, frame, field):
    expect_error(session.request(frame, timeout=10), 400, where=field)
    still_usable(session)


# ------------------------------------------------------------------------- correlation ids


@pytest.mark.parametrize("id_", ["req-1", "", "x" * 128, 0, 7, -3, 2**53])
def test_id_is_echoed_on_responses(session, id_):
    assert session.request({"action": "screenshot", "id": id_}, timeout=10) == {**SCREENSHOT, "id": id_}


@pytest.mark.parametrize("id_", ["req-err", 41])
def test_id_is_echoed_on_errors(session, id_):
    expect_error(session.request({"action": "content", "id": id_}, timeout=10), 409, id_=id_)
    expect_error(session.request({"action": "evaluate", "script": "return 1", "id": id_}, timeout=10), 501, id_=id_)
    # an invalid frame still echoes its (valid) id
    expect_error(session.request({"action": "click", "selector": 5, "id": id_}, timeout=10), 400, id_=id_)
    expect_error(session.request({"action": "dance", "id": id_}, timeout=10), 400, id_=id_)


def test_id_echoed_on_goto_and_close(open_session, site: Site):
    session = open_session("standard")
    reply = session.request({"action": "goto", "url": site.url("/html"), "id": "g"}, timeout=15)
    assert reply["action"] == "goto" and reply["id"] == "g" and reply["status_code"] == 200
    assert session.request({"action": "close", "id": 99}, timeout=10) == {"action": "closed", "id": 99}
    assert session.expect_close(timeout=10)[0] == 1000


def test_id_is_absent_when_not_sent(session, site: Site):
    assert session.request({"action": "screenshot"}, timeout=10) == SCREENSHOT
    expect_error(session.request({"action": "content"}, timeout=10), 409)
    expect_error(session.request({"action": "click", "selector": 5}, timeout=10), 400)
    reply = session.request({"action": "goto", "url": site.url("/html")}, timeout=15)
    assert "id" not in reply


def test_invalid_id_is_not_echoed(session):
    expect_error(session.request({"action": "screenshot", "id": True}, timeout=10), 400, where="$.id")
    expect_error(session.request({"action": "screenshot", "id": {"a": 1}}, timeout=10), 400, where="$.id")


# ------------------------------------------------------------------------- ordering


def test_pipelined_actions_are_answered_in_order(session, site: Site):
    frames = [
        {"action": "goto", "url": site.url("/slow?seconds=0.3"), "id": 1},
        {"action": "screenshot", "id": 2},
        {"action": "goto", "url": site.url("/json"), "id": 3},
        {"action": "content", "id": 4},
        {"action": "goto", "url": site.url("/html?title=Third"), "id": 5},
        {"action": "screenshot", "id": 6},
    ]
    for frame in frames:
        session.send(frame)
    replies = [session.recv(timeout=15) for _ in frames]
    assert [reply["id"] for reply in replies] == [1, 2, 3, 4, 5, 6]
    assert [reply["action"] for reply in replies] == ["goto", "screenshot", "goto", "content", "goto", "screenshot"]
    assert replies[0]["url"].endswith("/slow?seconds=0.3")
    assert replies[2]["content_type"] == "application/json"
    assert replies[3]["content"] == replies[2]["body"]  # content ran after the /json goto, not after /html


def test_errors_for_invalid_frames_keep_their_place(session, site: Site):
    session.send({"action": "goto", "url": site.url("/slow?seconds=0.5"), "id": "slow"})
    session.send("not json at all")
    session.send({"action": "click", "selector": 5, "id": "bad"})
    session.send(b"binary")
    session.send({"action": "screenshot", "id": "after"})
    replies = [session.recv(timeout=15) for _ in range(5)]
    assert replies[0]["action"] == "goto" and replies[0]["id"] == "slow"
    expect_error(replies[1], 400)
    expect_error(replies[2], 400, where="$.selector", id_="bad")
    expect_error(replies[3], 400)
    assert replies[4] == {**SCREENSHOT, "id": "after"}


def test_every_action_gets_exactly_one_reply(session, site: Site):
    ids = list(range(10))
    for i in ids:
        session.send({"action": "screenshot" if i % 2 else "content", "id": i})
    replies = [session.recv(timeout=10) for _ in ids]
    assert [reply["id"] for reply in replies] == ids
    with pytest.raises(TimeoutError):
        session.recv(timeout=0.3)


# ------------------------------------------------------------------------- limits


def test_pending_queue_bound_gives_429_with_the_id(limited: Service, site: Site):
    site.clear()
    with connect(limited.ws_url) as session:
        session.open(timeout="10s", max_retries=0)
        session.send({"action": "goto", "url": site.url("/slow?seconds=2"), "id": "inflight"})
        # the goto has left the queue once the site sees it: the queue is empty again
        wait_for(lambda: site.requests_to("/slow"), 5, what="the slow goto to reach the site")
        for id_ in ("q1", "q2", "over1", 4):
            session.send({"action": "screenshot", "id": id_})
        replies = [session.recv(timeout=15) for _ in range(5)]
        # strictly in order: each 429 comes in its frame's turn, after the replies before it
        assert [reply["id"] for reply in replies] == ["inflight", "q1", "q2", "over1", 4]
        assert replies[0]["action"] == "goto" and replies[0]["status_code"] == 200
        assert replies[1] == {**SCREENSHOT, "id": "q1"}
        assert replies[2] == {**SCREENSHOT, "id": "q2"}
        expect_error(replies[3], 429, id_="over1")
        expect_error(replies[4], 429, id_=4)
        # once drained, the queue accepts again
        assert session.request({"action": "screenshot", "id": "later"}, timeout=10) == {**SCREENSHOT, "id": "later"}


def test_pending_bytes_bound_gives_429_in_turn(limited: Service, site: Site):
    """Frames wait as their bytes: two frames under the size limit may still be too many bytes."""
    site.clear()
    with connect(limited.ws_url) as session:
        session.open(timeout="10s", max_retries=0)
        session.send({"action": "goto", "url": site.url("/slow?seconds=2"), "id": "inflight"})
        wait_for(lambda: site.requests_to("/slow"), 5, what="the slow goto to reach the site")
        padded = {"action": "goto", "url": site.url("/html"), "headers": [["X-Pad", "p" * 800]]}
        for frame in ({**padded, "id": "p1"}, {**padded, "id": "p2"}, {"action": "screenshot", "id": "p3"}):
            assert 700 < len(json.dumps(frame)) < 1024 or frame["id"] == "p3"
            session.send(frame)
        replies = [session.recv(timeout=15) for _ in range(4)]
        assert [reply["id"] for reply in replies] == ["inflight", "p1", "p2", "p3"]
        assert replies[1]["status_code"] == 200
        expect_error(replies[2], 429, id_="p2")
        assert "pending bytes" in replies[2]["message"]
        assert replies[3] == {**SCREENSHOT, "id": "p3"}


def test_frame_over_the_size_limit_is_413_and_the_session_goes_on(limited: Service):
    with connect(limited.ws_url) as session:
        session.open()
        big = {"action": "goto", "url": "http://127.0.0.1/", "headers": [["X-Pad", "p" * 1100]], "id": "big"}
        reply = session.request(big, timeout=10)
        assert reply["type"] == "error" and reply["code"] == 413, reply
        just_under = {"action": "screenshot", "id": "s" * 128}
        assert len(json.dumps(just_under)) < 1024
        assert session.request(just_under, timeout=10) == {**SCREENSHOT, "id": "s" * 128}
        assert session.request(b"\x00" * 2000, timeout=10)["code"] in (400, 413)
        still_usable(session)


def test_open_frame_over_the_size_limit_is_fatal_413(limited: Service):
    with connect(limited.ws_url) as session:
        session.send({"middleware": [{"type": "headers", "headers": [["X-Pad", "p" * 1100]]}]})
        frame = session.recv(timeout=10)
        assert frame["type"] == "fatal" and frame["code"] == 413, frame
        assert session.expect_close(timeout=10)[0] != 1000


# ------------------------------------------------------------------------- close


def test_close_answers_closed_then_closes_with_1000(open_session):
    session = open_session("standard")
    assert session.request({"action": "close"}, timeout=10) == {"action": "closed"}
    assert session.expect_close(timeout=10)[0] == 1000


def test_frames_after_close_are_not_answered(open_session):
    session = open_session("standard")
    session.send({"action": "close", "id": "bye"})
    session.send({"action": "screenshot", "id": "late-1"})
    session.send("not json")
    assert session.recv(timeout=10) == {"action": "closed", "id": "bye"}
    # expect_close fails on any data frame before the close frame
    assert session.expect_close(timeout=10)[0] == 1000


def test_close_waits_for_the_actions_before_it(open_session, site: Site):
    session = open_session("standard", timeout="10s")
    session.send({"action": "goto", "url": site.url("/slow?seconds=0.5"), "id": 1})
    session.send({"action": "close", "id": 2})
    first = session.recv(timeout=10)
    assert first["action"] == "goto" and first["id"] == 1 and first["status_code"] == 200
    assert session.recv(timeout=10) == {"action": "closed", "id": 2}
    assert session.expect_close(timeout=10)[0] == 1000
