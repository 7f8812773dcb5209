"""The ``har`` action end to end on every client: the archive lists what the test site's own log
saw (a redirect's two hops, a script's fetch), with statuses, headers and valid timings; each
``har`` holds only what came after the last one; a request the network policy refused is in it
with the refusal, word for word; bodies (``INNDX_HAR_BODY_BYTES``) are given on every client,
cut to the bound: in a browser, the page's own document, its sub-resources and a script's
fetches, text and binary, each exactly the site's bytes (read back from the site); with the
default 0, no entry carries a body. A browser's gotos and its archive read bodies through two
collectors, and neither takes the other's: every goto's body is whole, across fresh tabs too.

The service here allows the test site's port only (a rule for ``127.0.0.1:<port>``): a page's
fetch of ``localhost:<another port>`` is refused by the egress gateway, a goto of it by the
policy. Every URL of a test carries a token of its own, so requests of other modules' pages
that may still reach the shared site are never counted.
"""

from __future__ import annotations

import base64
import json
import secrets
import urllib.request
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest

from tests.e2e.conftest import service_env
from tests.support.ports import free_port
from tests.support.service import Service
from tests.support.site import Site, big_body
from tests.support.wsclient import Session, close_all, connect

BODY_BYTES = 64
TAB_GOTOS = 2  # a browser session moves to a fresh tab (and its bodies to a fresh collector) often


@pytest.fixture(scope="module")
def refused_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def archiving(grid, logs, site: Site) -> Iterator[Service]:
    env = service_env(grid, INNDX_NETWORK_ALLOW=f"127.0.0.1:{site.port}", INNDX_HAR_BODY_BYTES=str(BODY_BYTES),
                      INNDX_TAB_GOTOS=str(TAB_GOTOS))
    with Service(env=env, log_dir=logs, private_networks=False) as running:
        yield running


@pytest.fixture(scope="module")
def session(archiving: Service, client: str) -> Iterator[Session]:
    opened = connect(archiving.ws_url)
    opened.open(client=client, timeout="20s", max_retries=0, recv_timeout=60)
    yield opened
    opened.request({"action": "close"}, timeout=30)
    opened.close()


