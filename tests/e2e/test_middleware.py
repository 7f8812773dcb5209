"""The open frame's middleware, end to end (README "Middleware", service/middleware/): headers,
cookies, block and retry_status applied in order to every goto, on every client kind.

One session per client kind carries the whole chain below; the test site tells what arrived.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time

import pytest

from tests.e2e.test_pool import idle, pool_env, pool_event, wait_idle
from tests.support.site import RESOURCE_PATHS
from tests.support.wsclient import connect, http_get

pytestmark = pytest.mark.clients("standard", "chrome", "firefox")

CHAIN = [
    {"type": "headers", "headers": [["X-Legacy", "legacy"], ["X-Own", "default"]]},
    {"type": "headers", "set": [["X-Set", "set-1"], ["X-Replaced", "by-middleware"]], "remove": ["X-Removed"]},
    {"type": "cookies", "cookies": [{"name": "mw", "value": "from-middleware"}]},
    {"type": "block", "url_patterns": ["*/asset/*"], "resource_types": ["image", "font", "media", "stylesheet"]},
    {"type": "block", "url_patterns": ["*/blocked-by-pattern*"]},
    {"type": "retry_status", "statuses": [429, 503], "backoff": "100ms"},
]
BLOCKED_KINDS = ("image", "font", "media", "stylesheet")
ARRIVAL_BOUND = 10.0  # seconds for a page's own late requests (fetch, audio preload) to arrive


@pytest.fixture(scope="module")
def chained(service, client):
    session = connect(service.ws_url)
    try:
        session.open(client=client, timeout="20s", max_retries=3, middleware=CHAIN)
    except BaseException:
        session.close()
        raise
    yield session
    with contextlib.suppress(Exception):
        if session.close_code is None:
            session.send({"action": "close"})
            session.recv(timeout=15)
    session.close()


def goto(session, url, **fields):
    reply = session.request({"action": "goto", "url": url, **fields}, timeout=60)
    assert reply.get("type") is None, reply
    return reply


def body_json(reply) -> dict:
    return json.loads(base64.b64decode(reply["body"]))


def sent(echoed: dict, name: str) -> list[str]:
    return [value for key, value in echoed["headers"] if key.lower() == name.lower()]


def blocked_total(service, client: str) -> float:
    for line in service.metrics().splitlines():
        match = re.match(rf'inndx_blocked_requests_total\{{client="{client}"\}} ([0-9.e+]+)', line)
        if match:
            return float(match.group(1))
    return 0.0


def arrived(site, folder: str) -> set[str]:
    paths = {path.replace("/asset/", folder): kind for kind, path in RESOURCE_PATHS.items()}
    return {paths[r["path"]] for r in site.requests if r["path"] in paths}


def wait_for_arrivals(site, folder: str, wanted: set[str]) -> set[str]:
    deadline = time.monotonic() + ARRIVAL_BOUND
    while not wanted <= arrived(site, folder) and time.monotonic() < deadline:
        time.sleep(0.05)
    return arrived(site, folder)


# ------------------------------------------------------------------------------- headers


def test_headers_set_remove_and_the_first_form(chained, site):
    echoed = body_json(
        goto(chained, site.url("/echo"), headers=[["X-Own", "mine"], ["X-Replaced", "mine"], ["X-Removed", "x"]])
    )
    assert sent(echoed, "X-Legacy") == ["legacy"]
    assert sent(echoed, "X-Own") == ["mine"]  # first form: defaults, the goto's own wins
    assert sent(echoed, "X-Set") == ["set-1"]
    assert sent(echoed, "X-Replaced") == ["by-middleware"]  # set replaces the goto's own
    assert sent(echoed, "X-Removed") == []


# ------------------------------------------------------------------------------- cookies


def test_cookies_are_sent_with_every_goto(chained, site):
    first = body_json(goto(chained, site.url("/cookies/echo")))
    assert first["cookies"].get("mw") == "from-middleware"
    own = body_json(goto(chained, site.url("/cookies/echo"), cookies=[{"name": "mw", "value": "own"}]))
    assert own["cookies"].get("mw") == "own"  # the goto's own cookie of that name wins
    again = body_json(goto(chained, site.url("/cookies/echo")))
    assert again["cookies"].get("mw") == "from-middleware"


# ------------------------------------------------------------------------------- block


@pytest.mark.clients("chrome", "firefox")
def test_browsers_fetch_every_kind_when_nothing_matches(chained, site):
    """The control: from /free/ no rule matches, and every kind of sub-resource arrives."""
    site.clear()
    goto(chained, site.url("/resources?dir=free"))
    assert wait_for_arrivals(site, "/free/", set(RESOURCE_PATHS)) == set(RESOURCE_PATHS)


@pytest.mark.clients("chrome", "firefox")
def test_browsers_fail_matching_subresources(chained, site, service, client):
    before = blocked_total(service, client)
    site.clear()
    reply = goto(chained, site.url("/resources"))
    assert reply["status_code"] == 200
    got = wait_for_arrivals(site, "/asset/", {"script", "fetch"})
    assert got == {"script", "fetch"}, got
    assert blocked_total(service, client) - before >= len(BLOCKED_KINDS)  # Firefox retries an image


@pytest.mark.clients("chrome", "firefox")
def test_block_holds_across_a_page_started_navigation_and_in_frames(chained, site, service, client):
    """A meta refresh (delay 0) starts a navigation while the block intercept is active: the goto
    follows it; the frame's document is let through, its image is not."""
    before = blocked_total(service, client)
    site.clear()
    reply = goto(chained, site.url("/resources?frame=1&refresh=/html%3Ftitle%3DAfter"))
    assert reply["url"] == site.url("/html?title=After"), reply["url"]
    assert [hop["side"] for hop in reply["redirects"]] == ["client"]
    assert site.requests_to("/asset/in-frame.png") == []
    assert not set(BLOCKED_KINDS) & arrived(site, "/asset/")
    assert blocked_total(service, client) - before >= 1
    # the session is still fine after it
    assert goto(chained, site.url("/html?title=Still"))["status_code"] == 200


