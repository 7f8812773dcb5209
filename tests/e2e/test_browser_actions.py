"""The browser actions against a real browser: click, fill, content, evaluate, screenshot.

Two sessions per browser for the whole module: ``page`` (the shared one, timeout 20s) for
everything that answers at once, and ``short`` (timeout 2s, viewport 800x600, its content read
before any goto) for what waits out a timeout: a selector that never matches, a script that
never settles, and the screenshot's size.

Decisions of the browser client asserted here (see ``service/clients/browser.py``):
- click/fill wait for the selector up to the element wait, bounded by the action's timeout,
  then 404; an invalid selector is 400; hidden, disabled or covered is 409.
- fill on an element that is neither a field, a contenteditable nor a select: 409.
- evaluate: the result goes through ``JSON.stringify`` (``undefined``, functions -> null, or
  left out of objects); a DOM node in the result is a 422 saying so; a syntax error is a 422.
- content before any goto: the live DOM of ``about:blank``, not an error.
"""

from __future__ import annotations

import base64
import re
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.ports import scaled
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import Session, connect

pytestmark = pytest.mark.clients("chrome", "firefox")

SHORT_TIMEOUT = 2.0  # seconds: the ``short`` session's action timeout
VIEWPORT = {"width": 800, "height": 600}


class Short(NamedTuple):
    session: Session
    blank: dict[str, Any]  # its content reply before any goto


@pytest.fixture(scope="module")
def short(service: Service, client: str) -> Iterator[Short]:
    """A session with a 2s timeout and an 800x600 viewport; its first action was ``content``."""
    session = connect(service.ws_url)
    try:
        session.open(client={"kind": client, "viewport": VIEWPORT}, timeout="2s", max_retries=0, recv_timeout=40)
        blank = session.request({"action": "content"}, timeout=10)
        yield Short(session, blank)
    finally:
        if session.close_code is None:
            try:
                session.send({"action": "close"})
                session.recv(timeout=15)
            except (AssertionError, TimeoutError, OSError):
                pass
        session.close()


# ------------------------------------------------------------------------------- helpers


def goto(session: Session, site: Site, path: str) -> dict[str, Any]:
    reply = session.request({"action": "goto", "url": site.url(path)}, timeout=25)
    assert reply["action"] == "goto" and reply["status_code"] == 200, reply
    return reply


def evaluate(session: Session, script: str, timeout: float = 25) -> Any:
    reply = session.request({"action": "evaluate", "script": script}, timeout=timeout)
    assert reply["action"] == "evaluated", reply
    return reply["result"]


def act(session: Session, frame: dict[str, Any], timeout: float = 25) -> dict[str, Any]:
    return session.request(frame, timeout=timeout)


def error(session: Session, frame: dict[str, Any], code: int, timeout: float = 25) -> dict[str, Any]:
    """Send ``frame``; its reply must be a (non-fatal) error with ``code``."""
    reply = session.request(frame, timeout=timeout)
    assert reply.get("type") == "error" and reply["code"] == code, reply
    if "id" in frame:
        assert reply["id"] == frame["id"], reply
    return reply


def content_text(session: Session) -> str:
    reply = act(session, {"action": "content"})
    assert reply["action"] == "content", reply
    return base64.b64decode(reply["content"], validate=True).decode("utf-8")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13, (length, kind)
    ihdr = data[16:29]
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(b"IHDR" + ihdr), "IHDR CRC mismatch"
    width, height = struct.unpack(">II", ihdr[:8])
    assert data.endswith(b"IEND\xaeB`\x82"), "PNG does not end with IEND"
    return width, height


# ------------------------------------------------------------------------------- click


def test_click_follows_a_link_and_waits_for_the_new_page(client, page, site: Site):
    goto(page, site, "/form")
    assert act(page, {"action": "click", "selector": "#link", "id": "c1"}) == {"action": "clicked", "id": "c1"}
    # no waiting of our own: the click's reply comes after the navigation it started
    assert "<title>Linked</title>" in content_text(page)
    assert evaluate(page, "return location.pathname + location.search") == "/html?title=Linked"


def test_click_that_runs_a_script_navigation_waits_for_it(client, page, site: Site):
    goto(page, site, "/form")
    assert act(page, {"action": "click", "selector": "#js-nav"}) == {"action": "clicked"}
    assert evaluate(page, "return [location.pathname + location.search, document.title]") == [
        "/html?title=Clicked",
        "Clicked",
    ]
    assert "<h1>Clicked</h1>" in content_text(page)


def test_click_twice_runs_the_handler_twice(client, page, site: Site):
    goto(page, site, "/form")
    for _ in range(2):
        assert act(page, {"action": "click", "selector": "#counter"}) == {"action": "clicked"}
    assert evaluate(page, "return document.getElementById('counter').textContent") == "2"


