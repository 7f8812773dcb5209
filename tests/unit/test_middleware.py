"""service/middleware/: the chain built from the open frame, applied to GotoRequests, and the
goto loop with status retries. Pure logic; the e2e proof is tests/e2e/test_middleware.py."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from service import middleware
from service.clients.base import Cookie, GotoRequest, GotoResult
from service.errors import BadRequest, Forbidden, GatewayTimeout, UpstreamError
from service.protocol import Protocol

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
TYPES = ("headers", "cookies", "block", "retry_status")
PROTOCOL = Protocol()


def result(status: int = 200, headers=(), blocked: int = 0) -> GotoResult:
    return GotoResult(url="http://x.test/", status_code=status, headers=list(headers), blocked=blocked)


class Attempts:
    """A fake client.goto: answers from a script of results and exceptions, counting calls."""

    def __init__(self, *script):
        self.script = list(script)
        self.calls = 0

    def __call__(self) -> GotoResult:
        self.calls += 1
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        return item


class Interrupt:
    """A session's interrupt event that records the waits instead of sleeping them."""

    def __init__(self, waits: list, stop: bool = False):
        self.waits, self.stop = waits, stop

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self.stop

    def is_set(self) -> bool:
        return False


def no_wait(waits: list) -> Interrupt:
    return Interrupt(waits)


# ------------------------------------------------------------------------------- globs


def test_glob_syntax():
    assert middleware.glob("*.png").fullmatch("http://a.test/x/y.png")
    assert not middleware.glob("*.png").fullmatch("http://a.test/x.png?v=1")
    assert middleware.glob("*.png*").fullmatch("http://a.test/x.png?v=1")
    assert middleware.glob("http://ads.test/*").fullmatch("http://ads.test/a/b")
    assert not middleware.glob("http://ads.test/*").fullmatch("https://ads.test/a")
    assert middleware.glob("*://*/t.js?*").fullmatch("https://h.test/t.js?a=1")
    assert not middleware.glob("*://*/t.js?*").fullmatch("https://h.test/tXjs?a=1")  # ? and . are literal
    assert middleware.glob("a[b]").fullmatch("a[b]") and not middleware.glob("a[b]").fullmatch("ab")


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="*"), max_size=8), min_size=1, max_size=5),
       st.data())
def test_a_glob_matches_its_pieces_with_anything_between(pieces, data):
    fillers = [data.draw(st.text(max_size=6)) for _ in pieces[1:]]
    url = pieces[0] + "".join(f + p for f, p in zip(fillers, pieces[1:], strict=True))
    assert middleware.glob("*".join(pieces)).fullmatch(url)


@given(st.text(alphabet=st.characters(blacklist_characters="*"), max_size=30), st.text(min_size=1, max_size=5))
def test_a_glob_without_stars_matches_only_itself(pattern, extra):
    assert middleware.glob(pattern).fullmatch(pattern)
    assert not middleware.glob(pattern).fullmatch(pattern + extra)


# ------------------------------------------------------------------------------- resource types


@pytest.mark.parametrize(
    ("destination", "initiator", "has_range", "kind"),
    [
        ("image", "img", False, "image"),  # both browsers
        ("style", "link", False, "stylesheet"),
        ("script", "script", False, "script"),
        ("", "fetch", False, "fetch"),
        ("font", None, False, "font"),  # Firefox
        ("", "font", False, "font"),  # Chromium
        ("audio", "audio", False, "media"),  # Firefox
        ("", None, True, "media"),  # Chromium: only the Range header tells
        ("iframe", "iframe", False, "subdocument"),
        ("", None, False, "other"),
        ("manifest", None, False, "other"),
    ],
)
def test_resource_types_as_the_browsers_report_them(destination, initiator, has_range, kind):
    assert middleware.resource_type(destination, initiator, has_range) == kind


def test_block_rules():
    chain = middleware.build([
        {"type": "block", "url_patterns": ["*/ads/*"]},
        {"type": "block", "resource_types": ["font"]},
        {"type": "block", "url_patterns": ["*.png"], "resource_types": ["image"]},
    ])
    assert chain.blocks_subresource("http://a.test/ads/x.js", "script")
    assert chain.blocks_subresource("http://a.test/f.woff2", "font")
    assert chain.blocks_subresource("http://a.test/p.png", "image")
    assert not chain.blocks_subresource("http://a.test/p.png", "fetch")
    assert not chain.blocks_subresource("http://a.test/p.jpg", "image")
    with pytest.raises(Forbidden):
        chain.check_url("http://a.test/ads/")
    chain.check_url("http://a.test/f.woff2")  # the second rule has no patterns: no goto matches it
    with pytest.raises(Forbidden):
        chain.check_url("http://a.test/q.png")  # the standard client ignores resource_types


