"""Sessions outlive their socket: a drop parks the session, a new socket resumes it (issue 18).

Every drop here is a TCP connection that just ends (``shutdown``, no close frame), as a mobile
network or a load balancer ends one. Each test opens its own session on the shared service
(resume window 60 s) and closes it at the end; the expired-window case has a service of its own.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
import uuid

import inndx
import pytest

from tests.e2e.conftest import browser_processes
from tests.support.aio_blocking import AioLoop
from tests.support.ports import scaled, wait_for
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import ServerClosed, Session, connect, http_get


def drop(session: Session) -> None:
    """End the TCP connection under the session: no close frame, no close action."""
    with contextlib.suppress(OSError):
        session.ws.sock.shutdown(socket.SHUT_RDWR)
    session.close()


def resume(service: Service, session_id: str, token: str, tenant: str = "acme", *, last_id=None,
           query: bool = True) -> tuple[Session, dict]:
    """A new socket that sends the resume frame; (its Session, the first reply)."""
    url = service.ws_url + (f"?session={session_id}" if query else "")
    again = connect(url, tenant=tenant)
    frame = {"resume": session_id, "resume_token": token}
    if last_id is not None:
        frame["last_id"] = last_id
    reply = again.request(frame, timeout=30)
    if reply.get("resumed"):
        again.session_id, again.resume_token = reply["session_id"], reply["resume_token"]
    return again, reply


def close_quietly(*sessions: Session) -> None:
    for session in sessions:
        with contextlib.suppress(Exception):
            if session.close_code is None:
                session.request({"action": "close"}, timeout=20)
        session.close()


def sample(service: Service, name: str) -> float:
    """One sample of the service's /metrics, by its full name with labels (0 when absent)."""
    _, _, body = http_get(service.url + "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def expect_fatal(session: Session, frame: dict, code: int, close_code: int = 1008) -> None:
    assert frame.get("type") == "fatal" and frame["code"] == code, frame
    assert session.expect_close(timeout=10)[0] == close_code


# ---------------------------------------------------------------------------------- the page stays


def test_a_drop_while_idle_parks_the_session_and_a_resume_finds_its_page(service: Service, site: Site, client: str):
    first = connect(service.ws_url)
    first.open(client=client)
    value = uuid.uuid4().hex
    page = site.url(f"/cookies/set?name=kept&value={value}")
    goto = first.request({"action": "goto", "url": page, "id": 1}, timeout=60)
    assert goto["status_code"] == 200, goto
    if client != "standard":
        stored = first.request({"action": "evaluate", "script": "localStorage.setItem('kept', 'yes'); return 1", "id": 2})
        assert stored == {"action": "evaluated", "result": 1, "id": 2}, stored
    last = 1 if client == "standard" else 2
    drop(first)
    again, reply = resume(service, first.session_id, first.resume_token, last_id=last)
    try:
        assert reply["resumed"] is True and reply["session_id"] == first.session_id, reply
        assert reply["resume_token"] != first.resume_token and reply["last_received"] == last, reply
        if client == "standard":
            content = again.request({"action": "content", "id": 3})
            assert content["id"] == 3 and content["content"] == goto["body"], "the page is not the one left"
        else:
            where = again.request({"action": "evaluate", "script": "return [location.href, localStorage.getItem('kept')]",
                                   "id": 3})
            assert where == {"action": "evaluated", "result": [page, "yes"], "id": 3}, where  # the first reply: none replayed
        echo = again.request({"action": "goto", "url": site.url("/cookies/echo"), "id": 4}, timeout=60)
        assert echo["id"] == 4 and json.loads(base64.b64decode(echo["body"]))["cookies"].get("kept") == value, echo
    finally:
        close_quietly(again)


# ---------------------------------------------------------------------------------- nothing runs twice


def test_a_drop_mid_goto_then_a_resume_with_last_id_gets_its_reply_once(service: Service, site: Site, client: str):
    first = connect(service.ws_url)
    first.open(client=client)
    assert first.request({"action": "goto", "url": site.url("/html"), "id": 1}, timeout=60)["id"] == 1
    mark = uuid.uuid4().hex
    slow, after = site.url(f"/slow?seconds=2&mark={mark}"), site.url(f"/echo?mark={mark}")
    first.send({"action": "goto", "url": slow, "id": 2})
    first.send({"action": "goto", "url": after, "id": 3})  # pipelined behind it
    wait_for(lambda: any(mark in r["query"] for r in site.requests_to("/slow")), scaled(20), what="the slow goto to start")
    drop(first)
    started = time.monotonic()
    again, reply = resume(service, first.session_id, first.resume_token, last_id=1)
    try:
        assert reply["resumed"] is True, reply
        assert reply["last_received"] in (2, 3), reply
        if reply["last_received"] == 2:  # the server never read frame 3: send it again, only it
            again.send({"action": "goto", "url": after, "id": 3})
        replies = [again.recv(timeout=60), again.recv(timeout=60)]
        assert [r.get("id") for r in replies] == [2, 3], replies
        assert replies[0]["url"] == slow and replies[0]["status_code"] == 200, replies[0]
        assert replies[1]["url"] == after and replies[1]["status_code"] == 200, replies[1]
        assert again.request({"action": "screenshot", "id": 4}, timeout=30)["id"] == 4  # nothing else came
        assert len([r for r in site.requests_to("/slow") if mark in r["query"]]) == 1
        assert len([r for r in site.requests_to("/echo") if mark in r["query"]]) == 1
        print(f"{client}: resumed and both replies in {time.monotonic() - started:.2f}s")
    finally:
        close_quietly(again)


def test_a_resume_without_last_id_gets_the_replies_produced_since_the_drop(service: Service, site: Site, client: str):
    first = connect(service.ws_url)
    first.open(client=client)
    mark = uuid.uuid4().hex
    first.send({"action": "goto", "url": site.url(f"/slow?seconds=1&mark={mark}"), "id": "slow"})
    wait_for(lambda: any(mark in r["query"] for r in site.requests_to("/slow")), scaled(20), what="the slow goto to start")
    drop(first)
    again, reply = resume(service, first.session_id, first.resume_token)
    try:
        assert reply["resumed"] is True and reply["last_received"] == "slow", reply
        assert again.recv(timeout=60)["id"] == "slow"
        assert again.request({"action": "screenshot", "id": "next"}, timeout=30)["id"] == "next"
    finally:
        close_quietly(again)


# ---------------------------------------------------------------------------------- refusals


def test_a_wrong_token_another_tenant_and_an_unknown_session_get_the_same_403(service: Service, client: str):
    first = connect(service.ws_url)
    first.open(client=client)
    refusals = []
    try:
        token = first.resume_token
        wrong = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        for session_id, token_, tenant in ((first.session_id, wrong, "acme"), (first.session_id, token, "other"),
                                           (str(uuid.uuid4()), token, "acme")):
            for query in (True, False):
                again, reply = resume(service, session_id, token_, tenant, query=query)
                expect_fatal(again, reply, 403)
                refusals.append(reply["message"])
                again.close()
        assert len(set(refusals)) == 1, refusals
        assert first.request({"action": "screenshot", "id": 1}, timeout=30)["id"] == 1  # untouched
    finally:
        close_quietly(first)
    again, reply = resume(service, first.session_id, token)  # closed: gone, and the right token says so
    expect_fatal(again, reply, 410)
    again.close()


def test_a_session_not_resumed_within_the_window_ends_and_a_late_resume_is_410(start_service, site: Site, client: str):
    service = start_service(INNDX_RESUME_WINDOW="1s")
    first = connect(service.ws_url)
    first.open(client=client)
    assert first.request({"action": "goto", "url": site.url("/html"), "id": 1}, timeout=60)["id"] == 1
    drop(first)
    time.sleep(0.2)  # part of the scenario: still within the window the session is there
    assert service.healthz()["active_sessions"] == 1
    assert sample(service, "inndx_sessions_parked") == 1
    wait_for(lambda: service.healthz()["active_sessions"] == 0, scaled(15), what="the session to end after the window")
    wait_for(lambda: not browser_processes(service.pid), scaled(15), what="its browser to quit")
    again, reply = resume(service, first.session_id, first.resume_token, last_id=1)
    expect_fatal(again, reply, 410)
    again.close()
    assert "not resumed within 1s" in service.log_text()
    assert sample(service, "inndx_sessions_parked") == 0
    assert sample(service, 'inndx_session_resumes_total{outcome="410"}') == 1


def test_a_resume_while_the_old_socket_lives_takes_over_and_of_two_racing_one_wins(service: Service, client: str):
    """Two sockets resume at once with the same token while the first is still open: the first
    is closed with 1008; of the two, one goes on and the other is closed with 1008 too (refused
    with 403, or resumed and then taken over by the other: the token a resume replaced stays good
    until a frame arrives on the resumed socket)."""
    first = connect(service.ws_url)
    first.open(client=client)
    results: list[tuple[Session, dict]] = []
    lock = threading.Lock()

    def race() -> None:
        outcome = resume(service, first.session_id, first.resume_token)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=race) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(scaled(60))
    try:
        assert len(results) == 2 and any(reply.get("resumed") for _, reply in results), results
        assert first.expect_close(timeout=10)[0] == 1008  # the old socket, still open, was taken over
        with pytest.raises(ServerClosed):
            first.recv(timeout=1)
        outcomes = []
        for racer, reply in results:
            if not reply.get("resumed"):
                expect_fatal(racer, reply, 403)
                outcomes.append("refused")
                continue
            try:
                shot = racer.request({"action": "screenshot", "id": "w"}, timeout=30)
            except ServerClosed as closed:
                assert closed.code == 1008, closed
                outcomes.append("taken over")
            else:
                assert shot["id"] == "w", shot
                outcomes.append("won")
        assert sorted(outcomes) in (["refused", "won"], ["taken over", "won"]), outcomes
    finally:
        close_quietly(*(s for s, _ in results))
        first.close()


