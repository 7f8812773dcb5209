"""The Python clients (sdk/python, ``inndx``) and the CLI against the real service, for every kind.

Every test that connects runs for both clients (``api``): the sync one (``inndx.connect``) and the
asyncio one (``inndx.aio.connect``, driven on an event loop of its own through a blocking view,
tests/support/aio_blocking.py), with the same assertions. One session per (module, client, kind);
the few tests that need a session of their own (a short timeout, a closed session, a tenants
file) open it on the cheap standard client.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import inndx
import pytest

from tests.support.aio_blocking import AioLoop
from tests.support.ports import scaled, wait_for
from tests.support.service import Service
from tests.support.site import COOKIES_SET, PNG_BYTES, Site
from tests.support.wsclient import validate_frame

TENANT = "sdk"
SDK_SOURCE = Path(__file__).resolve().parents[2] / "sdk" / "python" / "src"

# the client is the same over a Grid: the grid env's time goes to the browser cases themselves
pytestmark = pytest.mark.local_only


@pytest.fixture(scope="module", params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> Iterator[Callable[..., inndx.Session]]:
    """The client under test's ``connect``: the sync one, or the asyncio one seen through a blocking view."""
    if request.param == "sync":
        yield inndx.connect
        return
    with AioLoop() as loop:
        yield loop.connect


class _Sessions:
    """One open inndx session per client kind; the previous kind's is closed on a switch."""

    def __init__(self, service: Service, connect: Callable[..., inndx.Session]):
        self.service, self.connect, self.sessions = service, connect, {}

    def get(self, kind: str) -> inndx.Session:
        for other in [k for k in self.sessions if k != kind]:
            self.sessions.pop(other).close()
        session = self.sessions.get(kind)
        if session is None or session.closed is not None:
            session = self.connect(self.service.ws_url, TENANT, client=kind, timeout="20s", max_retries=0,
                                    connect_timeout=scaled(40), reply_timeout=scaled(60))
            self.sessions[kind] = session
        return session

    def close(self) -> None:
        for session in self.sessions.values():
            session.close()


@pytest.fixture(scope="module")
def sessions(service: Service, api) -> Iterator[_Sessions]:
    opened = _Sessions(service, api)
    yield opened
    opened.close()


@pytest.fixture()
def s(sessions: _Sessions, client: str) -> inndx.Session:
    return sessions.get(client)


def test_goto_reply_is_typed(client, s: inndx.Session, site: Site):
    target = site.url("/redirect/302?to=/cookies/set")
    result = s.goto(target)
    assert isinstance(result, inndx.GotoResult)
    assert (result.status_code, result.url, result.content_type) == (200, site.url("/cookies/set"), "text/html")
    assert result.redirects == [inndx.Redirect(target, site.url("/cookies/set"), "server", "temporary")]
    cookies = {cookie.name: cookie for cookie in result.cookies}
    assert {"a", "b", "c", "d", "e", "f", "hop302"} <= set(cookies)
    assert cookies["a"].http_only and cookies["b"].same_site == "Strict" and cookies["d"].expires.startswith("2037-10-21")
    assert isinstance(result.headers, inndx.Headers)
    assert result.headers.get_all("set-cookie") == COOKIES_SET
    assert result.headers["Content-Type"] == result.headers.get("content-type")
    assert result.headers.items() == [tuple(pair) for pair in result.raw["headers"]]
    assert isinstance(result.body, bytes) and result.body == base64.b64decode(result.raw["body"])
    assert b"<title>" in result.body and result.id == result.raw["id"]


def test_goto_options_and_bytes(client, s: inndx.Session, site: Site):
    image = s.goto(site.url("/image.png"))
    assert (image.body, image.content_type) == (PNG_BYTES, "image/png")
    repeated = s.goto(site.url("/headers/repeated"))
    assert repeated.headers.get_all("X-Multi") == (["one, two"] if client == "firefox" else ["one", "two"])
    posted = s.goto(site.url("/echo"), method="POST", headers={"X-Sdk": "yes"}, body=b"\x00\xffpayload",
                    cookies=[inndx.Cookie("jar", "1", domain="127.0.0.1", path="/")], user_agent="sdk-test/1")
    echo = json.loads(posted.body)
    sent = {name.lower(): value for name, value in echo["headers"]}
    assert echo["method"] == "POST" and base64.b64decode(echo["body_base64"]) == b"\x00\xffpayload"
    assert sent["x-sdk"] == "yes" and sent["user-agent"] == "sdk-test/1" and "jar=1" in sent["cookie"]


