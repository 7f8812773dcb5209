"""Property-based: whatever a client sends, ``protocol.receive`` returns an action or raises
one of our errors, and the reply built from either can be sent and validates against our
schemas. Frames come from our own schemas (hypothesis-jsonschema), mutated (tests/support/fuzz.py)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings

from service import protocol, replies
from service.clients.base import GotoResult
from service.errors import ServiceError
from tests.support.fuzz import BAD_HOST_URLS, Frame, frames

PROTOCOL = protocol.Protocol()
LIMIT = 65536


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(frames("http://127.0.0.1:1/", LIMIT))
def test_receive_answers_every_frame_with_an_action_or_our_error(frame: Frame):
    try:
        action = PROTOCOL.receive(frame.data, LIMIT)
    except ServiceError as error:
        assert error.code in (400, 413), error.message
        reply = replies.error_frame(error)
    else:
        reply = replies.reply(action, RESULTS.get(action.name, _result)())
    wire = replies.encode(reply).encode("utf-8")  # never a lone surrogate on the way out
    PROTOCOL.validate_outgoing(json.loads(wire))
    if "id" in reply:
        assert isinstance(frame.data, str) and json.loads(frame.data)["id"] == reply["id"]


def _result() -> GotoResult | None:
    return None


# what a client returns for each action whose reply carries fields (None for the others)
RESULTS = {
    "goto": lambda: GotoResult(url="http://127.0.0.1:1/", status_code=200),
    "wait_for": lambda: {"elapsed_ms": 0},
    "scroll": lambda: {"x": 0, "y": 12.5},
    "cookies": lambda: {"cookies": [{"name": "a", "value": "b", "domain": "127.0.0.1"}]},
    "storage_state": lambda: {"state": {"cookies": [], "origins": [{"origin": "http://a.test", "local_storage": [["k", "v"]]}]}},
}


@settings(max_examples=500, deadline=None, database=None)
@given(BAD_HOST_URLS)
def test_every_bad_host_url_the_fuzzer_makes_is_refused_at_url(url: str):
    """The e2e fuzzer expects a 400 at ``$.url`` for each of these: each must be bad indeed (a
    label of 40 "é" is a 46-byte A-label, a good one)."""
    try:
        PROTOCOL.receive(json.dumps({"action": "goto", "url": url}), LIMIT)
    except ServiceError as error:
        assert error.code == 400 and "$.url" in error.message, error.message
    else:
        raise AssertionError(f"{url!r} was accepted")
