"""The actions of issue 20, end to end: wait_for (and, as they land, the others), against the test
site's ``/actions/<name>`` pages (``tests/support/action_pages.py``), in Chrome and Firefox; on the
standard client, where an action means nothing without a browser, a 501 with the session going on.

Every hostile case (a wait that never comes, a page that never rests, a bad selector, a frame
naming two things to wait for) is an error frame, and the next action of the same session works.
"""

from __future__ import annotations

from typing import Any

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
