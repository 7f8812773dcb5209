"""No frame attaches a file of the service's host to a page, through ``fill`` or ``click``.

Each test writes a secret file (a random token, readable by any user) and asks the service, over
a real WebSocket, to put its path into file inputs in every place a page can hold one (the pages:
``tests/support/file_pages.py``); then reads every file input of the page (iframes and shadow
roots included) and what the page's own listeners saw: no file, no byte of the token.

- ``fill`` or ``click`` on a file input is 400 naming the ``upload`` action, hidden or not, and
  even when the page lies about the input in its own world (the check runs in our sandbox).
- A file input in a same-origin iframe or in a shadow root is out of a selector's reach (404);
  a contenteditable iframe or shadow host that hands its focus to a file input is filled, and the
  keys give that input no file.
- An input that becomes a file input when it gets focus is refused (400); one that becomes a file
  input at the first keydown gets the keys, and no file; one that becomes one when it loses focus
  never does (fill does not blur it).
- A click on a label for a file input, or a button that opens its picker, attaches nothing.
- Drag and drop: no action drags; the drop zone gets typed text at most, and no drop event.

Controls: a text input gets the path typed (typing works); and, local only, the same browser set
up by the service attaches the secret through WebDriver's Element Send Keys, the road ``fill``
used to take (including through a race on its Element Clear), while ``fill`` itself sends no classic
WebDriver command at all.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.file_pages import FILES
from tests.support.site import Site
from tests.support.wsclient import Session

pytestmark = pytest.mark.clients("chrome", "firefox")


@pytest.fixture(scope="module")
def secret() -> Iterator[tuple[Path, str]]:
    """A file of the host with a random token; readable by every user, so that the browser could
    read it whatever user it runs as (the road is open on the file's side)."""
    folder = Path(tempfile.mkdtemp(prefix="inndx-secret-"))
    folder.chmod(0o755)
    token = secrets.token_hex(16)
    path = folder / "secret.txt"
    path.write_text(f"SECRET {token}\n")
    path.chmod(0o644)
    yield path, token
    path.unlink()
    folder.rmdir()


def goto(session: Session, site: Site, name: str) -> None:
    reply = session.request({"action": "goto", "url": site.url(f"/files/{name}")}, timeout=25)
    assert reply["action"] == "goto" and reply["status_code"] == 200, reply


def evaluate(session: Session, script: str) -> Any:
    reply = session.request({"action": "evaluate", "script": script}, timeout=25)
    assert reply["action"] == "evaluated", reply
    return reply["result"]


def refused_as_upload(session: Session, frame: dict[str, Any]) -> None:
    reply = session.request(frame, timeout=25)
    assert reply.get("type") == "error" and reply["code"] == 400, reply
    assert "file input" in reply["message"] and "upload" in reply["message"], reply


def error(session: Session, frame: dict[str, Any], code: int) -> dict[str, Any]:
    reply = session.request(frame, timeout=25)
    assert reply.get("type") == "error" and reply["code"] == code, reply
    return reply


def fill(session: Session, selector: str, value: str) -> dict[str, Any]:
    return session.request({"action": "fill", "selector": selector, "value": value}, timeout=25)


def assert_no_file(session: Session, token: str, inputs: int) -> None:
    """Every file input of the page (``inputs`` of them) holds no file, the page's listeners saw
    none, and the token is nowhere in the page."""
    found = evaluate(session, FILES)
    assert len(found) == inputs, found
    assert all(entry["files"] == [] and entry["text"] is None for entry in found), found
    assert evaluate(session, "return window.seen") == []
    assert token not in evaluate(session, "return document.documentElement.outerHTML")


# ------------------------------------------------------------------------------- fill


def test_fill_on_a_file_input_is_400_naming_upload_and_attaches_nothing(client, page, site, secret):
    path, token = secret
    goto(page, site, "input")
    for selector in ("#f", "#hidden-file", "input[type=file]"):
        refused_as_upload(page, {"action": "fill", "selector": selector, "value": str(path)})
    assert_no_file(page, token, inputs=2)
    # the control: a text input gets the same value typed (typing works; a path is only text there)
    assert fill(page, "#t", str(path)) == {"action": "filled"}
    assert evaluate(page, "return document.getElementById('t').value") == str(path)
    assert_no_file(page, token, inputs=2)


def test_fill_cannot_reach_a_file_input_in_an_iframe(client, page, site, secret):
    path, token = secret
    goto(page, site, "frame")
    assert evaluate(page, "return document.getElementById('frame').contentDocument.activeElement.id") == "f"
    error(page, {"action": "fill", "selector": "#f", "value": str(path)}, 404)  # not in the top document
    # the iframe is contenteditable: filled, and its focus goes to the frame's file input, which the
    # keys reach as key presses only
    assert fill(page, "#frame", str(path)) == {"action": "filled"}
    assert evaluate(page, "return document.activeElement.id") == "frame"
    assert_no_file(page, token, inputs=2)


def test_fill_cannot_reach_a_file_input_in_a_shadow_root(client, page, site, secret):
    path, token = secret
    goto(page, site, "shadow")
    for selector in ("#host input", "#inner"):
        error(page, {"action": "fill", "selector": selector, "value": str(path)}, 404)
    error(page, {"action": "fill", "selector": "#host", "value": str(path)}, 409)  # a plain div
    # a contenteditable host whose shadow root delegates its focus to a file input: the file input
    # takes the focus and the keys, and gets no file
    assert fill(page, "#edit-host", str(path)) == {"action": "filled"}
    assert evaluate(page, "return document.getElementById('edit-host').shadowRoot.activeElement.id") == "delegate"
    assert_no_file(page, token, inputs=2)


def test_an_input_that_becomes_a_file_input_on_focus_is_refused(client, page, site, secret):
    path, token = secret
    goto(page, site, "race-focus")
    assert evaluate(page, "return document.getElementById('r').type") == "text"  # what a first check sees
    refused_as_upload(page, {"action": "fill", "selector": "#r", "value": str(path)})
    assert evaluate(page, "return document.getElementById('r').type") == "file"  # the page did switch it
    assert_no_file(page, token, inputs=1)


def test_an_input_that_becomes_a_file_input_on_the_first_keydown_gets_no_file(client, page, site, secret):
    path, token = secret
    goto(page, site, "race-keydown")
    assert fill(page, "#r", str(path)) == {"action": "filled"}  # it was a text input until the keys came
    assert evaluate(page, "return document.getElementById('r').type") == "file"
    assert_no_file(page, token, inputs=1)


def test_an_input_that_becomes_a_file_input_on_blur_is_typed_into_as_text(client, page, site, secret):
    """The race fill's old Element Clear opened (its blur let the page switch the type before the
    keys; see the control below): fill never blurs the field, so the keys land in a text input."""
    path, token = secret
    goto(page, site, "race-blur")
    assert fill(page, "#r", str(path)) == {"action": "filled"}
    assert evaluate(page, "const r = document.getElementById('r'); return [r.type, r.value]") == ["text", str(path)]
    assert_no_file(page, token, inputs=0)


def test_a_page_that_lies_about_its_inputs_in_its_own_world_is_still_refused(client, page, site, secret):
    path, token = secret
    goto(page, site, "liar")
    # the lie is live in the page's world: a check made there would have typed into the decoy
    assert evaluate(page, "const f = document.getElementById('f');"
                          " return [document.querySelector('#f').id, f.type, f.getAttribute('type')]") == [
        "decoy", "text", "text"]
    refused_as_upload(page, {"action": "fill", "selector": "#f", "value": str(path)})
    refused_as_upload(page, {"action": "click", "selector": "#f"})
    assert evaluate(page, "return document.getElementById('decoy').value") == ""
    # and a click goes to the element our sandbox resolved, not to the one the page's world names
    assert page.request({"action": "click", "selector": "#b"}, timeout=25) == {"action": "clicked"}
    assert evaluate(page, "return document.title") == "b clicked"
    assert_no_file(page, token, inputs=1)


# ------------------------------------------------------------------------------- click, drag and drop


def test_click_on_a_file_input_or_what_opens_it_attaches_nothing(client, page, site, secret):
    path, token = secret
    goto(page, site, "input")
    refused_as_upload(page, {"action": "click", "selector": "#f"})
    for selector in ("#label", "#opener"):  # each opens the file picker, which no one answers
        assert page.request({"action": "click", "selector": selector}, timeout=25) == {"action": "clicked"}
    assert_no_file(page, token, inputs=2)
    assert fill(page, "#t", "still usable") == {"action": "filled"}  # the session goes on


def test_no_action_drops_a_file_on_a_drop_zone(client, page, site, secret):
    """No action drags (WebDriver and BiDi actions carry no drag data; the one command that gives
    files, BiDi ``input.setFiles``, is never sent: ``tests/unit/test_no_host_files.py``): a click
    or a fill on a drop zone is a click or typed text, never a drop."""
    path, token = secret
    goto(page, site, "input")
    assert page.request({"action": "click", "selector": "#drop"}, timeout=25) == {"action": "clicked"}
    assert fill(page, "#drop", str(path)) == {"action": "filled"}
    assert evaluate(page, "return document.getElementById('drop').textContent") == str(path)  # text only
    assert_no_file(page, token, inputs=2)


# ------------------------------------------------------------------------------- controls


@pytest.mark.local_only
def test_control_element_send_keys_attaches_the_host_file_and_fill_never_uses_it(client, site, secret, monkeypatch):
    """The road was live: in a browser set up as the service sets it up, WebDriver's Element Send
    Keys with the secret's path attaches the secret (directly, and through a race after a check
    that saw a text input: fill's old clear-then-send-keys, on a page that switches the input's
    type when Element Clear blurs it). ``fill`` sends no classic command."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    from service.clients import browser_settings
    from service.clients.base import ClientOptions, GotoRequest
    from service.clients.browser import BrowserClient
    from service.config import Settings
    from service.deadline import Deadline
    from service.egress import Gateway
    from service.policy import Policy

    path, token = secret
    policy = Policy(allow_private=True)
    gateway = Gateway(policy)
    listener = gateway.open("control", client)
    browser = BrowserClient(client, ClientOptions(policy=policy, egress=listener), browser_settings(Settings()))
    try:
        browser.start(Deadline(60))
        driver = browser._launched.driver
        read = "const f = document.getElementById(%r); return f.files.length ? f.files[0].text() : null"

        browser.goto(GotoRequest(site.url("/files/input")), Deadline(30))
        driver.find_element(By.CSS_SELECTOR, "#f").send_keys(str(path))
        assert token in _value(browser, read % "f", Deadline(10))

        browser.goto(GotoRequest(site.url("/files/race-blur")), Deadline(30))
        assert _value(browser, "return document.getElementById('r').type", Deadline(10)) == "text"
        element = driver.find_element(By.CSS_SELECTOR, "#r")
        element.clear()  # focuses it, clears it, blurs it: the page makes it a file input
        element.send_keys(str(path))
        assert token in _value(browser, read % "r", Deadline(10))

        commands: list[str] = []
        execute = WebDriver.execute
        monkeypatch.setattr(WebDriver, "execute", lambda self, name, params=None: (commands.append(name),
                                                                                   execute(self, name, params))[1])
        browser.goto(GotoRequest(site.url("/files/race-keydown")), Deadline(30))
        commands.clear()
        browser.fill("#r", str(path), Deadline(10))
        assert commands == []
        browser.goto(GotoRequest(site.url("/files/input")), Deadline(30))
        commands.clear()
        browser.fill("#t", str(path), Deadline(10))
        assert commands == []
        assert _value(browser, "return document.getElementById('t').value", Deadline(10)) == str(path)
        assert _value(browser, read % "f", Deadline(10)) is None
    finally:
        browser.close()
        listener.close()
        gateway.stop()


def _value(browser: Any, script: str, deadline: Any) -> Any:
    """``BrowserClient.evaluate`` answers the result's JSON text (checked in the browser, passed on
    as it is): its value."""
    return json.loads(browser.evaluate(script, deadline))
