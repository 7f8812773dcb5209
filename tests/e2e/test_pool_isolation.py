"""Two pooled sessions on the same site see nothing of each other: a cookie, localStorage,
IndexedDB, an HTTP cache entry and an HTTP auth entry set in one are absent in the other.

Every check runs in the session that set the state too (the control), so that a check that could
not see the state at all fails the test instead of passing it. The site is this module's own (the
shared test site answers ``no-store`` to everything): ``/`` a page, ``/cached`` cacheable for an
hour, ``/auth`` HTTP Basic (``u``/``p``).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.test_pool import pool_env, wait_idle
from tests.support.wsclient import connect

pytestmark = [pytest.mark.clients("chrome", "firefox"), pytest.mark.local_only]

GOOD = "Basic " + base64.b64encode(b"u:p").decode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/cached":
            self.server.cached_hits += 1  # type: ignore[attr-defined]
            self._send(200, b"cached", [("Cache-Control", "max-age=3600"), ("Content-Type", "text/plain")])
        elif self.path == "/auth":
            if self.headers.get("Authorization") == GOOD:
                self._send(200, b"in", [("Content-Type", "text/plain"), ("Cache-Control", "no-store")])
            else:
                self._send(401, b"no", [("WWW-Authenticate", 'Basic realm="iso"'), ("Cache-Control", "no-store")])
        else:
            page = b"<!doctype html><html><head><title>Iso</title></head><body>iso</body></html>"
            self._send(200, page, [("Content-Type", "text/html"), ("Cache-Control", "no-store")])

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def iso_site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.cached_hits = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


SET_STATE = """return (async () => {
document.cookie = "iso=1; path=/; max-age=3600";
localStorage.setItem("iso", "1");
await new Promise((ok, fail) => {
  const open = indexedDB.open("iso", 1);
  open.onupgradeneeded = () => open.result.createObjectStore("s");
  open.onsuccess = () => {
    const tx = open.result.transaction("s", "readwrite");
    tx.objectStore("s").put("1", "k");
    tx.oncomplete = () => { open.result.close(); ok(); };
    tx.onerror = () => fail(tx.error);
  };
  open.onerror = () => fail(open.error);
});
await (await fetch("/cached")).text();
const xhr = new XMLHttpRequest();
xhr.open("GET", "/auth", false, "u", "p");
xhr.send();
return xhr.status;
})();"""

READ_STATE = """return (async () => {
const names = (await indexedDB.databases()).map(d => d.name);
let cached;
try {
  const r = await fetch("/cached", {cache: "only-if-cached", mode: "same-origin"});
  cached = r.ok;
} catch (e) { cached = false; }
const xhr = new XMLHttpRequest();
xhr.open("GET", "/auth", false);
xhr.send();
return {cookie: document.cookie.includes("iso=1"), local: localStorage.getItem("iso") === "1",
        indexeddb: names.includes("iso"), cache: cached, auth: xhr.status === 200};
})();"""


def test_two_pooled_sessions_on_one_site_share_nothing(client, start_service, iso_site: str):
    svc = start_service(**pool_env(client, 2, INNDX_POOL_LAUNCHES="2"))
    wait_idle(svc, client, 2)
    with connect(svc.ws_url) as first, connect(svc.ws_url) as second:
        first.open(client=client, timeout="20s", recv_timeout=30)
        second.open(client=client, timeout="20s", recv_timeout=30)
        for session in (first, second):
            reply = session.request({"action": "goto", "url": iso_site + "/"}, timeout=30)
            assert reply.get("status_code") == 200, reply
        reply = first.request({"action": "evaluate", "script": SET_STATE}, timeout=30)
        assert reply.get("result") == 200, reply  # the credentials were accepted
        mine = first.request({"action": "evaluate", "script": READ_STATE}, timeout=30)
        assert mine.get("result") == {"cookie": True, "local": True, "indexeddb": True, "cache": True, "auth": True}, (
            "the control: the session that set the state sees all of it",
            mine,
        )
        theirs = second.request({"action": "evaluate", "script": READ_STATE}, timeout=30)
        assert theirs.get("result") == {
            "cookie": False,
            "local": False,
            "indexeddb": False,
            "cache": False,
            "auth": False,
        }, theirs
        for session in (first, second):
            assert session.request({"action": "close"}, timeout=15) == {"action": "closed"}