def har(session: Session) -> list[dict]:
    reply = session.request({"action": "har"}, timeout=30)
    assert reply.get("action") == "har", reply
    log = reply["har"]["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] == "inndx", log
    return log["entries"]


def target(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def fetch(session: Session, url: str) -> str:
    script = f"return fetch({json.dumps(url)}).then(r => 'answered ' + r.status, e => 'failed');"
    reply = session.request({"action": "evaluate", "script": script}, timeout=60)
    assert reply.get("action") == "evaluated", reply
    return reply["result"]


def test_the_archive_lists_what_the_site_saw(session: Session, site: Site, client: str):
    token = secrets.token_hex(4)
    har(session)  # what came before this test
    page = f"/html?title=har-{token}"
    reply = session.request({"action": "goto", "url": site.url(f"/redirect/302?to={quote(page, safe='')}")}, timeout=60)
    assert reply.get("status_code") == 200, reply
    if client != "standard":
        assert fetch(session, f"/json?har={token}") == "answered 200"
    entries = [e for e in har(session) if token in e["request"]["url"]]
    seen = sorted((r["method"], r["target"]) for r in site.requests if token in r["target"])
    assert sorted((e["request"]["method"], target(e["request"]["url"])) for e in entries) == seen
    assert len(seen) == (2 if client == "standard" else 3), seen
    by_path = {urlsplit(e["request"]["url"]).path: e for e in entries}
    hop, landed = by_path["/redirect/302"], by_path["/html"]
    assert hop["response"]["status"] == 302 and hop["response"]["redirectURL"] == page, hop
    assert {"name": "hop302", "value": "1"} in hop["response"]["cookies"], hop
    assert landed["response"]["status"] == 200 and landed["response"]["content"]["mimeType"].startswith("text/html")
    assert hop["startedDateTime"] <= landed["startedDateTime"]
    assert ["title", f"har-{token}"] in [[q["name"], q["value"]] for q in landed["request"]["queryString"]]
    assert any(h["name"].lower() == "user-agent" for h in landed["request"]["headers"]), landed
    for entry in entries:
        assert "_error" not in entry and "_refusal" not in entry, entry
        assert entry["time"] >= 0 and entry["timings"]["wait"] >= 0, entry
    if client != "standard":
        fetched = by_path["/json"]
        assert fetched["response"]["status"] == 200, fetched
        assert fetched["response"]["content"]["mimeType"].startswith("application/json"), fetched


def test_each_har_holds_only_what_came_after_the_last(session: Session, site: Site):
    token = secrets.token_hex(4)
    session.request({"action": "goto", "url": site.url(f"/html?title=first-{token}")}, timeout=60)
    assert [target(e["request"]["url"]) for e in har(session) if token in e["request"]["url"]] == [
        f"/html?title=first-{token}"
    ]
    assert [e for e in har(session) if token in e["request"]["url"]] == []
    session.request({"action": "goto", "url": site.url(f"/html?title=second-{token}")}, timeout=60)
    assert [target(e["request"]["url"]) for e in har(session) if token in e["request"]["url"]] == [
        f"/html?title=second-{token}"
    ]


def test_a_refused_request_is_in_the_archive_with_its_refusal(session: Session, site: Site, client: str,
                                                                refused_port: int):
    token = secrets.token_hex(4)
    refused = f"http://localhost:{refused_port}/refused?har={token}"
    if client == "standard":
        reply = session.request({"action": "goto", "url": refused}, timeout=60)
        assert reply.get("type") == "error" and reply["code"] == 403, reply
        said = reply["message"]
    else:
        assert session.request({"action": "goto", "url": site.url("/html")}, timeout=60).get("status_code") == 200
        fetch(session, refused)
        said = f"localhost:{refused_port} is blocked by the network policy"
    entries = [e for e in har(session) if token in e["request"]["url"]]
    assert [e["request"]["url"] for e in entries] == [refused], entries
    assert said in entries[0]["_refusal"], entries[0]
    assert "127.0.0.1" not in entries[0]["_refusal"]  # the host named, never the address it resolved to
    if client == "standard":  # nothing was sent: no answer, and why
        assert entries[0]["response"]["status"] == 0 and entries[0]["_error"] == said, entries[0]
    assert not site.requests_to("/refused")


def test_bodies_are_kept_up_to_the_bound(session: Session, site: Site):
    token = secrets.token_hex(4)
    session.request({"action": "goto", "url": site.url(f"/json?har={token}")}, timeout=60)
    session.request({"action": "goto", "url": site.url(f"/big?bytes=1000&har={token}")}, timeout=60)
    small, big = (e["response"]["content"] for e in har(session) if token in e["request"]["url"])
    assert json.loads(base64.b64decode(small["text"])) == {"hello": "world", "n": 1}, small
    assert small["encoding"] == "base64" and "_truncated" not in small
    assert big["size"] == 1000 and len(base64.b64decode(big["text"])) == BODY_BYTES and big["_truncated"] is True


def site_bytes(url: str) -> bytes:
    """What the site sends for ``url`` (no content coding asked for: the bytes a browser decodes)."""
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - the local test site
        return answer.read()


@pytest.mark.clients("chrome", "firefox")
def test_a_page_s_document_sub_resources_and_fetches_carry_their_bytes(session: Session, site: Site, client: str):
    token = secrets.token_hex(4)
    har(session)  # what came before this test
    reply = session.request({"action": "goto", "url": site.url(f"/resources?har={token}")}, timeout=60)
    assert reply.get("status_code") == 200, reply
    script = (
        f"return Promise.all([fetch('/big?bytes=1000&har={token}').then(r => r.text()),"
        f" fetch('/binary?har={token}').then(r => r.arrayBuffer())]).then(() => 'read');"
    )
    assert session.request({"action": "evaluate", "script": script}, timeout=60).get("result") == "read"
    entries = [e for e in har(session) if urlsplit(e["request"]["url"]).port == site.port]
    wanted = {f"/resources?har={token}", "/asset/style.css", "/asset/app.js", "/asset/pic.png",
              f"/big?bytes=1000&har={token}", f"/binary?har={token}"}
    assert wanted | {"/asset/data.json"} <= {target(e["request"]["url"]) for e in entries}, entries
    # A URL may be requested twice (Firefox's image loader, on the Grid): one of them has the body.
    # The page's own fetch of /asset/data.json never reads its body: Chrome never completes it.
    with_bodies = {target(e["request"]["url"]): e["response"]["content"] for e in entries
                   if "text" in e["response"]["content"]}
    assert wanted | ({"/asset/data.json"} if client == "firefox" else set()) <= set(with_bodies), sorted(with_bodies)
    for entry in entries:
        content, path = entry["response"]["content"], target(entry["request"]["url"])
        if "text" not in content:
            continue
        sent = site_bytes(site.url(path))
        assert content["encoding"] == "base64", (path, content)
        assert base64.b64decode(content["text"]) == sent[:BODY_BYTES], path
        assert content.get("_truncated", False) is (len(sent) > BODY_BYTES), (path, content)
        assert content["size"] == len(sent), (path, content)
    assert base64.b64decode(with_bodies["/asset/pic.png"]["text"]).startswith(b"\x89PNG")  # binary, not UTF-8
    assert "_truncated" not in with_bodies["/asset/style.css"]  # 17 bytes: whole
    assert with_bodies[f"/big?bytes=1000&har={token}"]["_truncated"] is True


def test_without_a_bound_no_entry_carries_a_body(service: Service, site: Site, client: str):
    """The default ``INNDX_HAR_BODY_BYTES`` (0): no body, whatever the page loaded. Its session is
    its own and ends with the test: on a Grid of 3 slots, this module's two archiving sessions
    are held meanwhile."""
    page = connect(service.ws_url)
    page.open(client=client, timeout="20s", max_retries=0, recv_timeout=60)
    try:
        _no_bodies(page, site)
    finally:
        close_all([page])


def _no_bodies(page: Session, site: Site) -> None:
    token = secrets.token_hex(4)
    page.request({"action": "har"}, timeout=30)
    reply = page.request({"action": "goto", "url": site.url(f"/resources?har={token}")}, timeout=60)
    assert reply.get("status_code") == 200, reply
    entries = har(page)
    assert any(token in e["request"]["url"] for e in entries), entries
    assert [e["request"]["url"] for e in entries if "text" in e["response"]["content"]] == []


@pytest.mark.clients("chrome", "firefox")
def test_gotos_and_the_archive_each_get_their_bodies_across_fresh_tabs(session: Session, site: Site):
    token = secrets.token_hex(4)
    har(session)
    sent = big_body(200)
    for round_ in range(2):
        for n in range(TAB_GOTOS + 1):  # at least one move to a fresh tab in each round
            reply = session.request({"action": "goto", "url": site.url(f"/big?bytes=200&har={token}&n={round_}{n}")},
                                    timeout=60)
            assert base64.b64decode(reply["body"]) == sent, reply
        entries = [e for e in har(session) if token in e["request"]["url"]]
        assert len(entries) == TAB_GOTOS + 1, entries
        for entry in entries:  # a closed tab's too: read before the tab closed (Chrome's go with it)
            content = entry["response"]["content"]
            assert "text" in content, entry
            assert base64.b64decode(content["text"]) == sent[:BODY_BYTES] and content["_truncated"] is True


@pytest.mark.clients("chrome", "firefox")
def test_a_page_cannot_make_the_browser_hold_more_than_the_bounds(session: Session, site: Site):
    """Over a thousand responses and one over the cap: the oldest bodies are let go of (at most
    1,000 held, ``har.MAX_HELD``), the huge one is never read, and the archive is still whole."""
    token = secrets.token_hex(4)
    har(session)
    assert session.request({"action": "goto", "url": site.url(f"/html?har={token}")}, timeout=60).get("status_code") == 200
    huge = 6 * 1024 * 1024
    script = (
        f"const urls = ['/big?bytes={huge}&har={token}'];"
        f" for (let i = 0; i < 1100; i++) urls.push('/json?har={token}&i=' + i);"
        " return Promise.all(urls.map(u => fetch(u).then(r => r.arrayBuffer()))).then(() => 'read');"
    )
    assert session.request({"action": "evaluate", "script": script}, timeout=120).get("result") == "read"
    entries = [e for e in har(session) if token in e["request"]["url"]]
    assert len(entries) == 1102, len(entries)
    with_bodies = [e for e in entries if "text" in e["response"]["content"]]
    assert 0 < len(with_bodies) <= 1000, len(with_bodies)
    assert all(base64.b64decode(e["response"]["content"]["text"]) == b'{"hello": "world", "n": 1}'
               for e in with_bodies if "/json" in e["request"]["url"]), with_bodies[:3]
    (big,) = [e for e in entries if "/big" in e["request"]["url"]]
    assert big["response"]["status"] == 200 and "text" not in big["response"]["content"], big["response"]