def test_click_uses_the_first_match(client, page, site: Site):
    goto(page, site, "/form")
    evaluate(
        page,
        "for (const n of [1, 2]) { const b = document.createElement('button'); b.className = 'twin';"
        " b.textContent = 'twin' + n; b.onclick = () => document.title = 'clicked ' + n;"
        " document.querySelector('main').prepend(b); }",
    )  # prepended in turn: twin2 comes first in the document
    act(page, {"action": "click", "selector": "button.twin"})
    assert evaluate(page, "return document.title") == "clicked 2"


def test_form_submit_lands_on_echo_with_the_filled_values(client, page, site: Site):
    goto(page, site, "/form")
    site.clear()
    for selector, value in [("#name", "Ann Lee"), ("#bio", "line one\nline two é"), ("#color", "green")]:
        assert act(page, {"action": "fill", "selector": selector, "value": value}) == {"action": "filled"}
    assert act(page, {"action": "click", "selector": "#go"}) == {"action": "clicked"}
    assert evaluate(page, "return location.pathname") == "/echo"
    query = parse_qs(urlsplit(evaluate(page, "return location.href")).query)
    assert query == {
        "name": ["Ann Lee"], "bio": ["line one\r\nline two é"], "color": ["green"], "hidden": ["h"],
    }, query
    echoed = [r for r in site.requests if r["path"] == "/echo"]
    assert len(echoed) == 1 and parse_qs(echoed[0]["query"]) == query, echoed


def test_click_invalid_selector_is_400(client, page, site: Site):
    goto(page, site, "/form")
    reply = error(page, {"action": "click", "selector": "##", "id": "bad-sel"}, 400)
    assert "##" in reply["message"], reply


@pytest.mark.parametrize(
    "selector, word",
    [("#invisible", "visible"), ("#hidden", "visible"), ("#disabled", "disabled"), ("#covered", "covered")],
)
def test_click_on_an_element_that_cannot_be_clicked_is_409(client, page, site: Site, selector, word):
    goto(page, site, "/form")
    started = time.monotonic()
    reply = error(page, {"action": "click", "selector": selector, "id": 7}, 409)
    assert word in reply["message"] and selector in reply["message"], reply
    assert time.monotonic() - started < scaled(4), "an element that exists is judged at once"
    # and nothing was clicked through the overlay
    assert evaluate(page, "return location.pathname") == "/form"


def test_click_without_a_match_is_404_within_the_timeout(client, short: Short, site: Site):
    session = short.session
    goto(session, site, "/form")
    started = time.monotonic()
    reply = error(session, {"action": "click", "selector": "#nope", "id": "c404"}, 404, timeout=10)
    assert "#nope" in reply["message"], reply
    assert time.monotonic() - started < scaled(SHORT_TIMEOUT + 1.5)


def test_click_waits_for_an_element_that_appears(client, page, site: Site):
    goto(page, site, "/form")
    evaluate(
        page,
        "setTimeout(() => { const b = document.createElement('button'); b.id = 'late';"
        " b.onclick = () => document.title = 'late clicked'; document.querySelector('main').append(b);"
        " b.textContent = 'late'; }, 300);",
    )
    assert act(page, {"action": "click", "selector": "#late"}) == {"action": "clicked"}
    assert evaluate(page, "return document.title") == "late clicked"


# ------------------------------------------------------------------------------- fill


def test_fill_input_types_the_value(client, page, site: Site):
    goto(page, site, "/form")
    assert act(page, {"action": "fill", "selector": "#name", "value": "Zoë ✓", "id": "f1"}) == {
        "action": "filled", "id": "f1",
    }
    # typed, not assigned: the page's input handler copied it
    assert evaluate(page, "return [document.getElementById('name').value,"
                          " document.getElementById('result').textContent]") == ["Zoë ✓", "Zoë ✓"]


def test_fill_clears_the_previous_value(client, page, site: Site):
    goto(page, site, "/form")
    act(page, {"action": "fill", "selector": "#name", "value": "first value"})
    act(page, {"action": "fill", "selector": "#name", "value": "second"})
    assert evaluate(page, "return document.getElementById('name').value") == "second"
    act(page, {"action": "fill", "selector": "#name", "value": ""})
    assert evaluate(page, "return document.getElementById('name').value") == ""


def test_fill_textarea(client, page, site: Site):
    goto(page, site, "/form")
    act(page, {"action": "fill", "selector": "#bio", "value": "old"})
    act(page, {"action": "fill", "selector": "#bio", "value": "two\nlines"})
    assert evaluate(page, "return document.getElementById('bio').value") == "two\nlines"


