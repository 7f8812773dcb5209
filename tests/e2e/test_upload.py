"""upload: the client's bytes reach a page's file input, and a form posts them, in Chrome and
Firefox, locally and on a Grid (``--grid``); the test site (``/actions/upload``, then
``/actions/uploaded``) reads the multipart body and answers each part's name, size and sha256.

Locally the files live in a fresh dir of the session's own temp dir and go with it; the module's
service runs with a ``TMPDIR`` of its own, so the session's temp dir is the one that appeared when
it opened, and nothing may be written anywhere else below that root. Its upload bound is small
(``BOUND``) so that the 413 is cheap. Every error leaves the session usable.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from service.clients.browser_process import TEMP_PREFIX, owned_by
from service.clients.browser_upload import DIR_PREFIX
from tests.e2e.conftest import service_env
from tests.support.ports import scaled, wait_for
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import Session, connect

pytestmark = pytest.mark.clients("chrome", "firefox")

BOUND = 64 * 1024  # INNDX_MAX_UPLOAD_BYTES of the module's service


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="up-"))  # short: Chrome's singleton socket lives below it
    base.chmod(0o711)  # the browser user (the service is root here) reaches its dirs below it
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def upload_service(grid, logs: Path, root: Path) -> Iterator[Service]:
    env = service_env(grid, TMPDIR=str(root), INNDX_MAX_UPLOAD_BYTES=str(BOUND))
    with Service(env=env, log_dir=logs) as running:
        yield running


def temp_dirs(root: Path) -> set[Path]:
    return {path for path in root.iterdir() if path.name.startswith(TEMP_PREFIX)}


class Opened:
    def __init__(self, session: Session, temp_dir: Path | None):
        self.session, self.temp_dir = session, temp_dir

    def uploads(self) -> list[Path]:
        assert self.temp_dir is not None
        return sorted(p for p in self.temp_dir.iterdir() if p.name.startswith(DIR_PREFIX))


def _open(service: Service, root: Path, grid, client: str) -> Opened:
    session = connect(service.ws_url)
    before = temp_dirs(root)
    session.open(client=client, timeout="15s", max_retries=0)
    if grid is not None:
        return Opened(session, None)
    new = temp_dirs(root) - before
    assert len(new) == 1, f"one new browser temp dir expected, found {new}"
    return Opened(session, new.pop())


def _close(session: Session) -> None:
    if session.close_code is None:
        try:
            assert session.request({"action": "close"}, timeout=20)["action"] == "closed"
        finally:
            session.close()


@pytest.fixture(scope="module")
def opened(upload_service: Service, root: Path, grid, client: str) -> Iterator[Opened]:
    """One session per browser kind for the module."""
    one = _open(upload_service, root, grid, client)
    yield one
    _close(one.session)


def file(name: str, content: bytes, mime_type: str | None = "application/octet-stream") -> dict[str, Any]:
    entry = {"name": name, "content": base64.b64encode(content).decode("ascii")}
    if mime_type is not None:
        entry["mime_type"] = mime_type
    return entry


def act(session: Session, frame: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    return session.request(frame, timeout=timeout)


def error(session: Session, frame: dict[str, Any], code: int) -> dict[str, Any]:
    reply = act(session, frame)
    assert reply.get("type") == "error" and reply["code"] == code, reply
    return reply


def still_usable(session: Session) -> None:
    reply = act(session, {"action": "evaluate", "script": "return 6 * 7"})
    assert reply["action"] == "evaluated" and reply["result"] == 42, reply


def upload_page(session: Session, site: Site) -> None:
    reply = act(session, {"action": "goto", "url": site.url("/actions/upload")})
    assert reply["action"] == "goto" and reply["status_code"] == 200, reply


def picked(session: Session) -> list:
    return act(session, {"action": "evaluate", "script": "return window.picked"})["result"]


def post(session: Session) -> list[dict[str, Any]]:
    """Send the form; the file parts the site read (fields without a file left out)."""
    assert act(session, {"action": "click", "selector": "#send"}) == {"action": "clicked"}
    return parts_shown(session)


def running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (a pid taken again by another process is not; a zombie is not)."""
    found = []
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------- the happy road