# ------------------------------------------------------------------------------- requests


def test_headers_apply_in_order():
    chain = middleware.build([
        {"type": "headers", "headers": [["X-Default", "d"], ["X-Own", "d"]]},
        {"type": "headers", "set": [["x-set", "1"], ["X-Twice", "a"]], "remove": ["x-gone"]},
        {"type": "headers", "set": [["X-Twice", "b"]]},
    ])
    request = GotoRequest(url="http://a.test/", headers=(("X-Own", "mine"), ("X-Gone", "g"), ("X-SET", "mine")))
    applied = chain.apply(request)
    assert applied.headers == (("X-Own", "mine"), ("X-Default", "d"), ("x-set", "1"), ("X-Twice", "b"))
    assert applied.url == request.url and applied.user_agent == request.user_agent


def test_remove_sees_headers_added_before_it_only():
    chain = middleware.build([
        {"type": "headers", "remove": ["X-Late"]},
        {"type": "headers", "set": [["X-Late", "kept"]]},
    ])
    assert chain.apply(GotoRequest(url="http://a.test/")).headers == (("X-Late", "kept"),)


def test_cookies_go_before_the_gotos_own():
    chain = middleware.build([
        {"type": "cookies", "cookies": [{"name": "a", "value": "1"}]},
        {"type": "cookies", "cookies": [{"name": "b", "value": "2", "path": "/x"}]},
    ])
    own = Cookie(name="a", value="own")
    applied = chain.apply(GotoRequest(url="http://a.test/", cookies=(own,)))
    assert applied.cookies == (Cookie("a", "1"), Cookie("b", "2", path="/x"), own)


def test_an_empty_chain_leaves_the_request_alone():
    request = GotoRequest(url="http://a.test/", headers=(("X", "1"),))
    assert middleware.build([]).apply(request) is request



def _draft7(node):
    if isinstance(node, list):
        return [_draft7(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _draft7(value) for key, value in node.items() if key != "prefixItems"}
    if "prefixItems" in node:
        out["items"] = _draft7(node["prefixItems"])
    return out


def _schema(kind: str) -> dict:
    """A middleware schema with definitions.json inlined (hypothesis-jsonschema resolves only
    local references) and 2020-12's tuple form in draft 7's words."""
    definitions = json.loads((SCHEMAS / "definitions.json").read_text())["$defs"]
    text = (SCHEMAS / "middleware" / f"{kind}.json").read_text().replace('"../definitions.json#/$defs/', '"#/$defs/')
    schema = json.loads(text)
    schema.pop("$id", None)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["$defs"] = definitions
    if kind == "cookies":  # keep drawn dates valid for the format checker
        schema["$defs"]["Cookie"]["properties"].pop("expires")
    return _draft7(schema)


# filter_too_much: hypothesis-jsonschema filters what the schemas' patterns and unique items refuse, and
# on some seeds discards more than it keeps (a failed health check once in about ten runs, not a finding)
@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.lists(st.one_of(*[from_schema(_schema(kind)) for kind in TYPES]), max_size=4))
def test_any_valid_open_frame_middleware_builds_and_applies(steps):
    """Middleware drawn from the schemas: whatever the handshake accepts, the chain takes."""
    frame = PROTOCOL.parse_open(json.dumps({"middleware": steps}))
    try:
        chain = middleware.build(frame.middleware)
    except BadRequest as error:  # the rules the schema cannot say: one retry_status, a sane backoff
        assert ("only one retry_status" in error.message or ".backoff:" in error.message) and error.fatal
        return
    request = chain.apply(GotoRequest(url="http://a.test/", headers=(("X-A", "1"),)))
    assert all(isinstance(n, str) and isinstance(v, str) for n, v in request.headers)


# ------------------------------------------------------------------------------- the goto loop


def test_without_retry_status_a_status_is_the_answer():
    attempts = Attempts(result(503))
    assert middleware.build([]).goto("http://a.test/", attempts, 3, 30).status_code == 503
    assert attempts.calls == 1


