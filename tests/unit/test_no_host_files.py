"""No frame attaches a file of the service's host to a page: what the code never does, and the
driver settings that keep Selenium from reading local files (the behaviour itself, in real
browsers: ``tests/e2e/test_host_files.py``).

- The service never types with WebDriver's Element Send Keys (which takes a file input's value as
  paths of host files to attach), never names Selenium's local file detector (which makes
  ``send_keys`` upload a host file to a Grid node), and never sends a command that hands a page
  files or drag data (BiDi ``input.setFiles``, CDP's file and drag commands, Selenium's Grid
  upload), with one exception: ``browser_upload``, the upload action, which hands a page only
  files it wrote itself from the client's bytes (into a fresh dir of the session's temp dir, or
  to the Grid node from memory). The exception is by module, and each allowed use must be there.
- Every driver ``new_driver`` makes, local or on a Grid, has the ``UselessFileDetector``.
- Values are typed as key presses, one code point each, line breaks as Enter.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from selenium.webdriver.chrome.options import Options as ChromeOptions
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.firefox.options import Options as FirefoxOptions
from selenium.webdriver.firefox.service import Service as FirefoxService
from selenium.webdriver.remote.file_detector import LocalFileDetector, UselessFileDetector
from selenium.webdriver.remote.webdriver import WebDriver

from service.clients import browser_launch
from service.clients.browser_page import ENTER, key_actions

SERVICE = Path(__file__).resolve().parents[2] / "service"

# Names (identifiers, attributes, imports) no service code may use, and why.
FORBIDDEN_NAMES = {
    "send_keys": "WebDriver Element Send Keys attaches the host files a file input's value names",
    "SEND_KEYS_TO_ELEMENT": "the Element Send Keys command itself",
    "UPLOAD_FILE": "Selenium's upload of a host file to a Grid node",
    "LocalFileDetector": "makes send_keys upload host files to a Grid node",
    "file_detector_context": "swaps in another file detector",
}
# Commands (as string constants) no service code may send: each hands a page files or drag data.
FORBIDDEN_STRINGS = {
    "input.setFiles": "BiDi: sets a file input's files from host paths",
    "setFileInputFiles": "CDP DOM.setFileInputFiles: the same",
    "dispatchDragEvent": "CDP Input.dispatchDragEvent: a drag carrying host files",
    "setInterceptDrags": "CDP Input.setInterceptDrags",
    "/element/{id}/value": "the classic Element Send Keys endpoint",
}


# The upload action's module: it writes the client's bytes itself, then hands the page those files.
ALLOWED = {"service/clients/browser_upload.py": {"UPLOAD_FILE", "input.setFiles"}}


def offences(source: str, where: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        name = None
        if isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, ast.alias):
            name = node.name.rpartition(".")[2]
        if name in FORBIDDEN_NAMES:
            found.append(f"{where}:{node.lineno}: {name} ({FORBIDDEN_NAMES[name]})")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for text, why in FORBIDDEN_STRINGS.items():
                if text in node.value and not _docstring(node):
                    found.append(f"{where}:{node.lineno}: {text!r} ({why})")
    return found


def _docstring(node: ast.Constant) -> bool:
    return "\n" in node.value and " " in node.value.strip()  # prose, not a command name


def test_the_checker_finds_each_forbidden_use():
    sample = (
        "from selenium.webdriver.remote.file_detector import LocalFileDetector\n"
        "element.send_keys(path)\n"
        "driver.execute(Command.SEND_KEYS_TO_ELEMENT, {})\n"
        "driver.file_detector_context(LocalFileDetector)\n"
        "bidi.command('input.setFiles', {})\n"
        "cdp('DOM.setFileInputFiles')\n"
        "cdp('Input.dispatchDragEvent')\n"
    )
    found = offences(sample, "sample")
    for word in ("LocalFileDetector", "send_keys", "SEND_KEYS_TO_ELEMENT", "file_detector_context",
                 "input.setFiles", "setFileInputFiles", "dispatchDragEvent"):
        assert any(word in line for line in found), (word, found)


def test_service_code_never_sends_keys_to_an_element_nor_hands_a_page_files():
    files = sorted(SERVICE.rglob("*.py"))
    assert len(files) > 20, files
    found = []
    for path in files:
        where = str(path.relative_to(SERVICE.parent))
        allowed = ALLOWED.get(where, set())
        lines = offences(path.read_text(), where)
        found += [line for line in lines if not any(f": {word} (" in line or f": {word!r} (" in line for word in allowed)]
        for word in allowed:  # an allowance that nothing uses any more goes
            assert any(word in line for line in lines), f"{where} no longer uses {word}: drop it from ALLOWED"
    assert found == []
    assert all((SERVICE.parent / where).is_file() for where in ALLOWED)


# ------------------------------------------------------------------------------- file detectors


@pytest.fixture()
def no_session(monkeypatch):
    """Build real Selenium drivers without a browser: no driver process, no new-session call."""
    started: list[str] = []
    monkeypatch.setattr(WebDriver, "start_session", lambda self, caps: setattr(self, "session_id", "stub"))
    for service_class in (ChromeService, FirefoxService):
        monkeypatch.setattr(service_class, "start", lambda self: started.append(type(self).__module__))
    return started


def test_selenium_defaults_to_the_local_file_detector(no_session):
    """The control: left alone, Selenium installs the detector that reads host files."""
    driver = WebDriver(command_executor="http://127.0.0.1:9/wd/hub", options=ChromeOptions())
    assert isinstance(driver.file_detector, LocalFileDetector)


def test_a_grid_driver_never_has_the_local_file_detector(no_session):
    driver = browser_launch.new_driver("chrome", ChromeOptions(), None, "http://127.0.0.1:9/wd/hub", 5.0)
    assert type(driver.file_detector) is UselessFileDetector
    assert driver._is_remote  # the case where send_keys would upload through the detector


@pytest.mark.parametrize("kind", ["chrome", "firefox"])
def test_a_local_driver_never_has_the_local_file_detector(no_session, tmp_path, kind):
    fake_driver = tmp_path / "driver"
    fake_driver.write_text("")
    fake_driver.chmod(0o755)
    service = (ChromeService if kind == "chrome" else FirefoxService)(executable_path=str(fake_driver))
    options = ChromeOptions() if kind == "chrome" else FirefoxOptions()
    driver = browser_launch.new_driver(kind, options, service, None, 5.0)
    assert no_session, "the driver's service was not started: not the local path"
    assert type(driver.file_detector) is UselessFileDetector


# ------------------------------------------------------------------------------- typing


def test_key_actions_press_and_release_each_code_point():
    assert key_actions("aé") == [
        {"type": "keyDown", "value": "a"}, {"type": "keyUp", "value": "a"},
        {"type": "keyDown", "value": "é"}, {"type": "keyUp", "value": "é"},
    ]
    emoji = "👍🏽"  # two code points: typed one after the other, the field holds both
    assert [a["value"] for a in key_actions(emoji)] == ["👍", "👍", "🏽", "🏽"]
    assert key_actions("") == []


@pytest.mark.parametrize("text", ["a\nb", "a\r\nb", "a\rb"])
def test_a_line_break_is_one_enter(text):
    assert [a["value"] for a in key_actions(text) if a["type"] == "keyDown"] == ["a", ENTER, "b"]
