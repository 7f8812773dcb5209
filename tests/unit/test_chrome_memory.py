"""ChromeMemory: Chrome's mapper tab reached once, collections by the bytes that came through."""

from __future__ import annotations

import json

from service.clients.bidi import BidiClosed, BidiError
from service.clients.chrome_memory import COLLECT, GARBAGE_BYTES, MAPPER_TITLE, SEND, SILENCE, ChromeMemory

MAPPER = {"targetId": "M1", "title": MAPPER_TITLE, "type": "other", "url": "about:blank"}


class FakeBidi:
    """What ChromeMemory uses of Bidi: command, post, received, unresponsive_for."""

    def __init__(self, targets=(MAPPER,), fail_on: str | None = None):
        self.targets = list(targets)
        self.received = 0
        self.silent = 0.0
        self.fail_on = fail_on
        self.commands: list[tuple[str, dict]] = []
        self.posts: list[tuple[str, dict]] = []

    def unresponsive_for(self) -> float:
        return self.silent

    def command(self, method: str, params: dict, timeout) -> dict:
        self.commands.append((method, params))
        inner = params.get("method")
        if self.fail_on is not None and self.fail_on in (method, inner):
            raise BidiError("unknown command", "no")
        if method == "goog:cdp.getSession":
            return {"session": f"S-{params['context']}"}
        if inner == "Target.getTargets":
            return {"result": {"targetInfos": self.targets}}
        if inner == "Target.attachToTarget":
            return {"result": {"sessionId": "MS"}}
        return {"result": {}}

    def post(self, method: str, params: dict) -> None:
        if self.fail_on == "post":
            raise BidiClosed("gone")
        self.posts.append((method, params))


def mapper_messages(bidi: FakeBidi) -> list[dict]:
    sent = [p for m, p in bidi.commands + bidi.posts if m == SEND and p["method"] == "Target.sendMessageToTarget"]
    return [json.loads(p["params"]["message"]) for p in sent]


def test_attach_stops_the_mappers_log_through_a_session_on_its_tab():
    bidi = FakeBidi(targets=[{"targetId": "P", "title": "a page", "type": "page"}, MAPPER])
    memory = ChromeMemory.attach(bidi)
    assert memory is not None and memory.mapper_session == "MS"
    attach = next(p for m, p in bidi.commands if p.get("method") == "Target.attachToTarget")
    assert attach["params"] == {"targetId": "M1", "flatten": False}  # a flattened one is dropped by the mapper
    assert [m["params"]["expression"] for m in mapper_messages(bidi)] == [SILENCE]
    assert "getElementById(\"logs\")" in SILENCE


def test_no_mapper_tab_or_a_refusal_is_no_memory_and_no_error():
    assert ChromeMemory.attach(FakeBidi(targets=[{"targetId": "P", "title": MAPPER_TITLE, "type": "page"}])) is None
    assert ChromeMemory.attach(FakeBidi(fail_on="Target.attachToTarget")) is None
    assert ChromeMemory.attach(FakeBidi(fail_on=SEND)) is None


def test_collections_come_once_enough_bytes_came_through_for_the_mapper_and_the_page():
    bidi = FakeBidi()
    memory = ChromeMemory.attach(bidi)
    assert memory is not None
    bidi.received += GARBAGE_BYTES - 1
    memory.tidy("C1")
    assert memory.collections == 0 and not bidi.posts
    bidi.received += 1
    memory.tidy("C1")
    assert memory.collections == 1
    assert [m["method"] for m in mapper_messages(bidi)] == ["Runtime.evaluate", COLLECT]
    assert (SEND, {"method": COLLECT, "params": {}, "session": "S-C1"}) in bidi.posts
    memory.tidy("C1")  # nothing new came through
    assert memory.collections == 1
    bidi.received += GARBAGE_BYTES
    memory.tidy("C1")
    memory_sessions = [p for m, p in bidi.commands if m == "goog:cdp.getSession"]
    assert len(memory_sessions) == 1  # the page's session is asked once per context
    bidi.received += GARBAGE_BYTES
    memory.tidy("C2")  # a fresh tab
    assert (SEND, {"method": COLLECT, "params": {}, "session": "S-C2"}) in bidi.posts
    assert memory.collections == 3


def test_a_silent_or_gone_browser_is_not_asked_and_raises_nothing():
    bidi = FakeBidi()
    memory = ChromeMemory.attach(bidi)
    assert memory is not None
    bidi.received += 2 * GARBAGE_BYTES
    bidi.silent = 3.0
    memory.tidy("C1")
    assert memory.collections == 0 and not bidi.posts
    bidi.silent = 0.0
    bidi.fail_on = "post"
    memory.tidy("C1")  # the action's own reply says what happened to the browser
    assert memory.collections == 1
    bidi.fail_on = "goog:cdp.getSession"
    bidi.received += GARBAGE_BYTES
    memory.tidy("C3")
    assert memory.collections == 2