def test_a_form_posts_the_uploaded_files_bytes_and_names(opened: Opened, site: Site):
    session = opened.session
    upload_page(session, site)
    one = bytes(range(256)) * 40 + b"\r\n--not-a-boundary\r\n\x00end"  # every byte value, CRLFs, a NUL
    two, three = os.urandom(3000), b"plain text\n"
    reply = act(session, {"action": "upload", "id": "u1", "selector": "#f", "files": [file("a.bin", one)]})
    assert reply == {"action": "uploaded", "id": "u1"}, reply
    frame = {"action": "upload", "selector": "#many",
             "files": [file("b.txt", two, "text/plain"), file("b.txt", three, None), file("Zoë ✓.txt", b"z")]}
    assert act(session, frame) == {"action": "uploaded"}
    assert picked(session) == [["f", ["a.bin"], [len(one)]], ["many", ["b.txt", "b (2).txt", "Zoë ✓.txt"], [3000, 11, 1]]]
    if opened.temp_dir is not None:  # local: each upload in a dir of its own, inside the session's temp dir
        dirs = opened.uploads()
        assert len(dirs) >= 2 and all(d.stat().st_mode & 0o777 == 0o700 for d in dirs), dirs
    parts = post(session)
    assert [(p["field"], p["filename"], p["size"], p["sha256"]) for p in parts] == [
        ("f", "a.bin", len(one), digest(one)),
        ("many", "b.txt", 3000, digest(two)),
        ("many", "b (2).txt", 11, digest(three)),
        ("many", "Zoë ✓.txt", 1, digest(b"z")),
    ]


def seen(session: Session) -> list:
    """Each input and change event a file input got: [type, id, isTrusted, [types its files had then]]."""
    return act(session, {"action": "evaluate", "script": "return window.seen"})["result"]


def types_now(session: Session, selector: str) -> list[str]:
    script = f"return Array.from(document.querySelector({json.dumps(selector)}).files, f => f.type)"
    return act(session, {"action": "evaluate", "script": script})["result"]


def parts_shown(session: Session) -> list[dict[str, Any]]:
    text = base64.b64decode(act(session, {"action": "content"})["content"]).decode()
    found = re.search(r'<pre id="parts">(.*?)</pre>', text, re.S)
    assert found, text[:500]
    return [part for part in json.loads(html.unescape(found.group(1))) if part.get("filename")]


def test_the_page_and_the_form_see_the_given_mime_type(opened: Opened, site: Site):
    """The page's File.type and the multipart part's Content-Type are the frame's mime_type,
    whatever the name's extension says, from the first event on: one trusted input and one
    trusted change per upload, as a person's pick gives. A file without one keeps the browser's
    type (its extension's); a media type arrives in lower case, as a File keeps it."""
    session = opened.session
    upload_page(session, site)
    data, png, csv = b"not text at all\x00", b"\x89PNG\r\n\x1a\n" + os.urandom(2000), b"a,b\n1,2\n"
    frame = {"action": "upload", "selector": "#f", "files": [file("data.txt", data, "application/x-inndx-test")]}
    assert act(session, frame) == {"action": "uploaded"}
    frame = {"action": "upload", "selector": "#many",
             "files": [file("a.bin", png, "image/png"), file("c.png", b"c", None), file("d.dat", csv, "Text/CSV")]}
    assert act(session, frame) == {"action": "uploaded"}
    assert seen(session) == [
        ["input", "f", True, ["application/x-inndx-test"]],
        ["change", "f", True, ["application/x-inndx-test"]],
        ["input", "many", True, ["image/png", "image/png", "text/csv"]],
        ["change", "many", True, ["image/png", "image/png", "text/csv"]],
    ]
    assert picked(session) == [["f", ["data.txt"], [len(data)]], ["many", ["a.bin", "c.png", "d.dat"], [len(png), 1, len(csv)]]]
    assert types_now(session, "#f") == ["application/x-inndx-test"]
    assert [(p["field"], p["filename"], p["content_type"], p["size"], p["sha256"]) for p in post(session)] == [
        ("f", "data.txt", "application/x-inndx-test", len(data), digest(data)),
        ("many", "a.bin", "image/png", len(png), digest(png)),
        ("many", "c.png", "image/png", 1, digest(b"c")),
        ("many", "d.dat", "text/csv", len(csv), digest(csv)),
    ]


def test_without_a_mime_type_the_browser_types_the_file_as_before(opened: Opened, site: Site):
    """No mime_type: the browser's own type (by the extension). An upload with one first, to the
    same input: nothing of it stays behind to retype the next."""
    session = opened.session
    upload_page(session, site)
    for one in (file("x.txt", b"x", "image/gif"), file("y.txt", b"yy", None)):
        assert act(session, {"action": "upload", "selector": "#f", "files": [one]}) == {"action": "uploaded"}
    assert seen(session) == [
        ["input", "f", True, ["image/gif"]], ["change", "f", True, ["image/gif"]],
        ["input", "f", True, ["text/plain"]], ["change", "f", True, ["text/plain"]],
    ]
    assert [(p["filename"], p["content_type"], p["size"]) for p in post(session)] == [("y.txt", "text/plain", 2)]


