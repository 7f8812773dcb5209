"""The HTTP archive's builder (``service.har``) and its BiDi feed (``service.clients.browser_har``):
whatever the clients and the browsers' events say, the archive matches ``schemas/har.response.json``,
keeps its bounds, and starts again empty after each ``take``."""

from __future__ import annotations

import base64
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from service import har
from service.clients.browser_har import BEFORE, COMPLETED, FAILED, STARTED, BrowserHar
from service.deadline import Deadline
from service.har import HarLog, timings_of
from tests.support.wsclient import validate_frame

MAX_BODY = 64 * 1024 * 1024
text = st.text(max_size=40)
numbers = st.one_of(st.none(), st.integers(-(2**60), 2**60), st.floats(allow_nan=True, allow_infinity=True), text)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)


def valid(archive: dict) -> list[dict]:
    validate_frame({"action": "har", "id": 1, "har": archive})
    return archive["log"]["entries"]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("begin"), st.integers(0, 5), text, text, st.lists(st.tuples(text, text), max_size=3),
                  st.one_of(st.none(), st.binary(max_size=80))),
        st.tuples(st.just("respond"), st.integers(0, 5), st.integers(0, 999), st.lists(st.tuples(text, text), max_size=3)),
        st.tuples(st.just("finish"), st.integers(0, 5), st.one_of(st.none(), st.binary(max_size=80)),
                  st.dictionaries(st.sampled_from(["dnsStart", "dnsEnd", "requestStart", "responseStart", "responseEnd",
                                                   "connectStart", "connectEnd", "tlsStart"]),
                                  st.floats(-1e6, 1e13, allow_nan=False))),
        st.tuples(st.just("fail"), st.integers(0, 5), text),
    ),
    max_size=25,
)


@given(operations, st.integers(0, 100))
@settings(max_examples=200, deadline=None)
def test_any_sequence_of_exchanges_makes_a_valid_archive(ops, body_bytes):
    log = HarLog(body_bytes)
    for op in ops:
        if op[0] == "begin":
            log.begin(op[1], op[2] or "GET", op[3], op[4], op[5])
        elif op[0] == "respond":
            log.respond(op[1], op[2], op[3])
        elif op[0] == "finish":
            log.finish(op[1], op[2], timings=op[3])
        else:
            log.fail(op[1], op[2])
    entries = valid(log.take())
    assert len(entries) <= 6
    for entry in entries:
        text_ = entry["response"]["content"].get("text")
        assert text_ is None or len(base64.b64decode(text_)) <= body_bytes
        if not body_bytes:
            assert text_ is None and "postData" not in entry["request"]
    assert valid(log.take()) == []  # taken: the log starts again empty


@given(st.dictionaries(st.sampled_from(["dnsStart", "dnsEnd", "connectStart", "connectEnd", "tlsStart",
                                        "requestStart", "responseStart", "responseEnd"]),
                       st.floats(allow_nan=True, allow_infinity=True)),
       st.floats(0, 1e9))
def test_timings_are_never_below_what_har_allows(facts, total):
    out = timings_of({k: v for k, v in facts.items() if v == v and abs(v) < 1e300}, total)
    assert all(out[k] >= 0 for k in ("send", "wait", "receive"))
    assert all(out[k] >= -1 for k in out)


@given(st.lists(st.tuples(st.sampled_from([BEFORE, STARTED, COMPLETED, FAILED]),
                          st.dictionaries(st.sampled_from(["request", "response", "redirectCount", "timestamp",
                                                           "errorText"]), json_values, max_size=5)),
                max_size=12))
@settings(max_examples=200, deadline=None)
def test_any_browser_event_is_taken_or_dropped_never_a_crash(events):
    """The events are the browser's, about an attacker's server: any shape gives a valid archive."""
    feed = BrowserHar(HarLog(16), "firefox", MAX_BODY)
    for method, params in events:
        feed.on_event(method, params)
    valid(feed.take(None, Deadline(0)))


