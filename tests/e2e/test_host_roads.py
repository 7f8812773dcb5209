"""No URL takes a session to the host's files: ``file:`` in every form, ``view-source:``, the
browsers' own pages, and the service's own files.

The service here allows private networks (as in development), so our network policy stands
aside and what is proven is the rest: the protocol's scheme rule, the navigation code's hop
check, and the browsers as we launch them (with our flags and preferences: a flag that opened
one of these roads would fail its test). A secret file with a random token is written to a
world-readable temp dir (its name and path do not contain the token). After each attempt
everything a client could read is gathered (the goto's reply, ``content``, and an ``evaluate``
that reads the page, its frames and its popup) and must hold no byte of it. Each road has its
control: the same mechanism aimed at a page of the test site carries that page's token back.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.site import Site
from tests.support.wsclient import Session

pytestmark = pytest.mark.clients("chrome", "firefox")

# Reads everything the page can reach, labelled: itself, its popup (after a bounded wait for
# ``window.__popup`` to load something other than about:blank), its frames, and the reads a test
# left in ``window.__reads`` (promises of text).
PROBE = """
return (async () => {
const seen = {href: location.href, page: document.documentElement.outerHTML, frames: [], reads: {}};
const popup = window.__popup;
if (popup) {
  await new Promise(done => {
    const until = Date.now() + 3000;
    (function look() {
      let ready = false;
      try { ready = popup.document.readyState === "complete" && popup.location.href !== "about:blank"; }
      catch (e) { ready = true; }  // another origin: it loaded something
      if (ready || Date.now() > until) done(); else setTimeout(look, 50);
    })();
  });
  try { seen.popup = popup.document.documentElement.outerHTML; } catch (e) { seen.popup = e.name; }
}
for (const frame of document.querySelectorAll("iframe")) {
  try { seen.frames.push(frame.contentDocument.documentElement.outerHTML); } catch (e) { seen.frames.push(e.name); }
}
for (const [name, read] of Object.entries(window.__reads || {})) seen.reads[name] = String(await read);
return seen;
})();
"""


@dataclass
class SecretFile:
    path: Path
    token: str

    @property
    def url(self) -> str:
        return self.path.as_uri()

    @property
    def jar_url(self) -> str:
        """The same page inside a zip file next to it, as Firefox's ``jar:`` names it."""
        return f"jar:{self.path.with_suffix('.zip').as_uri()}!/page.html"


@pytest.fixture(scope="module")
def secret_file() -> Iterator[SecretFile]:
    token = "SECRET-" + secrets.token_hex(16)
    folder = Path(tempfile.mkdtemp(prefix="inndx-roads-"))
    folder.chmod(0o755)  # readable by a browser running as another user too
    path = folder / f"host-file-{secrets.token_hex(6)}.html"
    path.write_text(f"<!doctype html><title>host file</title><p>{token}</p>\n")
    path.chmod(0o644)
    with zipfile.ZipFile(path.with_suffix(".zip"), "w") as archive:
        archive.writestr("page.html", path.read_text())
    path.with_suffix(".zip").chmod(0o644)
    yield SecretFile(path, token)
    shutil.rmtree(folder, ignore_errors=True)


def control_token() -> str:
    return "CONTROL-" + secrets.token_hex(8)


def decoded(reply: dict) -> str:
    """A reply as text, its base64 fields decoded."""
    parts = [json.dumps(reply)]
    for field in ("body", "content"):
        if isinstance(reply.get(field), str):
            parts.append(base64.b64decode(reply[field]).decode("utf-8", "replace"))
    return "\n".join(parts)


def probe(page: Session) -> dict:
    reply = page.request({"action": "evaluate", "script": PROBE}, timeout=60)
    assert reply.get("action") == "evaluated", reply
    return reply["result"]


def visible(page: Session, *replies: dict) -> str:
    """Everything a client can read now: the given replies, ``content``, and the PROBE."""
    seen = [decoded(reply) for reply in replies]
    seen.append(decoded(page.request({"action": "content"}, timeout=60)))
    seen.append(json.dumps(probe(page)))
    return "\n".join(seen)


def goto(page: Session, url: str) -> dict:
    return page.request({"action": "goto", "url": url}, timeout=60)


def on_site_page(page: Session, site: Site) -> None:
    reply = goto(page, site.url("/html?title=start"))
    assert reply.get("status_code") == 200, reply


def run(page: Session, script: str) -> dict:
    reply = page.request({"action": "evaluate", "script": script}, timeout=60)
    assert reply.get("action") == "evaluated", reply
    return reply


# ------------------------------------------------------------------------------- goto


@pytest.mark.clients("standard", "chrome", "firefox")
def test_goto_a_file_url_is_400_in_every_spelling(page: Session, secret_file: SecretFile, site: Site):
    path = secret_file.path.as_posix()
    for url in (secret_file.url, f"file://localhost{path}", f"file:{path}", f"FILE://{path}", f" file://{path}",
                f"view-source:{secret_file.url}", f"view-source:{site.url('/html')}", secret_file.jar_url):
        reply = goto(page, url)
        assert reply.get("type") == "error" and reply["code"] == 400, (url, reply)
        assert secret_file.token not in decoded(reply)
    control = goto(page, site.url("/html?title=allowed"))
    assert control.get("status_code") == 200, control