@pytest.mark.clients("chrome", "firefox")
def test_browser_actions(client, s: inndx.Session, site: Site):
    s.goto(site.url("/form"))
    assert s.fill("#name", "inndx") is None
    assert s.click("#counter") is None
    texts = "return ['result', 'counter'].map((id) => document.getElementById(id).textContent)"
    assert s.evaluate(texts) == ["inndx", "1"]
    assert s.content().startswith(b"<!DOCTYPE html>")
    assert s.screenshot().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.clients("chrome", "firefox")
def test_the_actions_of_issue_20(client, s: inndx.Session, site: Site):
    s.clear_cookies()
    s.goto(site.url("/actions/delayed?ms=300"))
    assert 0 <= s.wait_for("#late", state="attached") < 10_000
    with pytest.raises(inndx.Timeout):
        s.wait_for(text="never written", timeout=0.5)
    s.goto(site.url("/actions/input"))
    assert s.fill("#k", "ab") is None and s.press("Backspace", selector="#k") is None
    assert s.hover("#menu") is None and s.select("#many", ["c"]) is None
    assert s.evaluate("return [document.querySelector('#k').value, document.querySelector('#many').value]") == ["a", "c"]
    s.goto(site.url("/actions/lazy"))
    x, y = s.scroll(to="bottom")
    assert x == 0 and y > 1000
    assert s.pdf(landscape=True).startswith(b"%PDF-")
    assert s.screenshot(full_page=True, format="jpeg", quality=50).startswith(b"\xff\xd8")
    s.goto(site.url("/actions/login"))
    assert {c.name for c in s.cookies()} == {"session", "pref"}
    state = s.storage_state()
    assert state["origins"] == [{"origin": site.origin, "local_storage": [["theme", "dark"]]}]
    s.clear_cookies()
    assert s.cookies() == []
    s.set_cookies([c for c in state["cookies"] if c["name"] == "session"])
    assert [c.name for c in s.cookies()] == ["session"]
    s.clear_cookies()


def test_har_is_the_archive_of_what_came_since_the_last(client, s: inndx.Session, site: Site):
    s.har()
    target = site.url(f"/redirect/302?to=/html&sdk-har={client}")
    s.goto(target)
    archive = s.har()
    assert archive["log"]["version"] == "1.2"
    entries = [e for e in archive["log"]["entries"] if e["request"]["url"] == target]
    assert [e["response"]["status"] for e in entries] == [302], archive
    assert [e for e in s.har()["log"]["entries"] if e["request"]["url"] == target] == []


def test_errors_are_typed_and_the_session_goes_on(client, s: inndx.Session, site: Site):
    s.goto(site.url("/form"))
    if client == "standard":
        with pytest.raises(inndx.Error) as caught:
            s.click("#name")
        assert caught.value.code == 501 and type(caught.value) is inndx.Error
        assert s.screenshot() is None
    else:
        with pytest.raises(inndx.NotFound) as caught:
            s.click("#missing")
        assert caught.value.code == 404 and not caught.value.fatal and "#missing" in caught.value.message
        with pytest.raises(inndx.Error) as thrown:
            s.evaluate("throw new Error('boom')")
        assert thrown.value.code == 422 and "boom" in thrown.value.message
    with pytest.raises(inndx.Error) as bad:
        s.goto("ftp://example.invalid/")
    assert bad.value.code == 400 and bad.value.id is not None
    assert s.goto(site.url("/html")).status_code == 200


def test_pipelining_returns_replies_in_order(client, s: inndx.Session, site: Site):
    with s.pipeline() as p:
        first = p.goto(site.url("/html?title=one"))
        broken = p.goto("javascript:alert(1)")
        last = p.goto(site.url("/status/404"))
        content = p.content()
    results = p.results()
    assert [type(r) for r in results] == [inndx.GotoResult, inndx.Error, inndx.GotoResult, bytes]
    assert results[0].url == site.url("/html?title=one") and results[0].id == first.id
    assert results[1].code == 400 and results[1].id == broken.id
    assert results[2].status_code == 404 and last.result() is results[2]
    assert content.result() == results[3]
    with pytest.raises(inndx.Error):
        p.results(raise_errors=True)
    with pytest.raises(inndx.Error):
        broken.result()