def test_listed_statuses_are_retried_with_doubling_backoff():
    chain = middleware.build([{"type": "retry_status", "statuses": [503], "backoff": "100ms"}])
    attempts, waits = Attempts(result(503), result(503), result(200)), []
    assert chain.goto("http://a.test/", attempts, 3, 30, no_wait(waits)).status_code == 200
    assert attempts.calls == 3 and waits == [0.1, 0.2]


def test_status_and_transport_retries_share_max_retries():
    chain = middleware.build([{"type": "retry_status", "statuses": [429], "backoff": "0s"}])
    attempts, waits = Attempts(UpstreamError("reset"), result(429), GatewayTimeout("slow"), result(429)), []
    assert chain.goto("http://a.test/", attempts, 3, 30, no_wait(waits)).status_code == 429
    assert attempts.calls == 4  # max_retries 3: four attempts of either kind


def test_retry_after_seconds_and_dates():
    chain = middleware.build([{"type": "retry_status", "statuses": [503], "backoff": "10s"}])
    attempts, waits = Attempts(result(503, [("Retry-After", "2")]), result(200)), []
    chain.goto("http://a.test/", attempts, 3, 30, no_wait(waits))
    assert waits == [2.0]
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    assert 3.5 < middleware.retry_after([("retry-after", when)]) <= 5.0
    assert middleware.retry_after([("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")]) == 0.0
    assert middleware.retry_after([("Retry-After", "soon")]) is None
    assert middleware.retry_after([]) is None


def test_a_retry_after_past_the_timeout_is_not_waited_for():
    chain = middleware.build([{"type": "retry_status", "statuses": [503]}])
    attempts, waits = Attempts(result(503, [("Retry-After", "31")]), result(200)), []
    assert chain.goto("http://a.test/", attempts, 3, 30, no_wait(waits)).status_code == 503
    assert attempts.calls == 1 and waits == []


def test_a_long_backoff_is_cut_to_the_timeout_and_a_stop_ends_the_wait():
    chain = middleware.build([{"type": "retry_status", "statuses": [503], "backoff": "1h"}])
    waits: list[float] = []
    attempts = Attempts(result(503), result(200))
    assert chain.goto("http://a.test/", attempts, 3, 20, Interrupt(waits, stop=True)).status_code == 503
    assert waits == [20] and attempts.calls == 1


def test_blocked_requests_are_counted_per_session_and_reported():
    told = []
    chain = middleware.build([{"type": "block", "resource_types": ["image"]}], "chrome", lambda c, n: told.append((c, n)))
    chain.goto("http://a.test/", Attempts(result(blocked=3)), 0, 30)
    chain.goto("http://a.test/", Attempts(result()), 0, 30)
    chain.goto("http://a.test/", Attempts(result(blocked=2)), 0, 30)
    assert chain.blocked == 5 and told == [("chrome", 3), ("chrome", 2)]


def test_the_standard_client_refuses_a_blocked_goto_before_any_attempt():
    chain = middleware.build([{"type": "block", "url_patterns": ["*/private/*"]}], "standard")
    attempts = Attempts(result())
    with pytest.raises(Forbidden) as caught:
        chain.goto("http://a.test/private/x", attempts, 3, 30)
    assert caught.value.code == 403 and attempts.calls == 0
    browser = middleware.build([{"type": "block", "url_patterns": ["*/private/*"]}], "firefox")
    assert browser.goto("http://a.test/private/x", attempts, 3, 30).status_code == 200


def test_a_backoff_out_of_range_is_fatal():
    with pytest.raises(BadRequest) as caught:
        middleware.build([{"type": "retry_status", "statuses": [503], "backoff": "9" * 40 + "h"}])
    assert caught.value.fatal and "$.middleware[0].backoff" in caught.value.message


def test_only_one_retry_status():
    with pytest.raises(BadRequest) as caught:
        middleware.build([{"type": "retry_status", "statuses": [503]}] * 2)
    assert caught.value.fatal and caught.value.code == 400 and "$.middleware[1]" in caught.value.message


def test_unknown_types_are_fatal():
    with pytest.raises(BadRequest) as caught:
        middleware.build([{"type": "captcha"}])
    assert caught.value.fatal and re.search(r"\$\.middleware\[0\]", caught.value.message)
