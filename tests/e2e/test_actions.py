"""The actions of issue 20, end to end: wait_for (and, as they land, the others), against the test
site's ``/actions/<name>`` pages (``tests/support/action_pages.py``), in Chrome and Firefox; on the
standard client, where an action means nothing without a browser, a 501 with the session going on.

Every hostile case (a wait that never comes, a page that never rests, a bad selector, a frame
naming two things to wait for) is an error frame, and the next action of the same session works.
"""

from __future__ import annotations

import base64
import io
import struct
from typing import Any

import pypdf
import pytest

from tests.support.site import Site
from tests.support.wsclient import Session

BROWSERS = pytest.mark.clients("chrome", "firefox")


def goto(session: Session, site: Site, path: str) -> dict[str, Any]:
    reply = session.request({"action": "goto", "url": site.url(path)}, timeout=30)
    assert reply["action"] == "goto" and reply["status_code"] == 200, reply
    return reply


def act(session: Session, frame: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    return session.request(frame, timeout=timeout)


def error(session: Session, frame: dict[str, Any], code: int, timeout: float = 30) -> dict[str, Any]:
    reply = session.request(frame, timeout=timeout)
    assert reply.get("type") == "error" and reply["code"] == code, reply
    return reply


def still_usable(session: Session) -> None:
    reply = act(session, {"action": "evaluate", "script": "return 6 * 7"})
    assert reply["action"] == "evaluated" and reply["result"] == 42, reply


# ------------------------------------------------------------------------------ wait_for


@BROWSERS
@pytest.mark.parametrize(
    "frame",
    [
        {"selector": "#late"},
        {"selector": "#late", "state": "attached"},
        {"selector": "#going", "state": "hidden"},
        {"text": "Late arrival"},
        {"url": "*/actions/delayed?ms=300&step=2"},
        {"script": "return document.querySelector('#late') !== null"},
    ],
    ids=["selector", "attached", "hidden", "text", "url", "script"],
)
def test_wait_for_what_comes_300ms_after_load(client, page, site: Site, frame):
    goto(page, site, "/actions/delayed?ms=300")
    reply = act(page, {"action": "wait_for", **frame})
    assert reply["action"] == "waited" and 0 <= reply["elapsed_ms"] < 10_000, reply
    assert act(page, {"action": "evaluate", "script": "return !!document.querySelector('#late')"})["result"] is True


@BROWSERS
def test_wait_for_what_is_already_there_answers_at_once(client, page, site: Site):
    goto(page, site, "/html")
    reply = act(page, {"action": "wait_for", "selector": "#p"})
    assert reply["action"] == "waited" and reply["elapsed_ms"] < 2000, reply


@BROWSERS
@pytest.mark.parametrize(
    "frame",
    [
        {"selector": "#never"},
        {"selector": "#p", "state": "hidden"},
        {"text": "never written"},
        {"url": "*never*"},
        {"script": "return false"},
    ],
    ids=["selector", "hidden", "text", "url", "script"],
)
def test_wait_for_what_never_comes_is_504_within_its_own_timeout(client, page, site: Site, frame):
    goto(page, site, "/html")
    reply = error(page, {"action": "wait_for", "timeout": "1s", **frame}, 504, timeout=15)
    assert "wait_for" in reply["message"] and "1s" in reply["message"], reply
    still_usable(page)


@BROWSERS
def test_network_idle_on_a_quiet_page_and_on_one_that_polls_forever(client, page, site: Site):
    goto(page, site, "/html")
    reply = act(page, {"action": "wait_for", "network_idle": "500ms"})
    assert reply["action"] == "waited" and 500 <= reply["elapsed_ms"] < 5000, reply
    goto(page, site, "/actions/polling")
    site.clear()
    reply = error(page, {"action": "wait_for", "network_idle": "500ms", "timeout": "2s"}, 504, timeout=15)
    assert "no request in flight" in reply["message"], reply
    assert len(site.requests_to("/actions/ping")) >= 3  # the page did poll meanwhile
    still_usable(page)


@BROWSERS
def test_a_script_that_throws_is_422_and_a_bad_selector_400(client, page, site: Site):
    goto(page, site, "/html")
    error(page, {"action": "wait_for", "script": "throw new Error('boom')"}, 422)
    error(page, {"action": "wait_for", "script": "return ((("}, 422)
    reply = error(page, {"action": "wait_for", "selector": ":::"}, 400)
    assert "invalid CSS selector" in reply["message"], reply
    still_usable(page)


@pytest.mark.parametrize(
    "frame, where",
    [
        ({"action": "wait_for"}, "$"),
        ({"action": "wait_for", "selector": "#a", "text": "b"}, "$"),
        ({"action": "wait_for", "text": "b", "state": "visible"}, "$"),
        ({"action": "wait_for", "selector": "#a", "state": "gone"}, "$.state"),
        ({"action": "wait_for", "network_idle": "soon"}, "$.network_idle"),
        ({"action": "wait_for", "selector": "#a", "timeout": "0s"}, "$.timeout"),
        ({"action": "wait_for", "selector": "#a", "timeout": "10h"}, "$.timeout"),
    ],
)
def test_malformed_wait_for_frames_are_400_naming_the_field(client, page, frame, where):
    reply = error(page, frame, 400)
    assert f"at {where}:" in reply["message"], reply


@pytest.mark.clients("standard")
def test_wait_for_on_the_standard_client_is_501(client, page, site: Site):
    goto(page, site, "/html")
    reply = error(page, {"action": "wait_for", "selector": "#p"}, 501)
    assert "browser" in reply["message"], reply
    assert act(page, {"action": "content"})["action"] == "content"


# ------------------------------------------------------------------- press, hover, select, scroll


def evaluate(session: Session, script: str) -> Any:
    reply = act(session, {"action": "evaluate", "script": script})
    assert reply["action"] == "evaluated", reply
    return reply["result"]


@BROWSERS
def test_press_keys_and_chords_into_a_field(client, page, site: Site):
    goto(page, site, "/actions/input")
    assert act(page, {"action": "fill", "selector": "#k", "value": "hello"})["action"] == "filled"
    assert act(page, {"action": "press", "keys": "Control+A", "selector": "#k"})["action"] == "pressed"
    assert act(page, {"action": "press", "keys": "Backspace"})["action"] == "pressed"
    assert evaluate(page, "return document.querySelector('#k').value") == ""
    assert act(page, {"action": "press", "keys": "Shift+x", "selector": "#k"})["action"] == "pressed"
    assert act(page, {"action": "press", "keys": "Enter"})["action"] == "pressed"
    assert evaluate(page, "return document.querySelector('#k').value") == "X"
    keys = evaluate(page, "return window.keys")
    assert [True, False, "a"] in keys and [False, False, "Backspace"] in keys and keys[-1] == [False, False, "Enter"], keys
    assert act(page, {"action": "press", "keys": "Tab", "selector": "#b"})["action"] == "pressed"


@BROWSERS
@pytest.mark.parametrize(
    "frame, code",
    [
        ({"action": "press", "keys": "Control+Nope"}, 400),
        ({"action": "press", "keys": "Control+"}, 400),
        ({"action": "press", "keys": "a", "selector": "#plain"}, 409),
        ({"action": "press", "keys": "a", "selector": "#missing", "timeout": "1s"}, 404),
        ({"action": "hover", "selector": "#missing", "timeout": "1s"}, 404),
        ({"action": "hover", "selector": ":::"}, 400),
        ({"action": "select", "selector": "#one", "values": ["z"]}, 404),
        ({"action": "select", "selector": "#one", "values": ["a", "b"]}, 409),
        ({"action": "select", "selector": "#k", "values": ["a"]}, 409),
        ({"action": "scroll", "selector": "#missing", "timeout": "1s"}, 404),
        ({"action": "scroll", "selector": "#k", "to": "top"}, 400),
    ],
    ids=["unknown-key", "empty-key", "no-focus", "press-missing", "hover-missing", "hover-bad-selector",
         "no-option", "several-on-single", "not-a-select", "scroll-missing", "scroll-two-ways"],
)
def test_hostile_input_actions_are_errors_and_the_session_goes_on(client, page, site: Site, frame, code):
    goto(page, site, "/actions/input")
    error(page, frame, code)
    still_usable(page)


@BROWSERS
def test_hover_fires_mouseenter(client, page, site: Site):
    goto(page, site, "/actions/input")
    assert act(page, {"action": "hover", "selector": "#menu"})["action"] == "hovered"
    assert act(page, {"action": "wait_for", "selector": "#sub", "timeout": "2s"})["action"] == "waited"
    assert evaluate(page, "return window.hovers") == 1


@BROWSERS
def test_select_one_and_many(client, page, site: Site):
    goto(page, site, "/actions/input")
    assert act(page, {"action": "select", "selector": "#one", "values": ["c"]})["action"] == "selected"
    assert act(page, {"action": "select", "selector": "#many", "values": ["a", "c"]})["action"] == "selected"
    picked = evaluate(page, "return [document.querySelector('#one').value,"
                            " Array.from(document.querySelector('#many').selectedOptions, o => o.value), window.changes]")
    assert picked == ["c", ["a", "c"], 2]


@BROWSERS
def test_scroll_a_lazy_page_loads_more(client, page, site: Site):
    goto(page, site, "/actions/lazy")
    assert evaluate(page, "return document.querySelectorAll('.item').length") == 20
    reply = act(page, {"action": "scroll", "to": "bottom"})
    assert reply["action"] == "scrolled" and reply["y"] > 1000 and reply["x"] == 0, reply
    assert act(page, {"action": "wait_for", "selector": "#item-40", "state": "attached", "timeout": "5s"})["action"] == "waited"
    reply = act(page, {"action": "scroll", "selector": "#item-35"})
    assert reply["action"] == "scrolled" and reply["y"] > 2000, reply
    reply = act(page, {"action": "scroll", "x": 0, "y": 150})
    assert (reply["x"], reply["y"]) == (0, 150), reply
    reply = act(page, {"action": "scroll", "to": "top"})
    assert reply["y"] == 0, reply


@pytest.mark.clients("standard")
@pytest.mark.parametrize(
    "frame",
    [
        {"action": "press", "keys": "Enter"},
        {"action": "hover", "selector": "#p"},
        {"action": "select", "selector": "#p", "values": []},
        {"action": "scroll", "to": "bottom"},
        {"action": "upload", "selector": "#f", "files": [{"name": "a.txt", "mime_type": "text/plain", "content": "YQ=="}]},
    ],
    ids=["press", "hover", "select", "scroll", "upload"],
)
def test_input_actions_on_the_standard_client_are_501(client, page, site: Site, frame):
    goto(page, site, "/html")
    error(page, frame, 501)
    assert act(page, {"action": "content"})["action"] == "content"


# ------------------------------------------------------------------------- pdf, screenshot


def _pdf(reply: dict[str, Any]) -> pypdf.PdfReader:
    assert reply["action"] == "pdf", reply
    data = base64.b64decode(reply["pdf"])
    assert data.startswith(b"%PDF-"), data[:20]
    return pypdf.PdfReader(io.BytesIO(data))


@BROWSERS
def test_pdf_of_the_page_has_its_text_and_honours_the_options(client, page, site: Site):
    goto(page, site, "/actions/print")
    document = _pdf(act(page, {"action": "pdf"}))
    assert len(document.pages) >= 3
    assert "Printed by inndx" in document.pages[0].extract_text()
    portrait = document.pages[0].mediabox
    assert portrait.height > portrait.width
    document = _pdf(act(page, {"action": "pdf", "landscape": True, "print_background": True, "page_ranges": [1, "2-2"],
                               "scale": 0.5}))
    assert len(document.pages) == 2
    assert document.pages[0].mediabox.width > document.pages[0].mediabox.height


@BROWSERS
def test_pdf_of_pages_past_the_end_and_the_session_goes_on(client, page, site: Site):
    """Chrome refuses a range past the last page (a non-fatal error frame); Firefox prints
    what it has (a PDF all the same)."""
    goto(page, site, "/actions/print")
    reply = act(page, {"action": "pdf", "page_ranges": ["90-99"]})
    if client == "chrome":
        assert reply.get("type") == "error" and reply["code"] in (400, 502), reply
    else:
        _pdf(reply)
    still_usable(page)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:8]
    return struct.unpack(">II", data[16:24])


