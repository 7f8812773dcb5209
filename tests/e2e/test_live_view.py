"""The live view (``/v1/sessions/<id>/live``): a session's screen, watched from a real headless
Chromium while the session's own client drives it.

The viewer page shows each frame in an ``<img>``; the test reads a pixel of the frame on show by
drawing that image into a canvas, in the viewer's page. The tenant comes in the query
(``INNDX_TENANT_QUERY=1``) for the page, and as headers for the test's own WebSocket viewers.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.support import playground
from tests.support.ports import scaled, wait_for
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import Session, connect, http_get, raw_upgrade

TENANTS = {"tenants": {"play": {"api_keys": ["k-play"]}, "other": {"api_keys": ["k-other"]}}}
PLAY = {"X-Tenant-Id": "play", "Authorization": "Bearer k-play"}
OTHER = {"X-Tenant-Id": "other", "Authorization": "Bearer k-other"}
FPS = 4
RED = "document.body.style.background = 'rgb(255,0,0)'"
# the pixel at the middle of the frame on show, [r, g, b], or null before the first frame
PIXEL = """
const img = document.getElementById('screen');
if (!img.complete || !img.naturalWidth) return null;
const canvas = document.createElement('canvas');
canvas.width = 1; canvas.height = 1;
const context = canvas.getContext('2d');
context.drawImage(img, Math.floor(img.naturalWidth / 2), Math.floor(img.naturalHeight / 2), 1, 1, 0, 0, 1, 1);
return Array.from(context.getImageData(0, 0, 1, 1).data.slice(0, 3));
"""


@pytest.fixture(scope="module")
def live_service(tmp_path_factory: pytest.TempPathFactory, logs: Path, grid) -> Iterator[Service]:
    from tests.e2e.conftest import service_env

    tenants = tmp_path_factory.mktemp("live") / "tenants.json"
    tenants.write_text(json.dumps(TENANTS))
    env = service_env(
        grid, INNDX_TENANT_QUERY="1", INNDX_TENANTS_FILE=str(tenants), INNDX_LIVE_FPS=str(FPS), INNDX_LIVE_VIEWERS="2"
    )
    with Service(env=env, log_dir=logs) as running:
        yield running


@pytest.fixture(scope="module")
def viewer() -> Iterator:
    with playground.chromium() as chrome:
        yield chrome


def _open(service: Service, client: str) -> Session:
    session = connect(service.ws_url, tenant="play", headers={"Authorization": "Bearer k-play"})
    try:
        session.open(client=client, timeout="20s", max_retries=0)
    except BaseException:
        session.close()
        raise
    return session


def _page(service: Service, session_id: str, tenant: str = "play", key: str = "k-play") -> str:
    return f"{service.url}/v1/sessions/{session_id}/live?tenant={tenant}&api_key={key}"


def _frames_url(service: Service, session_id: str) -> str:
    return f"{service.ws_url.removesuffix('/ws')}/{session_id}/live/ws"


def _close(session: Session) -> None:
    if session.close_code is None:
        assert session.request({"action": "close", "id": "bye"})["action"] == "closed"
    session.close()


def _pixel(driver) -> list[int] | None:
    return driver.execute_script(PIXEL)


def _is_red(pixel: list[int] | None) -> bool:  # a JPEG's red, give or take
    return pixel is not None and pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


def _frames(driver) -> int:
    return int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-frames") or 0)


def _watch(driver, url: str) -> None:
    playground.load(driver, url)
    wait_for(lambda: _pixel(driver) is not None, 15, what="the live view's first frame")


def _evaluate(session: Session, script: str, ident: str = "e") -> float:
    """Seconds from sending the evaluate to its reply."""
    started = time.monotonic()
    reply = session.request({"action": "evaluate", "script": script, "id": ident})
    assert reply.get("action") == "evaluated", reply
    return time.monotonic() - started


@pytest.mark.local_only
@pytest.mark.clients("chrome", "firefox")
def test_the_viewer_sees_the_page_change_colour_within_a_second(live_service: Service, site: Site, viewer, client):
    session = _open(live_service, client)
    try:
        assert session.request({"action": "goto", "url": site.url("/html"), "id": "g"})["status_code"] == 200
        _watch(viewer, _page(live_service, session.session_id))
        assert not _is_red(_pixel(viewer))
        _evaluate(session, RED)
        changed = time.monotonic()  # the page is red from here on
        wait_for(lambda: _is_red(_pixel(viewer)), 5, interval=0.01, what="a red frame")
        seen = time.monotonic() - changed
        print(f"\n{client}: the viewer saw the new colour {seen * 1000:.0f} ms after the evaluate's reply")
        assert seen < 1.0
    finally:
        _close(session)
    status = viewer.find_element(By.ID, "live-status")
    wait_for(lambda: status.get_attribute("data-state") == "ended", 5, what="the viewer to see the session end")


@pytest.mark.local_only
@pytest.mark.clients("chrome", "firefox")
def test_the_sessions_actions_answer_while_viewers_watch(live_service: Service, site: Site, viewer, client):
    session = _open(live_service, client)
    watcher = None
    try:
        assert session.request({"action": "goto", "url": site.url("/html"), "id": "g"})["status_code"] == 200
        # a page that changes colour every 50 ms: every capture is a new frame
        _evaluate(session, "let n = 0; setInterval(() => { document.body.style.background = "
                           "'hsl(' + (n++ * 47 % 360) + ', 80%, 50%)'; }, 50); return null")
        alone = [_evaluate(session, "return document.title", f"a{i}") for i in range(20)]

        _watch(viewer, _page(live_service, session.session_id))
        watcher = connect(_frames_url(live_service, session.session_id), tenant=None, headers=PLAY)
        assert watcher.recv_bytes(timeout=10).startswith(b"\xff\xd8\xff")  # a JPEG
        assert raw_upgrade(_frames_url(live_service, session.session_id), headers=PLAY)[0] == 429  # two at most
        first, started = _frames(viewer), time.monotonic()
        watched = [_evaluate(session, "return document.title", f"w{i}") for i in range(20)]
        deadline = started + scaled(2)
        while time.monotonic() < deadline:  # the frame rate over at least two seconds, bounded
            watched.append(_evaluate(session, "return document.title", "w"))
        rate = (_frames(viewer) - first) / (time.monotonic() - started)
        print(
            f"\n{client}: evaluate p50 {statistics.median(alone) * 1000:.1f} ms alone, "
            f"{statistics.median(watched) * 1000:.1f} ms with two viewers (max {max(watched) * 1000:.0f} ms, "
            f"{len(watched)} actions); {rate:.1f} frames a second shown"
        )
        assert 1 <= rate <= FPS + 0.5
        assert statistics.median(watched) < 0.25 and max(watched) < 2.0
    finally:
        _close(session)
    assert watcher is not None
    try:
        with pytest.raises(AssertionError):  # frames until the close
            for _ in range(100):
                watcher.recv_bytes(timeout=5)
        assert watcher.close_code == 1000 and "ended" in (watcher.close_reason or "")
    finally:
        watcher.close()


@pytest.mark.local_only
@pytest.mark.clients("chrome", "firefox")
def test_another_tenant_gets_403(live_service: Service, client):
    session = _open(live_service, client)
    try:
        sid = session.session_id
        assert http_get(_page(live_service, sid, "other", "k-other"))[0] == 403
        assert http_get(_page(live_service, sid, "play", "nope"))[0] == 401
        assert raw_upgrade(_frames_url(live_service, sid), headers=OTHER)[0] == 403
        assert raw_upgrade(_frames_url(live_service, sid) + "?tenant=other&api_key=k-other")[0] == 403
        status, headers, body = http_get(_page(live_service, sid))
        assert status == 200 and b'id="screen"' in body
        csp = dict((n.lower(), v) for n, v in headers)["content-security-policy"]
        assert "img-src blob:" in csp and "frame-ancestors 'none'" in csp
        assert session.request({"action": "evaluate", "script": "return 1", "id": 1})["result"] == 1
    finally:
        _close(session)
    wait_for(lambda: http_get(_page(live_service, sid))[0] == 404, 10, what="an ended session to be gone")


@pytest.mark.clientless
def test_what_the_live_view_cannot_show(live_service: Service):
    session = _open(live_service, "standard")
    try:
        sid = session.session_id
        assert http_get(_page(live_service, sid, "other", "k-other"))[0] == 403  # whose, before what
        status, _, body = http_get(_page(live_service, sid))
        assert status == 501 and "no screen" in json.loads(body)["message"]
        assert raw_upgrade(_frames_url(live_service, sid), headers=PLAY)[0] == 501
        unknown = "0" * 8 + "-0000-4000-8000-" + "0" * 12
        assert http_get(_page(live_service, unknown))[0] == 404
        assert raw_upgrade(_frames_url(live_service, unknown), headers=PLAY)[0] == 404
        assert http_get(_page(live_service, "../../healthz"))[0] == 404
        assert http_get(f"{live_service.url}/v1/sessions/{sid}/live")[0] == 400  # no tenant
        assert http_get(_frames_url(live_service, sid).replace("ws://", "http://"), headers=PLAY)[0] == 400  # no upgrade
    finally:
        _close(session)


@pytest.mark.local_only
@pytest.mark.clients("chrome")
def test_the_playground_links_the_live_view(live_service: Service, viewer, client):
    playground.load(viewer, live_service.url + "/")
    assert playground.open_session(viewer, "play", "k-play", client) == "open"
    link = viewer.find_element(By.ID, "live-link")
    assert link.is_displayed()
    href = link.get_attribute("href")
    assert href.startswith(live_service.url + "/v1/sessions/") and href.endswith("/live?tenant=play&api_key=k-play")
    playground_tab = viewer.current_window_handle
    viewer.switch_to.new_window("tab")  # the playground keeps its socket, and so its session
    try:
        _watch(viewer, href)
    finally:
        viewer.close()
        viewer.switch_to.window(playground_tab)
    playground.send(viewer, "close")
    link = viewer.find_element(By.ID, "live-link")
    wait_for(lambda: not link.is_displayed(), 10, what="the link to go with the session")


@pytest.mark.local_only
@pytest.mark.clients("chrome", "firefox")
def test_a_wedged_browser_holds_up_neither_the_session_nor_its_viewer(live_service: Service, site: Site, client):
    from service.live import CAPTURE_WAIT, POLL
    from tests.e2e.test_browser_wedge import DETECTED, browser_main, stopped

    session = _open(live_service, client)
    watcher = connect(_frames_url(live_service, session.session_id), tenant=None, headers=PLAY)
    try:
        assert session.request({"action": "goto", "url": site.url("/html"), "id": "g"})["status_code"] == 200
        watcher.recv_bytes(timeout=10)
        main = browser_main(live_service)
        with stopped(main):  # the viewer's captures go unanswered; the session's action is judged as ever
            started = time.monotonic()
            reply = session.request({"action": "evaluate", "script": "return 1", "id": "w"}, timeout=60)
            assert reply.get("type") == "error" and reply["code"] == 504 and "answered nothing" in reply["message"]
            assert time.monotonic() - started < DETECTED
        _evaluate(session, RED)  # it answers again, and so do the captures
        wait_for(lambda: watcher.recv_bytes(timeout=10), 10, what="a frame after the wedge")
        with stopped(main):  # the client leaves while the browser answers nothing
            session.close()
            started = time.monotonic()
            with pytest.raises(AssertionError):
                while True:
                    watcher.recv_bytes(timeout=15)
            assert watcher.close_code == 1000, (watcher.close_code, watcher.close_reason)
            assert time.monotonic() - started < CAPTURE_WAIT + POLL + 3.0
    finally:
        session.close()
        watcher.close()
