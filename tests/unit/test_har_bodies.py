"""A browser's HAR bodies (``service.clients.browser_har_bodies``, ``HarLog.hold``): every body the
browser holds for the archive is read once or let go of once, never kept; what is read is cut to
the bound; the collector's answers are an outsider's text, parsed without a crash."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from service import har
from service.clients.bidi import BidiError
from service.clients.browser_har import BEFORE, COMPLETED, BrowserHar
from service.clients.browser_har_bodies import CAP_FLOOR, HarBodies, body_of, cap
from service.deadline import Deadline
from service.har import HarLog
from tests.unit.test_har import json_values, valid


class FakeBidi:
    """The commands a HarBodies sends, answered from ``bodies`` (request id -> bytes)."""

    def __init__(self, bodies: dict[str, bytes] | None = None):
        self.bodies = bodies or {}
        self.taps: dict = {}
        self.sent: list[tuple[str, dict]] = []
        self.collectors = 0

    def command(self, method: str, params: dict, timeout) -> dict:
        self.sent.append((method, params))
        self.collectors += 1
        return {"collector": f"c{self.collectors}"}

    def post(self, method: str, params: dict) -> None:
        self.sent.append((method, params))

    def pipeline(self, calls, timeout):
        self.sent.extend(calls)
        out = []
        for _, params in calls:
            body = self.bodies.pop(params["request"], None)  # disown: true
            out.append(BidiError("no such network data", "gone") if body is None
                       else {"bytes": {"type": "base64", "value": base64.b64encode(body).decode()}})
        return out

    def named(self, method: str) -> list[str]:
        return [params["request"] for m, params in self.sent if m == method]


def feed_with(bidi: FakeBidi, body_bytes: int = 8) -> BrowserHar:
    feed = BrowserHar(HarLog(body_bytes), "firefox", 64 * 1024 * 1024)
    feed.install(bidi, "tab", Deadline(1))
    return feed


def exchange(feed: BrowserHar, request: str, status: int = 200, location: str = "", size: int = 10) -> None:
    headers = [{"name": "Location", "value": {"type": "string", "value": location}}] if location else []
    params = {"request": {"request": request, "url": f"http://a.test/{request}"}, "context": "tab"}
    feed.on_event(BEFORE, params)
    feed.on_event(COMPLETED, {**params, "response": {"status": status, "headers": headers, "content": {"size": size}}})


def test_without_a_bound_there_is_no_collector_and_no_command():
    bidi = FakeBidi({"r1": b"hello"})
    feed = BrowserHar(HarLog(0), "chrome", 64 * 1024 * 1024)
    feed.install(bidi, "tab", Deadline(1))
    exchange(feed, "r1")
    (entry,) = valid(feed.take(None, Deadline(5)))
    assert "text" not in entry["response"]["content"] and bidi.sent == []


def test_each_body_is_read_once_cut_to_the_bound_and_the_rest_let_go():
    bidi = FakeBidi({"r1": b"short", "r2": b"0123456789abcdef", "r3": bytes(range(256))})
    feed = feed_with(bidi)
    assert bidi.sent == [("network.addDataCollector",
                          {"dataTypes": ["response"], "maxEncodedDataSize": CAP_FLOOR, "contexts": ["tab"]})]
    exchange(feed, "r1")
    exchange(feed, "r2")
    exchange(feed, "r3")
    exchange(feed, "hop", status=302, location="/r1")  # a redirect hop: its request id is the next hop's
    contents = [e["response"]["content"] for e in valid(feed.take(None, Deadline(5)))]
    texts = [base64.b64decode(c["text"]) if "text" in c else None for c in contents]
    assert texts == [b"short", b"01234567", bytes(range(8)), None]
    assert [c.get("_truncated") for c in contents] == [None, True, True, None]
    assert sorted(bidi.named("network.getData")) == ["r1", "r2", "r3"]
    assert all(params["disown"] and params["collector"] == "c1" for m, params in bidi.sent if m == "network.getData")
    assert bidi.named("network.disownData") == []


def test_a_response_completing_after_its_entry_was_taken_is_let_go():
    bidi = FakeBidi()
    feed = feed_with(bidi)
    params = {"request": {"request": "late", "url": "http://a.test/late"}, "context": "tab"}
    feed.on_event(BEFORE, params)
    valid(feed.take(None, Deadline(0)))
    feed.on_event(COMPLETED, {**params, "response": {"status": 200, "headers": []}})
    assert bidi.named("network.disownData") == ["late"]


def test_a_tab_s_bodies_are_read_before_it_closes_and_a_fresh_tab_s_are_its_collector_s():
    bidi = FakeBidi({"r1": b"a", "r2": b"b"})
    feed = feed_with(bidi)
    exchange(feed, "r1")
    feed.move(bidi, "tab", "tab2", Deadline(5))  # what a move to a fresh tab does before the old one closes
    assert [(m, p.get("collector")) for m, p in bidi.sent[1:]] == [
        ("network.addDataCollector", None), ("network.getData", "c1"), ("network.removeDataCollector", "c1")]
    params = {"request": {"request": "r2", "url": "http://a.test/r2"}, "context": "tab2"}
    feed.on_event(BEFORE, params)
    feed.on_event(COMPLETED, {**params, "response": {"status": 200, "headers": []}})
    contents = [e["response"]["content"] for e in valid(feed.take(None, Deadline(5)))]
    assert [base64.b64decode(c["text"]) for c in contents] == [b"a", b"b"]
    assert [p["collector"] for m, p in bidi.sent if m == "network.getData"] == ["c1", "c2"]


def test_a_body_the_browser_says_is_over_the_cap_is_let_go_unread():
    bidi = FakeBidi({"r1": b"a"})
    feed = BrowserHar(HarLog(8), "chrome", 100)
    feed.install(bidi, "tab", Deadline(1))
    exchange(feed, "r1", size=101)
    (entry,) = valid(feed.take(None, Deadline(5)))
    assert "text" not in entry["response"]["content"]
    assert bidi.named("network.getData") == [] and bidi.named("network.disownData") == ["r1"]


def test_the_browser_holds_at_most_max_held_bodies(monkeypatch):
    monkeypatch.setattr(har, "MAX_HELD", 3)
    bidi = FakeBidi()
    feed = feed_with(bidi)
    for n in range(5):
        exchange(feed, f"r{n}")
    assert bidi.named("network.disownData") == ["r0", "r1"]


def test_the_browser_holds_at_most_max_held_bytes(monkeypatch):
    monkeypatch.setattr(har, "MAX_HELD_BYTES", 25)
    bidi = FakeBidi()
    feed = feed_with(bidi)
    for n in range(4):
        exchange(feed, f"r{n}", size=10)
    assert bidi.named("network.disownData") == ["r0", "r1"]


def test_the_reply_s_budget_ends_the_reading_and_the_rest_is_let_go():
    log = HarLog(100)
    bidi = FakeBidi({f"r{n}": b"x" * 100 for n in range(2)})
    feed = BrowserHar(log, "chrome", 64 * 1024 * 1024)
    feed.install(bidi, "tab", Deadline(1))
    for n in range(2):
        exchange(feed, f"r{n}")
    log.max_bytes = sum(e.weight for e in log._entries.values()) + 150  # room for one body (133)
    contents = [e["response"]["content"] for e in valid(feed.take(None, Deadline(5)))]
    assert ["text" in c for c in contents] == [True, False]


def test_a_har_past_its_deadline_reads_nothing_and_lets_every_body_go():
    bidi = FakeBidi({"r1": b"a"})
    feed = feed_with(bidi)
    exchange(feed, "r1")
    (entry,) = valid(feed.take(None, Deadline(0)))
    assert "text" not in entry["response"]["content"]
    assert bidi.named("network.getData") == [] and bidi.named("network.disownData") == ["r1"]


holds = st.lists(
    st.one_of(
        st.tuples(st.just("begin"), st.integers(0, 6)),
        st.tuples(st.just("hold"), st.integers(0, 6), st.integers(0, 40)),
        st.tuples(st.just("take"), st.booleans()),
        st.tuples(st.just("detach"), st.integers(0, 2)),
    ),
    max_size=40,
)


@given(holds, st.integers(1, 4), st.integers(1, 60))
@settings(max_examples=300, deadline=None)
def test_every_held_body_is_read_or_let_go_exactly_once(ops, max_held, max_held_bytes):
    """Whatever the order of requests, holds and takes, and whatever the bounds: no token is left
    behind in the browser, and none is freed twice."""
    har_max, har_bytes = har.MAX_HELD, har.MAX_HELD_BYTES
    har.MAX_HELD, har.MAX_HELD_BYTES = max_held, max_held_bytes
    try:
        log = HarLog(4, max_bytes=3 * har.ENTRY_WEIGHT)
        tokens, done = 0, []

        def fill(held, keep):
            for token, _, item in held:
                keep(item, b"body")
                done.append(token)

        for op in ops:
            if op[0] == "begin":
                log.begin(op[1], "GET", "http://a.test/", [])
            elif op[0] == "hold":
                tokens += 1
                if not log.hold(op[1], tokens, op[2]):
                    done.append(tokens)
            elif op[0] == "detach":  # a tab about to close: its bodies read now
                for token, _, item in log.detach(lambda token, n=op[1]: token % 3 == n):
                    log.attach(item, b"body")
                    done.append(token)
            else:
                log.take(fill if op[1] else None)  # without a reader: all released
            done.extend(log.released())
        log.take(fill)
        done.extend(log.released())
        assert sorted(done) == list(range(1, tokens + 1))
    finally:
        har.MAX_HELD, har.MAX_HELD_BYTES = har_max, har_bytes


@given(json_values)
@settings(max_examples=300, deadline=None)
def test_any_get_data_answer_gives_bytes_or_none(result):
    body = body_of({"bytes": result})
    assert body is None or isinstance(body, bytes)


@given(st.binary(max_size=300))
def test_a_base64_answer_gives_the_bytes_back(data):
    assert body_of({"bytes": {"type": "base64", "value": base64.b64encode(data).decode()}}) == data


def test_a_string_answer_is_its_utf8_and_the_cap_bounds_the_collector():
    assert body_of({"bytes": {"type": "string", "value": "é"}}) == "é".encode()
    assert body_of({"bytes": {"type": "base64", "value": "not base64!"}}) is None
    assert cap(100, 64 * 1024 * 1024) == CAP_FLOOR and cap(10 * CAP_FLOOR, 64 * 1024 * 1024) == 10 * CAP_FLOOR
    assert cap(100, 1000) == 1000


def test_the_collector_s_token_is_the_tab_s_or_the_current_one():
    bodies = HarBodies(10, 1000)
    assert bodies.token("tab", "r1") is None  # no collector yet
    bodies.watch(FakeBidi(), "tab", Deadline(1))
    assert bodies.token("tab", "r1") == ("c1", "r1") and bodies.token("frame", "r2") == ("c1", "r2")
    assert bodies.token(["not", "a", "context"], "r3") == ("c1", "r3") and bodies.token("tab", "") is None


def test_a_chrome_goto_reads_the_held_bodies_before_it_navigates_and_firefox_s_wait_for_the_har():
    for kind, read_early in (("chrome", True), ("firefox", False)):
        bidi = FakeBidi({"r1": b"abc"})
        feed = BrowserHar(HarLog(8), kind, 64 * 1024 * 1024)
        feed.install(bidi, "tab", Deadline(1))
        exchange(feed, "r1")
        feed.before_goto(Deadline(5))
        assert bidi.named("network.getData") == (["r1"] if read_early else [])
        (entry,) = valid(feed.take(None, Deadline(5)))
        assert base64.b64decode(entry["response"]["content"]["text"]) == b"abc"
        assert bidi.named("network.getData") == ["r1"] and bidi.named("network.disownData") == []