@pytest.mark.parametrize("url", [
    "chrome://version/", "chrome://settings/", "chrome://gpu", "about:config", "about:support", "about:profiles",
    "about:debugging", "resource://gre/greprefs.js", "moz-extension://0b9b0d1e-1111-4c4c-8d8d-000000000000/x",
    "chrome-extension://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/x", "devtools://devtools/bundled/inspector.html",
    "about:blank", "blob:http://127.0.0.1/x", "data:text/html,x", "javascript:1", "filesystem:http://127.0.0.1/x",
])
@pytest.mark.clients("standard", "chrome", "firefox")
def test_goto_a_browser_page_is_400(page: Session, url: str):
    reply = goto(page, url)
    assert reply.get("type") == "error" and reply["code"] == 400, (url, reply)


# ------------------------------------------------------------------------------- a page's navigations


@pytest.mark.clients("standard", "chrome", "firefox")
def test_a_server_redirect_to_a_file_url_never_loads_it(page: Session, site: Site, secret_file: SecretFile, client):
    token = control_token()
    control = goto(page, site.url(f"/redirect/302?to={quote('/html?title=' + token)}"))
    assert control.get("status_code") == 200 and token in decoded(control), control  # the mechanism is live
    for code in (301, 302, 303, 307, 308):
        reply = goto(page, site.url(f"/redirect/{code}?to={quote(secret_file.url)}"))
        # every client refuses the hop the same way: the server's fault, 502
        assert reply.get("type") == "error" and reply["code"] == 502, (code, reply)
        assert "invalid Location" in reply["message"], reply
        if client != "standard":
            assert secret_file.token not in visible(page, reply), code
        else:
            assert secret_file.token not in decoded(reply), code


TARGETS = ["{file}", "view-source:{file}", "view-source:{site}", "chrome://version/", "about:support", "about:config"]
# Firefox's own schemes (Chrome has none of them); jar: reads an entry of a zip file on disk
FIREFOX_TARGETS = ["resource://gre/greprefs.js", "chrome://browser/content/browser.xhtml", "{jar}"]


@pytest.mark.parametrize("endpoint", ["/meta-refresh", "/js-redirect", "/js-replace"])
def test_a_page_cannot_navigate_to_a_file_view_source_or_a_browser_page(page, site, secret_file, endpoint, client):
    """The page navigates itself while our goto watches (its settle window sees client hops)."""
    token = control_token()
    control = goto(page, site.url(f"{endpoint}?to={quote('/html?title=' + token)}"))
    assert token in visible(page, control), control  # the mechanism is live
    for target in TARGETS + (FIREFOX_TARGETS if client == "firefox" else []):
        url = target.format(file=secret_file.url, jar=secret_file.jar_url, site=site.url("/html"))
        reply = goto(page, site.url(f"{endpoint}?to={quote(url)}"))
        assert secret_file.token not in visible(page, reply), (url, reply)
        where = run(page, "return location.href")["result"]
        assert where.startswith("http://") or where.split("#")[0] == "about:blank", (url, where, reply)


# ------------------------------------------------------------------------------- reads from a page


def test_frames_popups_fetches_of_a_file_url_read_nothing(page, site, secret_file):
    """From an http page, by the page's own means and by ``evaluate``, ``file:`` and ``jar:file:``."""
    token = control_token()
    for target, expect in ((site.url(f"/html?title={token}"), token), (secret_file.url, None),
                           (secret_file.jar_url, None)):
        on_site_page(page, site)
        script = f"""
          return (async () => {{
            const url = {json.dumps(target)};
            const frame = document.createElement("iframe");
            const loaded = new Promise(done => {{ frame.onload = done; setTimeout(done, 3000); }});
            frame.src = url; document.body.appendChild(frame);
            try {{ window.__popup = window.open(url); }} catch (e) {{ window.__popup = null; }}  // Firefox: denied
            window.__reads = {{
              fetch: fetch(url).then(r => r.text(), e => "failed " + e.name),
              xhr: new Promise(done => {{
                try {{ const x = new XMLHttpRequest(); x.open("GET", url); x.onload = () => done(x.responseText);
                       x.onerror = () => done("failed"); x.send(); }} catch (e) {{ done("failed " + e.name); }}
              }}),
            }};
            await loaded;
            return 1;
          }})();
        """
        run(page, script)
        read = probe(page)
        seen = visible(page)
        run(page, "if (window.__popup) window.__popup.close(); return 1")
        if expect:  # each vector is live: the frame, the popup, fetch and XHR each read the page
            reached = [read.get("popup", ""), read["frames"][0], read["reads"]["fetch"], read["reads"]["xhr"]]
            assert all(expect in text for text in reached), read
        else:
            assert secret_file.token not in seen


def downloads_named(name: str) -> list[Path]:
    found = []
    for root in (Path.home() / "Downloads", Path(tempfile.gettempdir())):
        for folder, _, files in os.walk(root):
            found += [Path(folder) / f for f in files if name in f]
    return found


def test_a_download_link_to_a_file_url_fetches_nothing(page, site, secret_file):
    stem = secret_file.path.stem
    before = set(downloads_named(stem))
    token = control_token()
    on_site_page(page, site)
    site.clear()
    for href, name in ((f"/html?title={token}", f"control-{token}.html"), (secret_file.url, f"saved-{stem}.html")):
        script = f"""
            const a = document.createElement("a");
            a.href = {json.dumps(href)}; a.download = {json.dumps(name)}; a.textContent = "x";
            document.body.appendChild(a); a.click(); return 1;
        """
        run(page, script)
    seen = visible(page)
    assert secret_file.token not in seen
    assert site.requests_to("/html"), "the control download never reached the site"
    assert set(downloads_named(stem)) == before
