"""The protocol, sans I/O: frames as plain strings, checked against the schemas."""

import json
from pathlib import Path

import pytest

from service import protocol, replies
from service.clients.base import Cookie, GotoResult, Redirect
from service.errors import BadRequest, NotFound, TooLarge, Unavailable

FRAMES = Path(__file__).parent / "frames"
PROTOCOL = protocol.Protocol(default_timeout=30, max_timeout=300)


def _cases(kind):
    return sorted(FRAMES.joinpath(kind).glob("*.json"), key=lambda p: p.name)


def _parse(case):
    if case["kind"] == "open":
        return PROTOCOL.parse_open(json.dumps(case["frame"]), 1 << 20)
    return PROTOCOL.receive(json.dumps(case["frame"]), 1 << 20)


@pytest.mark.parametrize("path", _cases("valid"), ids=lambda p: p.stem)
def test_valid_frames_parse(path):
    _parse(json.loads(path.read_text()))


@pytest.mark.parametrize("path", _cases("invalid"), ids=lambda p: p.stem)
def test_invalid_frames_name_the_offending_field(path):
    case = json.loads(path.read_text())
    with pytest.raises(BadRequest) as caught:
        _parse(case)
    assert case["error"] in caught.value.message
    assert caught.value.code == 400


def test_open_defaults():
    frame = PROTOCOL.parse_open("{}")
    assert (frame.client, frame.timeout, frame.max_redirects, frame.max_retries) == ("standard", 30, 10, 3)
    assert frame.middleware == () and frame.proxies == () and frame.viewport is None


def test_open_durations_and_viewport():
    frame = PROTOCOL.parse_open('{"client": {"kind": "chrome", "viewport": {"width": 800, "height": 600}}, "timeout": "1m30s"}')
    assert frame.client == "chrome" and frame.timeout == 90 and (frame.viewport.width, frame.viewport.height) == (800, 600)
    assert PROTOCOL.parse_open('{"timeout": "500ms"}').timeout == 0.5
    assert PROTOCOL.parse_open('{"timeout": "5m"}').timeout == 300


def test_goto_defaults_and_body_decoding():
    action = PROTOCOL.parse_action({"action": "goto", "url": "https://example.com", "body": "aGk=", "id": 3})
    assert action.id == 3 and action.reply_action == "goto"
    assert action.args["body"] == b"hi" and action.args["method"] == "GET" and action.args["user_agent"] == "inndx"
    assert action.args["headers"] == () and action.args["cookies"] == ()


def test_binary_and_non_json_frames():
    with pytest.raises(BadRequest, match="binary"):
        PROTOCOL.decode_json(b"{}")
    with pytest.raises(BadRequest, match="not valid JSON"):
        PROTOCOL.decode_json("{nope")


@pytest.mark.parametrize("frame, expected", [({"id": "a"}, "a"), ({"id": 5}, 5), ({"id": True}, None),
                                            ({"id": "x" * 129}, None), ([1], None), ({"id": 1.5}, None)])
def test_peek_id(frame, expected):
    assert PROTOCOL.peek_id(frame) == expected


def test_replies_validate_against_their_schemas():
    result = GotoResult(
        url="https://example.com/", status_code=200, headers=[("Content-Type", "text/html")],
        cookies=[Cookie(name="a", value="1", domain="example.com", path="/", http_only=True, secure=False)],
        body=b"<p>", redirects=[Redirect("https://e.com", "https://example.com/", "server", "permanent")],
        content_type="text/html",
    )
    frames = [
        replies.goto_reply(result, "g1"),
        replies.goto_reply(GotoResult(url="https://e.com/", status_code=204), None),
        replies.reply(protocol.Action("content", 1), b"<html>"),
        replies.reply(protocol.Action("evaluate"), {"a": [1, None]}),
        replies.reply(protocol.Action("screenshot"), None),
        replies.reply(protocol.Action("click")),
        replies.reply(protocol.Action("fill")),
        replies.reply(protocol.Action("close")),
        replies.session_opened("5b6c0a3e-3c0f-4a43-9a43-6b1f7e4a2c11", "A" * 43),
        replies.session_resumed("5b6c0a3e-3c0f-4a43-9a43-6b1f7e4a2c11", "b-" * 22, 7),
        replies.error_frame(NotFound("no element"), "x"),
        replies.error_frame(Unavailable("gone")),
    ]
    for frame in frames:
        PROTOCOL.validate_outgoing(frame)
    assert frames[1]["body"] is None and frames[1]["content_type"] is None
    assert frames[2] == {"action": "content", "content": "PGh0bWw+", "id": 1}
    assert frames[10] == {"type": "error", "message": "no element", "code": 404, "id": "x"}
    assert frames[11]["type"] == "fatal" and "id" not in frames[11]


def test_frame_size_limit():
    protocol.check_size("x" * 10, 10)
    with pytest.raises(Exception) as caught:
        protocol.check_size("é" * 6, 10)
    assert caught.value.code == 413


# ------------------------------------------------------------------- receive: one place for all