@BROWSERS
def test_screenshots_full_page_element_and_formats(client, page, site: Site):
    goto(page, site, "/actions/print")
    viewport = _png_size(base64.b64decode(act(page, {"action": "screenshot"})["screenshot"]))
    full = _png_size(base64.b64decode(act(page, {"action": "screenshot", "full_page": True})["screenshot"]))
    assert full[1] > viewport[1] and full[1] >= 3300, (viewport, full)
    box = _png_size(base64.b64decode(act(page, {"action": "screenshot", "selector": "#box"})["screenshot"]))
    ratio = box[0] / 200
    assert ratio >= 1 and abs(box[1] - 100 * ratio) <= 2, box
    jpeg = base64.b64decode(act(page, {"action": "screenshot", "format": "jpeg", "quality": 40})["screenshot"])
    assert jpeg.startswith(b"\xff\xd8\xff"), jpeg[:4]
    webp = act(page, {"action": "screenshot", "format": "webp", "quality": 80})
    if webp.get("type") == "error":  # a browser without WebP capture says so
        assert webp["code"] == 501, webp
    else:
        data = base64.b64decode(webp["screenshot"])
        assert data[:4] == b"RIFF" and data[8:12] == b"WEBP", data[:12]


@BROWSERS
def test_screenshot_of_a_missing_element_is_404_and_the_session_goes_on(client, page, site: Site):
    goto(page, site, "/actions/print")
    error(page, {"action": "screenshot", "selector": "#missing", "timeout": "1s"}, 404)
    still_usable(page)