def test_a_form_sent_by_its_change_listener_carries_the_mime_type(opened: Opened, site: Site):
    """The page leaves in the middle of the upload (its change listener sends the form): the part
    is typed already, and the session goes on."""
    session = opened.session
    upload_page(session, site)
    frame = {"action": "upload", "selector": "#auto", "files": [file("report.txt", b"r" * 100, "application/x-inndx-test")]}
    assert act(session, frame) == {"action": "uploaded"}
    waited = act(session, {"action": "wait_for", "selector": "#parts", "timeout": "10s"})
    assert waited["action"] == "waited", waited
    assert [(p["field"], p["filename"], p["content_type"], p["sha256"]) for p in parts_shown(session)] == [
        ("auto", "report.txt", "application/x-inndx-test", digest(b"r" * 100))
    ]
    still_usable(session)


def test_a_page_that_stops_the_input_event_before_us_still_gets_the_type_after_it(opened: Opened, site: Site):
    """The one limit: a capturing input listener on the page's window, added before the upload,
    runs before ours. This one stops the event, so ours never runs: the page's listeners saw the
    extension's type, and the files are retyped once setFiles is done, for the form to post."""
    session = opened.session
    reply = act(session, {"action": "goto", "url": site.url("/actions/upload?stop=1")})
    assert reply["action"] == "goto" and reply["status_code"] == 200, reply
    frame = {"action": "upload", "selector": "#f", "files": [file("data.txt", b"d", "application/x-inndx-test")]}
    assert act(session, frame) == {"action": "uploaded"}
    assert seen(session) == [["change", "f", True, ["text/plain"]]]  # its input never reached the element
    assert types_now(session, "#f") == ["application/x-inndx-test"]
    assert [(p["filename"], p["content_type"]) for p in post(session)] == [("data.txt", "application/x-inndx-test")]


def test_a_hidden_file_input_takes_files_too(opened: Opened, site: Site):
    """Pages hide their file input behind a styled label or button: it still takes an upload."""
    session = opened.session
    upload_page(session, site)
    assert act(session, {"action": "upload", "selector": "#hidden", "files": [file("h.txt", b"hidden")]}) == {
        "action": "uploaded"
    }
    assert picked(session) == [["hidden", ["h.txt"], [6]]]
    assert [(p["field"], p["filename"], p["sha256"]) for p in post(session)] == [("hidden", "h.txt", digest(b"hidden"))]


def test_an_empty_file_arrives_as_an_empty_file(opened: Opened, site: Site):
    session = opened.session
    upload_page(session, site)
    assert act(session, {"action": "upload", "selector": "#f", "files": [file("empty.txt", b"", "text/plain")]}) == {
        "action": "uploaded"
    }
    assert picked(session) == [["f", ["empty.txt"], [0]]]
    assert [(p["filename"], p["size"], p["sha256"]) for p in post(session)] == [("empty.txt", 0, digest(b""))]


def test_names_with_paths_are_cut_to_a_safe_base_name(opened: Opened, site: Site):
    session = opened.session
    upload_page(session, site)
    unique = f"escape-{uuid.uuid4().hex}.txt"  # a name that exists nowhere before
    names = [f"../../{unique}", "a/b/c.txt", "..", "x\\..\\y.txt", "/", "n\u0000ul.txt", f"{'../' * 12}{unique}"]
    dirs_before = opened.uploads() if opened.temp_dir is not None else []
    frame = {"action": "upload", "selector": "#many", "files": [file(name, name.encode()) for name in names]}
    assert act(session, frame) == {"action": "uploaded"}
    safe = [unique, "c.txt", "file", "y.txt", "file (2)", "nul.txt", f"{unique[:-4]} (2).txt"]
    assert picked(session) == [["many", safe, [len(name.encode()) for name in names]]]
    if opened.temp_dir is not None:  # the new upload dir holds exactly the safe names, and no name escaped it
        [folder] = [d for d in opened.uploads() if d not in dirs_before]
        assert sorted(p.name for p in folder.iterdir()) == sorted(safe)
        assert not any(p.is_symlink() for p in folder.iterdir())
        assert [a for a in folder.parents if (a / unique).exists()] == []  # ../ at every depth, up to /
    assert [p["filename"] for p in post(session)] == safe