def test_a_browser_request_in_events_becomes_one_entry_per_hop():
    feed = BrowserHar(HarLog(), "chrome", MAX_BODY)
    request = {"request": "r1", "url": "http://a.test/x?q=1", "method": "GET",
               "headers": [{"name": "Cookie", "value": {"type": "string", "value": "a=1; b=2"}}],
               "timings": {"requestStart": 100.0, "responseStart": 130.0, "responseEnd": 150.0}}
    feed.on_event(BEFORE, {"request": request, "redirectCount": 0, "timestamp": 1_700_000_000_000})
    feed.on_event(COMPLETED, {"request": request, "redirectCount": 0, "timestamp": 1_700_000_000_050,
                              "response": {"status": 302, "statusText": "Found", "protocol": "http/1.1",
                                           "headers": [{"name": "Location", "value": {"type": "string", "value": "/y"}}],
                                           "content": {"size": 0}, "bytesReceived": 120}})
    feed.on_event(BEFORE, {"request": {**request, "url": "http://a.test/y"}, "redirectCount": 1,
                           "timestamp": 1_700_000_000_060})
    feed.on_event(STARTED, {"request": {**request, "url": "http://a.test/y"}, "redirectCount": 1,
                            "response": {"status": 200, "mimeType": "text/html", "headers": []}})
    first, second = valid(feed.take(None, Deadline(0)))
    assert first["startedDateTime"] == "2023-11-14T22:13:20.000Z"
    assert first["response"]["redirectURL"] == "/y" and first["response"]["bodySize"] == 120
    assert first["request"]["cookies"] == [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]
    assert first["request"]["queryString"] == [{"name": "q", "value": "1"}]
    assert first["timings"]["wait"] == 30.0 and first["timings"]["receive"] == 20.0 and first["time"] == 50.0
    assert second["response"]["status"] == 200 and "_error" not in second  # headers came: answered
    feed.on_event(BEFORE, {"request": {**request, "request": "r2"}, "timestamp": 1_700_000_001_000})
    feed.on_event(FAILED, {"request": {**request, "request": "r2"}, "errorText": "net::ERR_TUNNEL_CONNECTION_FAILED"})
    (failed,) = valid(feed.take(None, Deadline(0)))
    assert failed["response"]["status"] == 0 and failed["_error"] == "net::ERR_TUNNEL_CONNECTION_FAILED"


def test_the_gateway_s_refusal_is_named_in_the_archive():
    class Egress:
        def answered(self, url: str):
            return (403, "localhost:9 is blocked by the network policy (not allowed)") if ":9/" in url else None

    feed = BrowserHar(HarLog(), "firefox", MAX_BODY)
    for n, url in enumerate(["http://localhost:9/x", "http://127.0.0.1:8/y"]):
        feed.on_event(BEFORE, {"request": {"request": str(n), "url": url, "method": "GET"}})
        feed.on_event(COMPLETED, {"request": {"request": str(n), "url": url}, "response": {"status": 403}})
    refused, other = valid(feed.take(Egress(), Deadline(0)))
    assert refused["_refusal"] == "localhost:9 is blocked by the network policy (not allowed)"
    assert "_refusal" not in other


def test_the_archive_keeps_at_most_its_bound_of_entries_and_says_so(monkeypatch):
    monkeypatch.setattr(har, "MAX_ENTRIES", 3)
    log = HarLog()
    for n in range(5):
        log.begin(n, "GET", f"http://a.test/{n}", [])
        log.finish(n, b"")
    archive = log.take()
    assert [e["request"]["url"] for e in valid(archive)] == [f"http://a.test/{n}" for n in (2, 3, 4)]
    assert "2 older entries were dropped" in archive["log"]["comment"]


def test_what_the_reply_would_hold_is_bounded():
    """Bodies are kept while they fit; past the bound, the oldest entries go (a server's huge
    headers cannot grow the archive past it either)."""
    log = HarLog(60, max_bytes=2 * har.ENTRY_WEIGHT + 200)
    for n in range(2):
        log.begin(n, "GET", f"http://a.test/{n}", [])
        log.finish(n, b"x" * 80)
    contents = [e["response"]["content"] for e in valid(log.take())]
    assert [len(base64.b64decode(c["text"])) if "text" in c else None for c in contents] == [60, None]
    assert contents[0]["_truncated"] is True and all(c["size"] == 80 for c in contents)
    for n in range(3):
        log.begin(n, "GET", f"http://a.test/{n}", [])
        log.respond(n, 200, [("X-Huge", "h" * har.ENTRY_WEIGHT)])
    archive = log.take()
    assert [e["request"]["url"] for e in valid(archive)] == ["http://a.test/2"]
    assert "2 older entries were dropped" in archive["log"]["comment"]


def test_settle_waits_for_an_answer_and_is_bounded():
    log = HarLog()
    log.begin(1, "GET", "http://a.test/", [])
    assert log.settle(0.05) is False  # no answer: bounded
    answer = threading.Timer(0.05, lambda: log.respond(1, 200, []))
    answer.start()
    try:
        assert log.settle(10.0) is True
    finally:
        answer.join()