@pytest.mark.clients("standard")
def test_pdf_on_the_standard_client_is_501_and_a_screenshot_null(client, page, site: Site):
    goto(page, site, "/html")
    error(page, {"action": "pdf"}, 501)
    assert act(page, {"action": "screenshot", "full_page": True})["screenshot"] is None


# ----------------------------------------------------------------------- cookies and state

ALL = pytest.mark.clients("standard", "chrome", "firefox")


def account(session: Session, site: Site) -> str:
    reply = goto(session, site, "/actions/account")
    return base64.b64decode(reply["body"]).decode()


def _names(reply: dict[str, Any]) -> dict[str, str]:
    assert reply["action"] == "cookies", reply
    return {cookie["name"]: cookie["value"] for cookie in reply["cookies"]}


@ALL
def test_cookies_read_cleared_and_set(client, page, site: Site):
    act(page, {"action": "clear_cookies"})
    goto(page, site, "/actions/login")
    reply = act(page, {"action": "cookies"})
    assert _names(reply) == {"session": "ok", "pref": "1"}, reply
    pref = next(cookie for cookie in reply["cookies"] if cookie["name"] == "pref")
    assert pref["domain"].lstrip(".") == "127.0.0.1" and pref["path"] == "/" and "expires" in pref, pref
    assert "Welcome back" in account(page, site)
    assert act(page, {"action": "clear_cookies"})["action"] == "cookies_cleared"
    assert _names(act(page, {"action": "cookies"})) == {}
    assert "Please log in" in account(page, site)
    cookie = {"name": "session", "value": "ok", "domain": "127.0.0.1", "path": "/"}
    assert act(page, {"action": "set_cookies", "cookies": [cookie]})["action"] == "cookies_set"
    assert _names(act(page, {"action": "cookies"})) == {"session": "ok"}
    assert "Welcome back" in account(page, site)
    act(page, {"action": "clear_cookies"})