def test_fill_types_emoji_combining_marks_and_line_breaks(client, page, site: Site):
    goto(page, site, "/form")
    # typed as key presses, one code point each; a line break (here CRLF) is one Enter
    act(page, {"action": "fill", "selector": "#bio", "value": "👍🏽 e\u0301 日本\r\nz"})
    assert evaluate(page, "return document.getElementById('bio').value") == "👍🏽 e\u0301 日本\nz"


def test_fill_contenteditable(client, page, site: Site):
    goto(page, site, "/form")
    act(page, {"action": "fill", "selector": "#editable", "value": "old text"})
    assert act(page, {"action": "fill", "selector": "#editable", "value": "edited"}) == {"action": "filled"}
    assert evaluate(page, "return document.getElementById('editable').textContent") == "edited"


def test_fill_select_picks_the_option_by_value(client, page, site: Site):
    goto(page, site, "/form")
    evaluate(page, "document.getElementById('color').addEventListener('change',"
                   " e => document.title = 'changed to ' + e.target.value)")
    assert act(page, {"action": "fill", "selector": "#color", "value": "blue"}) == {"action": "filled"}
    assert evaluate(page, "const s = document.getElementById('color');"
                          " return [s.value, s.selectedIndex, document.title]") == ["blue", 2, "changed to blue"]


def test_fill_select_with_an_unknown_option_is_404(client, page, site: Site):
    goto(page, site, "/form")
    reply = error(page, {"action": "fill", "selector": "#color", "value": "purple", "id": "sel"}, 404)
    assert "purple" in reply["message"], reply
    assert evaluate(page, "return document.getElementById('color').value") == "red"


@pytest.mark.parametrize("selector", ["#p", "#counter"])
def test_fill_on_an_element_that_is_not_a_field_is_409(client, page, site: Site, selector):
    goto(page, site, "/form")
    reply = error(page, {"action": "fill", "selector": selector, "value": "x", "id": "nf"}, 409)
    assert selector in reply["message"] and "cannot be filled" in reply["message"], reply


@pytest.mark.parametrize("selector, code", [("#disabled", 409), ("#invisible", 409), ("#covered", 409), ("[[", 400)])
def test_fill_errors(client, page, site: Site, selector, code):
    goto(page, site, "/form")
    error(page, {"action": "fill", "selector": selector, "value": "x", "id": f"fill-{code}"}, code)


def test_fill_without_a_match_is_404_within_the_timeout(client, short: Short, site: Site):
    session = short.session
    goto(session, site, "/form")
    started = time.monotonic()
    reply = error(session, {"action": "fill", "selector": "input#nope", "value": "x"}, 404, timeout=10)
    assert "input#nope" in reply["message"] and "id" not in reply, reply
    assert time.monotonic() - started < scaled(SHORT_TIMEOUT + 1.5)


# ------------------------------------------------------------------------------- content


def test_content_is_the_live_dom_with_its_doctype(client, page, site: Site):
    goto(page, site, "/html?title=Live")
    evaluate(page, "document.getElementById('p').textContent = 'Changed by a script: é ✓ 日本';"
                   " document.body.appendChild(document.createElement('aside')).id = 'added';")
    text = content_text(page)
    assert text.lower().startswith("<!doctype html>"), text[:100]
    assert "Changed by a script: é ✓ 日本" in text
    assert "Hello from the test site." not in text
    assert '<aside id="added"></aside>' in text
    assert "<title>Live</title>" in text


def test_content_before_any_goto_is_the_blank_page(client, short: Short):
    reply = short.blank
    assert reply["action"] == "content", reply  # not an error: the browser shows about:blank
    text = base64.b64decode(reply["content"], validate=True).decode("utf-8")
    assert text.startswith("<html") and "<body></body></html>" in text, text


# ------------------------------------------------------------------------------- evaluate