@pytest.mark.clients("chrome", "firefox")
def test_block_applies_to_the_page_a_script_navigates_to(chained, site, service, client):
    """The page sets location.href while it loads; the next page's sub-resources are blocked."""
    site.clear()
    reply = goto(chained, site.url("/js-redirect?to=/resources"))
    assert reply["url"] == site.url("/resources"), reply["url"]
    got = wait_for_arrivals(site, "/asset/", {"script", "fetch"})
    assert got == {"script", "fetch"}, got


@pytest.mark.clients("chrome", "firefox")
def test_browsers_never_block_the_navigation_itself(chained, site):
    assert goto(chained, site.url("/echo/blocked-by-pattern"))["status_code"] == 200


@pytest.mark.clients("standard")
def test_standard_applies_url_patterns_to_the_goto(chained, site):
    site.clear()
    reply = chained.request({"action": "goto", "url": site.url("/echo/blocked-by-pattern"), "id": 7}, timeout=30)
    assert reply["type"] == "error" and reply["code"] == 403 and reply["id"] == 7, reply
    assert "block middleware" in reply["message"]
    assert site.requests_to("/echo/blocked-by-pattern") == []
    assert goto(chained, site.url("/resources"))["status_code"] == 200  # resource_types ignored
    assert chained.request({"action": "goto", "url": site.url("/asset/pic.png")}, timeout=30)["code"] == 403


# ------------------------------------------------------------------------------- retry_status


def test_a_listed_status_is_retried(chained, site):
    reply = goto(chained, site.url("/retry?key=mw-retry-ok&fail=2&status=503"))
    assert reply["status_code"] == 200
    assert site.count("mw-retry-ok") == 3


def test_retries_stop_at_max_retries(chained, site):
    reply = goto(chained, site.url("/retry?key=mw-retry-max&fail=100&status=429"))
    assert reply["status_code"] == 429
    assert site.count("mw-retry-max") == 4  # max_retries 3: four attempts in all


def test_an_unlisted_status_is_not_retried(chained, site):
    reply = goto(chained, site.url("/retry?key=mw-retry-500&fail=100&status=500"))
    assert reply["status_code"] == 500
    assert site.count("mw-retry-500") == 1


def test_retry_after_is_honoured(chained, site):
    started = time.monotonic()
    reply = goto(chained, site.url("/retry?key=mw-retry-after&fail=1&status=503&after=1"))
    assert reply["status_code"] == 200 and site.count("mw-retry-after") == 2
    assert time.monotonic() - started >= 1.0  # waited what the server asked, not the 100ms backoff


def test_retry_after_past_the_timeout_is_not_waited_for(chained, site):
    reply = goto(chained, site.url("/retry?key=mw-retry-late&fail=1&status=503&after=3600"))
    assert reply["status_code"] == 503
    assert site.count("mw-retry-late") == 1


# ------------------------------------------------------------------------------- handshake