def test_receive_error_carries_the_frame_id():
    with pytest.raises(BadRequest) as caught:
        PROTOCOL.receive('{"action": "click", "selector": 5, "id": "c1"}', 1024)
    assert caught.value.action_id == "c1"
    assert replies.error_frame(caught.value)["id"] == "c1"


def test_receive_an_unreadable_id_is_not_echoed():
    with pytest.raises(BadRequest) as caught:
        PROTOCOL.receive('{"action": "content", "id": "\\ud800"}', 1024)
    assert caught.value.action_id is None and "lone surrogate" in caught.value.message
    frame = replies.error_frame(caught.value)
    assert "id" not in frame
    replies.encode(frame).encode("utf-8")  # the reply itself can be sent


def test_receive_measures_bytes_not_characters():
    frame = json.dumps({"action": "content", "id": "é" * 40}, ensure_ascii=False)
    assert len(frame) < 100 < len(frame.encode("utf-8"))
    with pytest.raises(TooLarge):
        PROTOCOL.receive(frame, 100)
    with pytest.raises(TooLarge) as caught:
        PROTOCOL.receive(protocol.OversizedFrame(10_000_000), 100)
    assert "10000000 bytes" in caught.value.message and caught.value.code == 413


@pytest.mark.parametrize("text", ['{"action": "content", "id": NaN}', '{"action": "content", "id": Infinity}',
                                  '{"action": "content", "id": -Infinity}', '{"action": "content", "id": 1e400}',
                                  '{"action": "content", "id": ' + "9" * 5000 + "}"])
def test_receive_refuses_what_json_does_not_have(text):
    with pytest.raises(BadRequest):
        PROTOCOL.receive(text, 1 << 20)


def test_receive_deep_nesting_is_400_not_a_crash():
    with pytest.raises(BadRequest):
        PROTOCOL.receive('{"action": "content", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", 1 << 20)


def test_open_timeout_overflow_is_400_not_an_exception():
    with pytest.raises(BadRequest) as caught:
        PROTOCOL.parse_open('{"timeout": "99999999999h"}', 1024)
    assert "$.timeout" in caught.value.message


def test_header_counts_are_bounded():
    headers = [["X-A", "b"]] * 257
    with pytest.raises(BadRequest) as caught:
        PROTOCOL.receive(json.dumps({"action": "goto", "url": "http://a/", "headers": headers}), 1 << 20)
    assert "$.headers" in caught.value.message


def test_a_frame_of_a_million_values_is_refused_before_the_schema_sees_it():
    frame = json.dumps({"action": "goto", "url": "http://a/", "headers": [["a", "b"]] * 1_000_000})
    with pytest.raises(BadRequest) as caught:
        PROTOCOL.receive(frame, 1 << 25)
    assert "at most 20000 JSON values" in caught.value.message


def test_error_messages_quote_the_offending_value_briefly():
    with pytest.raises(BadRequest) as caught:
        PROTOCOL.receive(json.dumps({"action": "goto", "url": "http://a/" + "x" * 100_000}), 1 << 20)
    assert "$.url" in caught.value.message and len(caught.value.message) < 400
    with pytest.raises(BadRequest) as caught:
        PROTOCOL.receive(json.dumps({"action": "goto", "url": "http://a/", "headers": [["a", "b"]] * 4000}), 1 << 20)
    assert "at most 256" in caught.value.message and len(caught.value.message) < 400


def test_an_actions_own_timeout_and_wait_for_durations_in_seconds():
    action = PROTOCOL.parse_action({"action": "wait_for", "network_idle": "500ms", "timeout": "1m30s"})
    assert action.args == {"network_idle": 0.5, "timeout": 90, "kind": "network_idle"}
    action = PROTOCOL.parse_action({"action": "wait_for", "selector": "#a"})
    assert action.args == {"selector": "#a", "state": "visible", "kind": "selector"}
    assert PROTOCOL.parse_action({"action": "goto", "url": "http://a.test/", "timeout": "2s"}).args["timeout"] == 2
    assert "timeout" not in PROTOCOL.parse_action({"action": "content"}).args
    reply = replies.reply(PROTOCOL.parse_action({"action": "wait_for", "text": "x", "id": 4}), {"elapsed_ms": 12})
    assert reply == {"action": "waited", "elapsed_ms": 12, "id": 4}
    PROTOCOL.validate_outgoing(reply)


def test_press_keys_become_webdriver_key_values():
    assert PROTOCOL.parse_action({"action": "press", "keys": "Control+A"}).args["key_values"] == ["\ue009", "a"]
    assert PROTOCOL.parse_action({"action": "press", "keys": "shift+a"}).args["key_values"] == ["\ue008", "A"]
    assert PROTOCOL.parse_action({"action": "press", "keys": "Control++"}).args["key_values"] == ["\ue009", "+"]
    assert PROTOCOL.parse_action({"action": "press", "keys": "+"}).args["key_values"] == ["+"]
    assert PROTOCOL.parse_action({"action": "press", "keys": "F12"}).args["key_values"] == ["\ue03c"]
    assert PROTOCOL.parse_action({"action": "press", "keys": "é"}).args["key_values"] == ["é"]