@pytest.mark.clientless
def test_timeout_close_and_connection_closed(api, service: Service, site: Site):
    with api(service.url, TENANT, timeout=1, max_retries=0, reply_timeout=scaled(20)) as s:
        with pytest.raises(inndx.Timeout) as caught:
            s.goto(site.url("/slow?seconds=5"))
        assert caught.value.code == 504
        assert s.goto(site.url("/html")).status_code == 200
    with pytest.raises(inndx.ConnectionClosed) as closed:
        s.goto(site.url("/html"))
    assert closed.value.code == 1000 and closed.value.fatal
    s.close()  # idempotent


@pytest.mark.clientless
def test_refusals_are_typed(api, start_service, tmp_path: Path):
    tenants = tmp_path / "tenants.json"
    tenants.write_text(json.dumps({"tenants": {"one": {"api_keys": ["k1"], "max_sessions": 1}}}))
    strict = start_service(INNDX_TENANTS_FILE=str(tenants))
    with pytest.raises(inndx.PolicyError) as unknown:
        api(strict.ws_url, "stranger")
    assert unknown.value.code == 403 and unknown.value.fatal and "stranger" in unknown.value.message
    with pytest.raises(inndx.PolicyError) as keyless:
        api(strict.ws_url, "one")
    assert keyless.value.code == 401
    with api(strict.ws_url, "one", "k1") as s:
        with pytest.raises(inndx.CapacityError) as quota:
            api(strict.ws_url, "one", "k1")
        assert quota.value.code == 429
        assert s.session_id
    # the quota is freed once the server has closed that socket, a moment after the client saw it close
    malformed = wait_for(lambda: _refusal(api, strict, max_redirects=99), scaled(10), what="the quota to be freed")
    assert malformed.code == 400 and malformed.fatal and "max_redirects" in malformed.message


def _refusal(api, service: Service, **fields) -> inndx.Error | None:
    """The error an open with these fields gets (None while the tenant's quota is still taken)."""
    try:
        api(service.ws_url, "one", "k1", **fields).close()
    except inndx.CapacityError:
        return None
    except inndx.Error as exc:
        return exc
    raise AssertionError(f"the open with {fields} was accepted")


