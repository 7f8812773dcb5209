"""Hostile clients over a real WebSocket: every mistake an error frame in its turn, nothing
wedged, nothing leaked. (Server-side hostility lives in its own module.)"""

from __future__ import annotations

import json
import socket
import time

import psutil
import pytest
import websocket as wsclient

from tests.e2e.conftest import browser_processes
from tests.support.ports import scaled, wait_for
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import Session, connect

SCREENSHOT_PROBE = {"action": "screenshot", "id": "probe"}


def expect_error(frame: dict, code: int, *, where: str | None = None, id_: object = None) -> None:
    assert frame.get("type") == "error", frame
    assert frame["code"] == code, frame
    if where is not None:
        assert where in frame["message"], frame
    if id_ is None:
        assert "id" not in frame, frame
    else:
        assert frame.get("id") == id_, frame


def still_usable(session: Session) -> None:
    reply = session.request(SCREENSHOT_PROBE, timeout=20)
    assert reply["action"] == "screenshot" and reply["id"] == "probe", reply


def no_traceback(service: Service) -> None:
    assert "Traceback" not in service.log_text(), service.log_tail()


# ----------------------------------------------------------------------- client mistakes, each client


def test_a_lone_surrogate_is_error_400_and_the_session_goes_on(page: Session, service: Service):
    # sent as raw text: the JSON escape names half a character, which no reply could carry back
    expect_error(page.request('{"action": "content", "id": "\\ud800"}', timeout=20), 400, where="$.id")
    expect_error(page.request('{"action": "goto", "url": "http://a/", "id": 7, "headers": [["X-A", "\\udfff"]]}',
                              timeout=20), 400, where="$.headers[0][1]", id_=7)
    still_usable(page)
    no_traceback(service)


def test_a_non_ascii_header_is_sent_as_utf8_bytes(page: Session, site: Site, client: str):
    site.clear()
    reply = page.request({"action": "goto", "url": site.url("/echo"), "id": "h",
                          "headers": [["X-Name", "José"], ["X-Plain", "ascii"]]}, timeout=30)
    assert reply["action"] == "goto" and reply["status_code"] == 200, reply
    seen = {name.lower(): value for name, value in site.requests_to("/echo")[-1]["headers"]}
    # the test site reads header bytes as latin-1, as http.server does: undo that to get the bytes
    assert seen["x-name"].encode("latin-1") == "José".encode(), seen
    assert seen["x-plain"] == "ascii"


def test_a_non_ascii_user_agent_is_sent_as_utf8_bytes(page: Session, site: Site):
    site.clear()
    reply = page.request({"action": "goto", "url": site.url("/echo"), "user_agent": "bot/1 (José)"}, timeout=30)
    assert reply["action"] == "goto" and reply["status_code"] == 200, reply
    seen = {name.lower(): value for name, value in site.requests_to("/echo")[-1]["headers"]}
    assert seen["user-agent"].encode("latin-1") == "bot/1 (José)".encode(), seen


@pytest.mark.parametrize("header", [["X-A", "b\n"], ["X-A", "b\r"], ["X-A\n", "b"], ["X-A", "a\r\nX-B: c"]])
def test_a_header_with_cr_or_lf_is_400_at_once(page: Session, site: Site, header):
    started = time.monotonic()
    reply = page.request({"action": "goto", "url": site.url("/echo"), "headers": [header], "id": "crlf"}, timeout=20)
    expect_error(reply, 400, where="$.headers[0]", id_="crlf")
    assert time.monotonic() - started < scaled(3), "a schema error is answered at once, not after a timeout"


@pytest.mark.parametrize("url", ["http://[x", "http://[::1", "http://a:99999/", "http://a:-1/", "http://a:port/",
                                 "http://:80/", "http://a/b c", "http://a/\u0000", "http://a/\u0085"])
def test_an_unparsable_url_is_400(page: Session, url: str):
    expect_error(page.request({"action": "goto", "url": url, "id": "u"}, timeout=20), 400, where="$.url", id_="u")


def test_the_page_survives_every_mistake(page: Session, service: Service):
    still_usable(page)
    no_traceback(service)


# ----------------------------------------------------------------------- open frame


@pytest.mark.clientless
@pytest.mark.parametrize("timeout", ["99999999999h", "9" * 30 + "s", "30s\n"])
def test_an_absurd_open_timeout_is_a_fatal_400_frame(service: Service, timeout: str):
    with connect(service.ws_url) as session:
        frame = session.request({"timeout": timeout}, timeout=10)
        assert frame["type"] == "fatal" and frame["code"] == 400 and "$.timeout" in frame["message"], frame
        assert session.expect_close(timeout=10)[0] == 1008
    assert service.healthz()["ok"]
    no_traceback(service)


@pytest.mark.clientless
def test_a_lone_surrogate_in_the_open_frame_is_a_fatal_400(service: Service):
    with connect(service.ws_url) as session:
        frame = session.request('{"middleware": [{"type": "headers", "headers": [["X-A", "\\ud800"]]}]}', timeout=10)
        assert frame["type"] == "fatal" and frame["code"] == 400, frame
        assert session.expect_close(timeout=10)[0] == 1008
    no_traceback(service)


# ----------------------------------------------------------------------- frame memory