@pytest.mark.parametrize(
    "script, expected",
    [
        ("return 42", 42),
        ("return -1.5e3", -1500),
        ("return 0.25", 0.25),
        ("return 'héllo ✓ \"quoted\"\\n'", 'héllo ✓ "quoted"\n'),
        ("return true", True),
        ("return false", False),
        ("return null", None),
        ("return []", []),
        ("return [1, 'a', null, false]", [1, "a", None, False]),
        ("return {}", {}),
        ("return {a: 1, b: 'x'}", {"a": 1, "b": "x"}),
        ("return {list: [1, {deep: [true, null, {x: 'y'}]}], n: {m: {}}}",
         {"list": [1, {"deep": [True, None, {"x": "y"}]}], "n": {"m": {}}}),
        ("document.title = 'no return';", None),
        ("return", None),
        ("return undefined", None),
        ("return () => 1", None),
        ("return {u: undefined, f() {}, n: 1}", {"n": 1}),
        ("return [undefined, () => 1, NaN, Infinity]", [None, None, None, None]),
        ("return new Date(Date.UTC(2020, 0, 2))", "2020-01-02T00:00:00.000Z"),
        ("return new Promise(r => setTimeout(() => r(42), 50))", 42),
        ("return Promise.resolve({ok: [1, 2]})", {"ok": [1, 2]}),
        ("return Promise.resolve(20).then(a => a + 1)", 21),
        ("return document.title", "Test page"),
        ("return arguments.length", 0),
    ],
)
def test_evaluate_returns_json_values(client, page, site: Site, script, expected):
    if "document.title" in script or "arguments" in script:
        goto(page, site, "/html")
    reply = act(page, {"action": "evaluate", "script": script, "id": "ev"})
    assert reply == {"action": "evaluated", "id": "ev", "result": expected}, reply
    assert type(reply["result"]) is type(expected)


def test_evaluate_script_that_throws_is_422_with_its_message(client, page, site: Site):
    goto(page, site, "/html")
    reply = error(page, {"action": "evaluate", "script": "throw new TypeError('boom-7f3a')", "id": 3}, 422)
    assert "boom-7f3a" in reply["message"], reply
    reply = error(page, {"action": "evaluate", "script": "return Promise.reject(new Error('nope-41'))"}, 422)
    assert "nope-41" in reply["message"] and "id" not in reply, reply
    reply = error(page, {"action": "evaluate", "script": "return undefinedName.x"}, 422)
    assert "undefinedName" in reply["message"], reply
    assert evaluate(page, "return 'still usable'") == "still usable"


@pytest.mark.parametrize("script", ["return (", "if (true {", "return 1 +* 2"])
def test_evaluate_syntax_error_is_422(client, page, site: Site, script):
    reply = error(page, {"action": "evaluate", "script": script, "id": "syn"}, 422)
    assert "syntax" in reply["message"].lower(), reply
    assert evaluate(page, "return 1 + 1") == 2


@pytest.mark.parametrize(
    "script, pattern",
    [
        ("return document.body", r"dom node \(body\)"),
        ("return {el: document.getElementById('p')}", r"dom node \(p\)"),
        ("return window", r"window"),
        ("const a = {}; a.self = a; return a", r"circular|cyclic"),  # Chrome's words, Firefox's
        ("return 10n", r"bigint"),
    ],
)
def test_evaluate_non_json_result_is_422(client, page, site: Site, script, pattern):
    goto(page, site, "/html")
    reply = error(page, {"action": "evaluate", "script": script}, 422)
    message = reply["message"].lower()
    assert "not json" in message and re.search(pattern, message), reply


def test_evaluate_that_never_settles_is_504_and_the_session_goes_on(client, short: Short, site: Site):
    session = short.session
    goto(session, site, "/html")
    started = time.monotonic()
    reply = error(session, {"action": "evaluate", "script": "return new Promise(() => {})", "id": "slow"}, 504,
                  timeout=10)
    assert "2s" in reply["message"], reply
    elapsed = time.monotonic() - started
    assert SHORT_TIMEOUT - 0.2 <= elapsed < scaled(SHORT_TIMEOUT + 1.5), elapsed
    assert evaluate(session, "return [1 + 1, location.pathname]", timeout=10) == [2, "/html"]
    # a busy loop is bounded too, and the page answers again afterwards
    error(session, {"action": "evaluate", "script": "const end = Date.now() + 3000; while (Date.now() < end) {}"},
          504, timeout=10)
    assert evaluate(session, "return 'after the loop'", timeout=10) == "after the loop"


# ------------------------------------------------------------------------------- screenshot


def test_screenshot_is_a_png_of_the_viewport(client, short: Short, site: Site):
    session = short.session
    goto(session, site, "/form")
    reply = act(session, {"action": "screenshot", "id": "shot"})
    assert reply["action"] == "screenshot" and reply["id"] == "shot", reply
    data = base64.b64decode(reply["screenshot"], validate=True)
    assert png_size(data) == (VIEWPORT["width"], VIEWPORT["height"])
    assert evaluate(session, "return [innerWidth, innerHeight]", timeout=10) == [
        VIEWPORT["width"], VIEWPORT["height"],
    ]


def test_screenshot_of_the_default_viewport(client, page, site: Site):
    goto(page, site, "/html")
    reply = act(page, {"action": "screenshot"})
    width, height = png_size(base64.b64decode(reply["screenshot"], validate=True))
    assert [width, height] == evaluate(page, "return [innerWidth, innerHeight]")
