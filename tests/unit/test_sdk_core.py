"""The client's sans-I/O core (``inndx.core``) with plain strings: ids, matching, errors, the end."""

from __future__ import annotations

import json

import inndx
import pytest
from inndx.core import Connection


def sent(connection: Connection, frame: dict) -> int:
    frame_id, text = connection.send(frame)
    assert json.loads(text) == {**frame, "id": frame_id}
    return frame_id


def test_replies_are_matched_by_id_whatever_their_order():
    c = Connection()
    first, second = sent(c, {"action": "content"}), sent(c, {"action": "click", "selector": "#a"})
    assert (first, second) == (1, 2) and not c.answered(first)
    c.receive(json.dumps({"action": "clicked", "id": second}))
    assert c.answered(second) and not c.answered(first)
    assert c.result(second) == {"action": "clicked", "id": 2}
    c.receive(json.dumps({"action": "content", "id": first, "content": None}))
    assert c.result(first)["action"] == "content" and c.waiting == [] and c.closed is None


def test_an_error_without_id_answers_the_oldest_waiting_action():
    c = Connection()
    first, second = sent(c, {"action": "content"}), sent(c, {"action": "content"})
    c.receive(json.dumps({"type": "error", "message": "frame too large", "code": 413}))
    with pytest.raises(inndx.Error) as caught:
        c.result(first)
    assert (caught.value.code, caught.value.fatal, c.waiting) == (413, False, [second])


def test_a_fatal_frame_answers_everything_and_the_session_stays_over():
    c = Connection()
    first, second = sent(c, {"action": "content"}), sent(c, {"action": "content"})
    c.receive(json.dumps({"type": "fatal", "message": "browser lost", "code": 503}))
    for frame_id in (first, second):
        with pytest.raises(inndx.CapacityError) as caught:
            c.result(frame_id)
        assert caught.value.fatal and caught.value.code == 503
    c.receive_close(1011, "")
    with pytest.raises(inndx.CapacityError):
        c.send({"action": "content"})


@pytest.mark.parametrize(
    "data", ["not json", "[1]", json.dumps({"action": "clicked", "id": 99}), json.dumps({"action": "clicked"})],
)
def test_a_frame_the_client_cannot_read_ends_the_session(data):
    c = Connection()
    frame_id = sent(c, {"action": "click", "selector": "#a"})
    c.receive(data)
    assert c.answered(frame_id) and isinstance(c.closed, inndx.Error)
    with pytest.raises(inndx.Error) as caught:
        c.result(frame_id)
    assert caught.value is c.closed


def test_the_closed_reply_ends_the_session_and_a_later_close_keeps_its_reason():
    c = Connection()
    frame_id = sent(c, {"action": "close"})
    c.receive(json.dumps({"action": "closed", "id": frame_id}))
    assert c.result(frame_id) == {"action": "closed", "id": frame_id}
    c.receive_close(1000, "")
    assert isinstance(c.closed, inndx.ConnectionClosed) and c.closed.code == 1000
    assert c.closed.message == "the session was closed"


def test_a_forgotten_action_keeps_its_place_and_its_reply_is_dropped():
    c = Connection()
    late, then = sent(c, {"action": "content"}), sent(c, {"action": "content"})
    c.forget(late)
    assert c.waiting == [then]
    c.receive(json.dumps({"action": "content", "id": late}))
    c.receive(json.dumps({"type": "error", "message": "no id", "code": 400}))  # the oldest still waiting
    with pytest.raises(inndx.Error) as caught:
        c.result(then)
    assert caught.value.code == 400 and c.closed is None and c.waiting == []


def test_the_server_close_and_a_lost_link():
    c = Connection()
    frame_id = sent(c, {"action": "content"})
    c.receive_close(1001, "shutting down")
    with pytest.raises(inndx.ConnectionClosed) as caught:
        c.result(frame_id)
    assert caught.value.code == 1001 and "shutting down" in caught.value.message and caught.value.fatal
    c.lost(inndx.ConnectionClosed("later", 1006))
    assert c.closed is caught.value