def _cli(service: Service, *args: str) -> subprocess.CompletedProcess:
    # this checkout's client, whichever one the environment installed
    python_path = os.pathsep.join(p for p in (str(SDK_SOURCE), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "INNDX_URL": service.url, "INNDX_TENANT": TENANT, "PYTHONPATH": python_path}
    return subprocess.run([sys.executable, "-m", "inndx", *args], env=env, capture_output=True, text=True,
                          timeout=scaled(90), check=False)


def test_cli(client, service: Service, site: Site, tmp_path: Path):
    target = site.url("/redirect/301?to=/form")
    if client == "standard":
        done = _cli(service, "goto", target, "--json")
        assert done.returncode == 0, done.stderr
        reply = json.loads(done.stdout)
        validate_frame(reply)
        assert reply["status_code"] == 200 and reply["redirects"][0]["type"] == "permanent"
        failed = _cli(service, "goto", target, "--click", "#go")
        assert failed.returncode == 1 and "error 501" in failed.stderr
        plain = _cli(service, "goto", site.url("/html"), "--url", service.ws_url, "--tenant", "other")
        assert plain.returncode == 0 and plain.stdout.startswith(f"200 {site.url('/html')} (text/html")
        return
    shot = tmp_path / "shot.png"
    done = _cli(service, "goto", target, "--client", client, "--json", "--wait-selector", "#name",
                "--fill", "#name", "from-cli", "--click", "#go", "--screenshot", str(shot))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["url"] == site.url("/form")
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert any(r["path"] == "/echo" and "name=from-cli" in r["query"] for r in site.requests)


# ------------------------------------------------------------------------- idle sessions

IDLE_PINGS = 1.0  # the service's ping interval here: 5 s of idleness is 5 pings the client must answer


@pytest.fixture(scope="module")
def pinging(grid, logs) -> Iterator[Service]:
    from tests.e2e.conftest import service_env

    with Service(env=service_env(grid, INNDX_PING_INTERVAL=f"{IDLE_PINGS:g}s"), log_dir=logs) as running:
        yield running


@pytest.mark.clients("standard", "chrome")
def test_an_idle_sdk_session_answers_pings_and_stays_open(pinging: Service, site: Site, client: str):
    """The client's reader thread answers the service's pings while the program does something
    else: idle for five ping intervals (a script pausing between two gotos), the session is
    still there. Control: a raw socket that reads nothing for as long is cut by the service,
    and its log says why (the ping timeout)."""
    import threading

    import websocket

    with inndx.connect(pinging.ws_url, TENANT, client=client, timeout="20s", connect_timeout=scaled(40),
                       reply_timeout=scaled(60)) as session:
        assert session.goto(site.url("/html")).status_code == 200
        threading.Event().wait(5 * IDLE_PINGS)  # the program is busy elsewhere (not reading)
        assert session.goto(site.url("/html")).status_code == 200
        assert session.closed is None
    raw = websocket.create_connection(pinging.ws_url, header=[f"X-Tenant-Id: {TENANT}"], timeout=scaled(10))
    try:
        raw.send(json.dumps({}))
        assert "session_id" in json.loads(raw.recv())
        threading.Event().wait(5 * IDLE_PINGS)  # reads nothing: its pings go unanswered
        wait_for(lambda: "ping timeout: the client answered no ping within 1s" in pinging.log_text(), scaled(10),
                 what="the log to name the ping timeout")
        with pytest.raises((websocket.WebSocketConnectionClosedException, OSError)):
            for _ in range(10):  # the pings that queued up, then the close (answered), then nothing
                raw.recv()
    finally:
        raw.shutdown()  # close() leaves the socket open once the server has cut it


@pytest.mark.clients("standard", "chrome")
def test_an_idle_async_session_answers_pings_and_stays_open(pinging: Service, site: Site, client: str):
    """The asyncio client's reader task answers the service's pings while the program awaits
    something else: idle for five ping intervals, the session is still there. (The control, a raw
    socket that reads nothing and is cut by the service, is the sync test's above.)"""

    async def idle() -> None:
        async with inndx.aio.connect(pinging.ws_url, TENANT, client=client, timeout="20s", connect_timeout=scaled(40),
                                     reply_timeout=scaled(60)) as session:
            assert (await session.goto(site.url("/html"))).status_code == 200
            await asyncio.sleep(5 * IDLE_PINGS)  # the program awaits something else
            assert (await session.goto(site.url("/html"))).status_code == 200
            assert session.closed is None
        assert isinstance(session.closed, inndx.ConnectionClosed) and session.closed.code == 1000

    asyncio.run(asyncio.wait_for(idle(), scaled(150)))


@pytest.mark.clientless
def test_async_sessions_and_actions_are_in_flight_at_once(service: Service, site: Site):
    """One asyncio program: three sessions' slow gotos overlap (2 s each, well under the 6 s they
    would take one after the other), and one session's gathered actions come back matched by id."""

    async def run() -> None:
        sessions = await asyncio.gather(*(inndx.aio.connect(service.ws_url, TENANT, max_retries=0, reply_timeout=scaled(30))
                                          for _ in range(3)))
        try:
            started = time.monotonic()
            slow = await asyncio.gather(*(s.goto(site.url("/slow?seconds=2")) for s in sessions))
            assert [r.status_code for r in slow] == [200, 200, 200] and time.monotonic() - started < 6
            first, broken, content = await asyncio.gather(
                sessions[0].goto(site.url("/html?title=one")), sessions[0].goto("javascript:alert(1)"),
                sessions[0].content(), return_exceptions=True)
            assert first.url == site.url("/html?title=one") and b"<title>one</title>" in content
            assert isinstance(broken, inndx.Error) and broken.code == 400 and broken.id == first.id + 1
        finally:
            await asyncio.gather(*(s.close() for s in sessions))
        assert all(s.closed is not None and s.closed.code == 1000 for s in sessions)

    asyncio.run(asyncio.wait_for(run(), scaled(90)))