def test_a_large_file_under_the_default_bound_arrives_whole(service: Service, site: Site, client: str):
    """The service's defaults (16 MiB of files, 16 MiB frames): 10 MiB, 13.3 MiB as base64."""
    session = connect(service.ws_url)
    try:
        session.open(client=client, timeout="60s", max_retries=0)
        upload_page(session, site)
        data = os.urandom(10 * 1024 * 1024)
        reply = act(session, {"action": "upload", "selector": "#f", "files": [file("big.bin", data)]}, timeout=90)
        assert reply == {"action": "uploaded"}, reply
        assert [(p["filename"], p["size"], p["sha256"]) for p in post(session)] == [("big.bin", len(data), digest(data))]
    finally:
        _close(session)


# ------------------------------------------------------------------------------- hostile cases


def test_an_upload_over_the_bound_is_413_and_the_session_goes_on(opened: Opened, site: Site):
    session = opened.session
    upload_page(session, site)
    dirs_before = opened.uploads() if opened.temp_dir is not None else []
    half = BOUND // 2 + 1
    reply = error(session, {"action": "upload", "id": "big", "selector": "#many",
                            "files": [file("a", b"a" * half), file("b", b"b" * half)]}, 413)
    assert reply["id"] == "big" and "INNDX_MAX_UPLOAD_BYTES" in reply["message"] and str(BOUND) in reply["message"], reply
    if opened.temp_dir is not None:
        assert opened.uploads() == dirs_before  # refused before anything was written
    assert picked(session) == []
    exact = {"action": "upload", "selector": "#f", "files": [file("exact.bin", b"x" * BOUND)]}
    assert act(session, exact) == {"action": "uploaded"}  # the bound itself is allowed
    still_usable(session)


@pytest.mark.parametrize(
    "frame, code, words",
    [
        ({"selector": "#t"}, 400, "<input type=text>, not an <input type=file>"),
        ({"selector": "#plain"}, 400, "<div>, not an <input type=file>"),
        ({"selector": "#f", "files": [file("a", b"a"), file("b", b"b")]}, 400, "not multiple"),
        ({"selector": "#f", "files": [{"name": "a", "content": "!!not base64"}]}, 400, "$.files[0].content"),
        ({"selector": "#off"}, 409, "disabled"),
        ({"selector": "[["}, 400, "invalid CSS selector"),
        ({"selector": "#nope", "timeout": "1s"}, 404, "no element matches"),
        ({"selector": "#f", "files": [{"name": "a", "content": "", "path": "/etc/passwd"}]}, 400, "$.files[0]"),
    ],
    ids=["text-input", "div", "two-for-single", "bad-base64", "disabled", "bad-selector", "missing", "path-field"],
)
def test_refused_uploads_are_errors_and_the_session_goes_on(opened: Opened, site: Site, frame, code, words):
    session = opened.session
    upload_page(session, site)
    reply = error(session, {"action": "upload", "files": [file("a.txt", b"a")], **frame}, code)
    assert words in reply["message"], reply
    assert picked(session) == []
    still_usable(session)


def test_click_and_fill_on_a_file_input_name_the_upload_action(opened: Opened, site: Site):
    session = opened.session
    upload_page(session, site)
    for frame in ({"action": "click", "selector": "#f"}, {"action": "fill", "selector": "#f", "value": "/etc/passwd"}):
        assert "upload action" in error(session, frame, 400)["message"]
    assert picked(session) == []


# ------------------------------------------------------------------------------- lifetime


@pytest.mark.local_only
def test_the_upload_dir_and_every_process_go_with_the_session(
    upload_service: Service, root: Path, grid, client: str, site: Site
):
    one = _open(upload_service, root, grid, client)
    assert one.temp_dir is not None
    try:
        upload_page(one.session, site)
        assert act(one.session, {"action": "upload", "selector": "#f", "files": [file("keep.txt", b"k")]})["action"] == "uploaded"
        [folder] = one.uploads()
        assert (folder / "keep.txt").read_bytes() == b"k"
        processes = owned_by(lambda env: env.get("TMPDIR") == str(one.temp_dir))  # the session's driver and browser
        assert processes, "the session's browser processes were not found"
    finally:
        _close(one.session)
    wait_for(lambda: not one.temp_dir.exists(), scaled(10), what="the session's temp dir (and its uploads) removed")
    assert not folder.exists()
    wait_for(lambda: not running(processes), scaled(10), what="the session's processes ended")