@ALL
def test_set_cookies_without_a_domain_is_400(client, page):
    reply = error(page, {"action": "set_cookies", "cookies": [{"name": "a", "value": "b"}]}, 400)
    assert "domain" in reply["message"], reply


@BROWSERS
def test_a_state_taken_in_one_browser_opens_logged_in_in_the_other_and_the_standard_client(
    client, page, site: Site, open_session
):
    act(page, {"action": "clear_cookies"})
    goto(page, site, "/actions/login")
    reply = act(page, {"action": "storage_state"})
    assert reply["action"] == "storage_state", reply
    state = reply["state"]
    assert {c["name"] for c in state["cookies"]} == {"session", "pref"}, state
    assert state["origins"] == [{"origin": site.origin, "local_storage": [["theme", "dark"]]}], state
    act(page, {"action": "clear_cookies"})
    other = "firefox" if client == "chrome" else "chrome"
    browser = open_session(other, storage_state=state, timeout="20s")
    assert _names(act(browser, {"action": "cookies"})) == {"session": "ok", "pref": "1"}
    assert "Welcome back" in account(browser, site)
    assert act(browser, {"action": "evaluate", "script": "return [document.title, localStorage.getItem('theme')]"})[
        "result"] == ["theme dark", "dark"]
    # the page's own change stays: the state is written once, in the first document of its origin
    act(browser, {"action": "evaluate", "script": "localStorage.removeItem('theme')"})
    account(browser, site)
    assert act(browser, {"action": "evaluate", "script": "return localStorage.getItem('theme')"})["result"] is None
    standard = open_session("standard", storage_state=state)
    assert "Welcome back" in account(standard, site)
    assert _names(act(standard, {"action": "cookies"})) == {"session": "ok", "pref": "1"}
    assert act(standard, {"action": "storage_state"})["state"]["origins"] == []