# ------------------------------------------------------------------------------- resuming (Rule 5)


def _resumable() -> Connection:
    c = Connection(resumable=True)
    inndx.core.opened(json.dumps({"session_id": "s-1", "resume_token": "t" * 43}), c)
    return c


def test_a_drop_resumes_and_only_the_frames_the_server_did_not_read_go_again():
    c = _resumable()
    ids = [sent(c, {"action": "goto", "url": f"http://x/{n}"}) for n in range(3)]
    c.receive(json.dumps({"action": "content", "id": ids[0], "content": None}))
    assert c.dropped(1006) and c.closed is None
    assert json.loads(c.resume_frame()) == {"resume": "s-1", "resume_token": "t" * 43, "last_id": ids[0]}
    again = c.resumed(json.dumps({"session_id": "s-1", "resumed": True, "resume_token": "u" * 43, "last_received": 2}))
    assert [json.loads(text)["id"] for text in again] == [3] and c.token == "u" * 43
    c.receive(json.dumps({"action": "content", "id": ids[0], "content": None}))  # sent again: already taken, dropped
    c.receive(json.dumps({"action": "content", "id": ids[1], "content": None}))
    assert c.closed is None and c.answered(ids[1]) and not c.answered(ids[2])


def test_what_ends_a_resumable_session_anyway():
    c = _resumable()
    assert c.dropped(1012) and c.dropped(1008, "Ping/Pong timeout")
    assert not c.dropped(1008, "the session was resumed on another connection") and not c.dropped(1000)
    with pytest.raises(inndx.Error) as refused:
        c.resumed(json.dumps({"type": "fatal", "message": "gone", "code": 410}))
    assert refused.value.code == 410 and refused.value.fatal
    assert not Connection().dropped(1006)  # not resumable
    c.receive(json.dumps({"type": "fatal", "message": "x", "code": 503}))
    assert not c.dropped(1006)  # over already


def test_every_download_a_reply_lists_is_kept_in_order():
    c = Connection()
    item = {"id": "d1", "url": "http://s/a", "suggested_filename": "a.zip", "mime_type": "application/zip",
            "size": 3, "sha256": "0" * 64}
    first, second, third = (sent(c, {"action": "click", "selector": "#a"}) for _ in range(3))
    c.receive(json.dumps({"action": "clicked", "id": first, "downloads": [item]}))
    c.receive(json.dumps({"type": "error", "code": 404, "message": "no", "id": second}))
    c.receive(json.dumps({"action": "clicked", "id": third, "downloads": [{**item, "id": "d2"}, "junk"]}))
    assert [d.id for d in c.downloads] == ["d1", "d2"] and c.downloads[0] == inndx.Download(**item)
    assert c.result(first)["downloads"] == [item]


def test_a_restart_that_hands_the_session_over_is_a_drop_not_an_end():
    c = _resumable()
    waiting = sent(c, {"action": "goto", "url": "http://x/"})
    c.receive(json.dumps({"type": "fatal", "message": "restarting", "code": 503, "resumable": True}))
    assert c.closed is None and not c.answered(waiting)  # nothing settled: the call waits for the resume
    assert c.dropped(1012)
    # without resuming, or with "resumable" anything but true, it ends the session as any fatal frame
    for connection, frame in (
        (Connection(), {"type": "fatal", "message": "restarting", "code": 503, "resumable": True}),
        (_resumable(), {"type": "fatal", "message": "restarting", "code": 503, "resumable": "yes"}),
    ):
        connection.receive(json.dumps(frame))
        assert connection.closed is not None and connection.closed.code == 503


def test_a_resumable_open_proposes_a_fresh_session_id_on_its_url():
    from urllib.parse import parse_qs, urlsplit

    plain = inndx.core.open_url("http://h:1", resume=False)
    assert plain == "ws://h:1/v1/sessions/ws"
    ids = {parse_qs(urlsplit(inndx.core.open_url("http://h:1", resume=True)).query)["session"][0] for _ in range(3)}
    assert len(ids) == 3 and all(len(i) == 36 for i in ids)