@pytest.mark.clientless
@pytest.mark.parametrize(
    "middleware",
    [
        [{"type": "nope"}],
        [{"type": "block"}],
        [{"type": "headers", "headers": [["X-A", "1"]], "set": [["X-B", "2"]]}],
        [{"type": "retry_status", "statuses": [200]}],
        [{"type": "retry_status", "statuses": [503]}, {"type": "retry_status", "statuses": [429]}],
        [{"type": "block", "resource_types": ["document"]}],
    ],
)
def test_bad_middleware_is_fatal_at_the_handshake(service, middleware):
    with connect(service.ws_url) as session:
        session.send({"middleware": middleware})
        frame = session.recv(timeout=15)
        assert frame["type"] == "fatal" and frame["code"] == 400, frame
        assert "$.middleware[" in frame["message"], frame
        assert session.expect_close(timeout=15)[0] == 1008


@pytest.mark.clientless
def test_the_middleware_schemas_are_served_beside_the_contract(service):
    for kind in ("headers", "cookies", "block", "retry_status"):
        status, _, body = http_get(f"{service.url}/schemas/middleware/{kind}.json")
        assert status == 200 and json.loads(body)["$id"].endswith(f"/schemas/middleware/{kind}.json")


# ------------------------------------------------------------------------------- block: Chrome


@pytest.mark.clients("chrome", "firefox")
def test_page_started_navigations_under_block_rules_never_wedge(chained, site):
    """In Chrome, a paused page-started navigation wedged the browser about one time in two when
    the rules were a BiDi intercept; they are an extension now, and nothing is paused."""
    for round_ in range(6):
        reply = goto(chained, site.url(f"/meta-refresh?to=/html%3Ftitle%3DR{round_}&delay=0"))
        assert reply["url"] == site.url(f"/html?title=R{round_}"), reply["url"]


@pytest.mark.clients("chrome")
def test_chrome_blocks_for_the_whole_session(chained, site, service):
    """Chrome's rules live in the browser: a request the page makes after the goto is failed too."""
    goto(chained, site.url("/html?title=Late"))
    site.clear()
    script = "const i = new Image(); i.src = '/asset/late.png'; const f = fetch('/free/late.json'); return 1"
    reply = chained.request({"action": "evaluate", "script": script}, timeout=30)
    assert reply.get("type") is None, reply
    deadline = time.monotonic() + ARRIVAL_BOUND
    while not site.requests_to("/free/late.json") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert site.requests_to("/free/late.json"), "the control request never arrived"
    assert site.requests_to("/asset/late.png") == []


@pytest.mark.clients("chrome")
@pytest.mark.parametrize("pattern", ["*|*", "*/a^b*"])
def test_chrome_refuses_patterns_it_cannot_say(service, client, pattern):
    with connect(service.ws_url) as session:
        session.send({"client": client, "middleware": [{"type": "block", "url_patterns": [pattern]}]})
        frame = session.recv(timeout=15)
        assert frame["type"] == "fatal" and frame["code"] == 400, frame
        assert "$.middleware[0].url_patterns[0]" in frame["message"], frame
        assert session.expect_close(timeout=15)[0] == 1008


@pytest.mark.local_only
@pytest.mark.clients("chrome")
def test_a_chrome_session_with_block_rules_starts_cold_beside_the_pool(start_service, site):
    """The rules are given at launch, so such a session never takes a pooled browser (which has
    none); the pooled one stays ready for the next session."""
    svc = start_service(**pool_env("chrome"))
    wait_idle(svc, "chrome", 1)
    with connect(svc.ws_url) as session:
        session.open(client="chrome", timeout="20s", middleware=CHAIN)
        site.clear()
        goto(session, site.url("/resources"))
        assert wait_for_arrivals(site, "/asset/", {"script", "fetch"}) == {"script", "fetch"}
        assert not set(BLOCKED_KINDS) & arrived(site, "/asset/")
    assert pool_event(svc, "chrome", "handed_out") == 0
    assert idle(svc, "chrome") == 1


@pytest.mark.clients("chrome")
def test_chrome_takes_odd_and_long_patterns_and_still_blocks(service, site, client):
    """What a client may put in a pattern (quotes, backslashes, spaces, %, a 2048-character
    pattern, a non-ASCII one) becomes a ruleset Chrome loads; the plain rule beside them holds."""
    odd = ['*"\\ %x*', "*" + "a" * 2047, "*é*", "*/asset/*"]
    rule = {"type": "block", "url_patterns": odd, "resource_types": ["image"]}
    with connect(service.ws_url) as session:
        session.open(client=client, timeout="20s", middleware=[rule])
        site.clear()
        goto(session, site.url("/resources"))
        others = set(RESOURCE_PATHS) - {"image"}
        assert wait_for_arrivals(site, "/asset/", others) == others