@pytest.mark.clientless
def test_permessage_deflate_is_refused(service: Service):
    ws = wsclient.create_connection(service.ws_url, timeout=scaled(10), header=[
        "X-Tenant-Id: acme", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"])
    try:
        assert "sec-websocket-extensions" not in {name.lower() for name in ws.getheaders()}
    finally:
        ws.close()


@pytest.mark.clientless
def test_a_huge_frame_is_dropped_unread_and_answered_413_in_its_turn(start_service):
    service = start_service(INNDX_MAX_FRAME_BYTES="1048576")
    with connect(service.ws_url, timeout=30) as session:
        session.open()
        session.send({"action": "screenshot", "id": 1})
        session.send('{"action": "goto", "id": 2, "url": "http://a/", "body": "' + "A" * 40_000_000 + '"}')
        session.send({"action": "screenshot", "id": 3})
        replies = [session.recv(timeout=60) for _ in range(3)]
        assert replies[0]["id"] == 1 and replies[2]["id"] == 3, replies
        expect_error(replies[1], 413)  # its id was never read: the frame was dropped unparsed
        assert "40000" in replies[1]["message"], replies[1]
        still_usable(session)
    worker = service.worker_pids()[0]
    assert psutil.Process(worker).memory_info().rss < 200 * 1024 * 1024  # 40 MB frame never held whole
    no_traceback(service)


# ----------------------------------------------------------------------- retries end with the session


@pytest.mark.clients("standard")
def test_a_close_behind_a_retrying_goto_stops_its_retries(open_session, site: Site, client: str):
    site.clear()
    session = open_session(client, timeout="1s", max_retries=10)
    started = time.monotonic()
    session.send({"action": "goto", "url": site.url("/hang"), "id": "g"})
    session.send({"action": "close", "id": "c"})
    reply = session.recv(timeout=20)
    expect_error(reply, 504, id_="g")
    assert session.recv(timeout=10) == {"action": "closed", "id": "c"}
    assert time.monotonic() - started < scaled(5), "ten retries of 1s would take far longer"
    assert len(site.requests_to("/hang")) == 1


@pytest.mark.clients("standard")
def test_a_client_that_leaves_stops_the_retries(start_service, site: Site, client: str):
    service = start_service(INNDX_DEFAULT_MAX_SESSIONS="1", INNDX_RESUME_WINDOW="0")  # a drop ends the session
    site.clear()
    session = connect(service.ws_url)
    session.open(client=client, timeout="1s", max_retries=10)
    session.send({"action": "goto", "url": site.url("/hang"), "id": "g"})
    wait_for(lambda: site.requests_to("/hang"), scaled(5), what="the first attempt")
    session.ws.shutdown()
    wait_for(lambda: service.healthz()["active_sessions"] == 0, scaled(5), what="the session to end")
    assert len(site.requests_to("/hang")) <= 2
    with connect(service.ws_url) as again:  # the tenant's only slot is free again
        again.open(client=client)


# ----------------------------------------------------------------------- a client that stops reading


@pytest.mark.clients("chrome", "firefox")
@pytest.mark.local_only
def test_a_client_that_stops_reading_loses_its_session_at_the_write_deadline(start_service, site: Site, client):
    service = start_service(INNDX_WRITE_TIMEOUT="2s", INNDX_DEFAULT_MAX_SESSIONS="1", INNDX_RESUME_WINDOW="0")
    ws = wsclient.create_connection(service.ws_url, timeout=scaled(60), header=["X-Tenant-Id: acme"],
                                    sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    ws.send(json.dumps({"client": client, "timeout": "30s"}))
    assert "session_id" in json.loads(ws.recv())
    ws.send(json.dumps({"action": "goto", "url": site.url("/big?bytes=4000000"), "id": "big"}))
    reply = json.loads(ws.recv())
    assert reply["status_code"] == 200, reply
    wait_for(lambda: browser_processes(service.pid), scaled(5), what="the browser to be running")
    for n in range(4):  # ~5 MB each once encoded: far more than the socket buffers hold
        ws.send(json.dumps({"action": "content", "id": n}))
    started = time.monotonic()
    while service.healthz()["active_sessions"]:  # /healthz answers all along
        assert time.monotonic() - started < scaled(45), service.log_tail()
        time.sleep(0.2)
    wait_for(lambda: not browser_processes(service.pid), scaled(15), what="the browser to quit")
    assert "did not read a reply within 2s" in service.log_text()
    with connect(service.ws_url) as again:  # the tenant's one slot is free
        again.open()
    ws.shutdown()
    no_traceback(service)


# ----------------------------------------------------------------------- the browser start race


@pytest.mark.clients("chrome")
@pytest.mark.local_only
def test_a_close_while_the_browser_starts_quits_that_browser(monkeypatch, client: str):
    from service.clients import browser as browser_module
    from service.clients import browser_settings
    from service.clients.base import ClientOptions
    from service.config import Settings
    from service.deadline import Deadline
    from service.egress import Gateway
    from service.errors import Unavailable
    from service.policy import Policy

    real_launch = browser_module.prepare
    launched_pids: list[int] = []
    gateway = Gateway(Policy(allow_private=True))
    egress = gateway.open("race", client)
    browser = browser_module.BrowserClient(client, ClientOptions(policy=Policy(allow_private=True), egress=egress),
                                           browser_settings(Settings()))

    def launch_then_close(*args, **kwargs):  # the close comes after the launch, before start publishes it
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        launched = real_launch(*args, **kwargs)
        launched_pids.extend(p.pid for p in psutil.Process().children(recursive=True) if p.pid not in before)
        browser.close()
        return launched

    monkeypatch.setattr(browser_module, "prepare", launch_then_close)
    with pytest.raises(Unavailable, match="closed while its browser was starting"):
        browser.start(Deadline(60))
    assert launched_pids

    def gone() -> bool:
        return not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                       for pid in launched_pids)

    wait_for(gone, scaled(15), what="the launched browser to be gone")
    gateway.stop()
