"""What a session record carries of its open frame (``service.handover.open_spelling``): the
adopting instance parses it back with the protocol's own validation, to the same open frame."""

from __future__ import annotations

import json

import pytest

from service import handover, protocol
from service.model import Cookie

PROTOCOL = protocol.Protocol(default_timeout=30, max_timeout=300)


@pytest.mark.parametrize("frame", [
    {},
    {"client": "standard", "timeout": "1.5s", "max_redirects": 0, "max_retries": 10},
    {"client": {"kind": "chrome", "viewport": {"width": 800, "height": 600}}, "timeout": "5m"},
    {"middleware": [{"type": "headers", "headers": [["X-A", "1"]]}], "max_redirects": 50},
])
def test_an_open_frame_spelled_for_a_record_parses_back_to_itself(frame):
    opened = PROTOCOL.parse_open(json.dumps(frame))
    again = PROTOCOL.parse_open(json.dumps(handover.open_spelling(opened)))
    assert again == opened


def test_the_jar_travels_as_the_open_frames_storage_state():
    jar = [Cookie(name="a", value="1", domain="127.0.0.1", path="/", http_only=True, secure=False),
           Cookie(name="b", value="2", domain=".example.com", path="/x", expires="2030-01-01T00:00:00Z", same_site="Lax")]
    spelled = handover.open_spelling(PROTOCOL.parse_open("{}"))
    spelled["storage_state"] = {"cookies": [handover._cookie(c) for c in jar], "origins": []}
    again = PROTOCOL.parse_open(json.dumps(spelled))
    assert again.storage_state is not None and list(again.storage_state.cookies) == jar


def test_no_key_and_a_key_hash_apart():
    assert handover.key_hash("") == "" and len(handover.key_hash("k")) == 64 and handover.key_hash("k") != handover.key_hash("K")