# ---------------------------------------------------------------------------------- the Python client


@pytest.mark.parametrize("api", ["sync", "async"])
def test_the_python_client_resumes_under_a_running_script_which_never_notices(service: Service, site: Site,
                                                                               client: str, api: str):
    mark = uuid.uuid4().hex
    results: list = []
    failures: list[BaseException] = []
    with contextlib.ExitStack() as stack:
        connect_ = inndx.connect if api == "sync" else stack.enter_context(AioLoop()).connect
        session = stack.enter_context(connect_(service.ws_url, "acme", client=client, resume=True,
                                               connect_timeout=scaled(60), reply_timeout=scaled(90)))

        def script() -> None:
            try:
                for n in range(6):
                    results.append(session.goto(site.url(f"/slow?seconds=0.5&mark={mark}&n={n}")))
                results.append(session.content())
            except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
                failures.append(exc)

        runner = threading.Thread(target=script)
        runner.start()
        wait_for(lambda: any("n=2" in r["query"] and mark in r["query"] for r in site.requests_to("/slow")),
                 scaled(30), what="the third goto to start")
        raw = session._ws  # the TCP connection dies under the script
        (raw.sock if api == "sync" else raw.transport.get_extra_info("socket")).shutdown(socket.SHUT_RDWR)
        runner.join(scaled(120))
        assert not runner.is_alive() and not failures, failures
        assert session.resumes == 1 and session.closed is None
        assert [r.url for r in results[:6]] == [site.url(f"/slow?seconds=0.5&mark={mark}&n={n}") for n in range(6)]
        for n in range(6):  # each goto ran once
            assert len([r for r in site.requests_to("/slow") if mark in r["query"] and f"n={n}" in r["query"]]) == 1
        assert b"Slow page" in results[6]
