"""Capacity: the instance's session cap (503 with Retry-After, before the upgrade), health
answered at the cap, the admission order (the tenant's 429 before the instance's 503), the
tenants file's ``max_browsers``, and Grid sessions counted apart from local browsers."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import threading
import time

import pytest

from tests.support.ports import wait_for
from tests.support.wsclient import Session, connect, http_get

HEALTH_BOUND = 2.0  # seconds: generous on a shared, loaded machine (the bench measures the real figure)


def upgrade(ws_url: str, tenant: str) -> tuple[int, dict[str, str], dict]:
    """A hand-made upgrade: (status, headers by lower-case name, JSON body or {})."""
    headers = {
        "X-Tenant-Id": tenant,
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }
    status, pairs, body = http_get(ws_url, headers)
    return status, {name.lower(): value for name, value in pairs}, (json.loads(body) if status != 101 else {})


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition (0 when absent)."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) == labels:
            return float(match.group(2))
    return 0.0


def timed_get(url: str) -> tuple[float, int, bytes]:
    started = time.monotonic()
    status, _, body = http_get(url, timeout=10)
    return time.monotonic() - started, status, body


def close_all(sessions: list[Session]) -> None:
    for session in sessions:
        session.close()


@pytest.mark.clientless
def test_the_instance_cap_refuses_with_503_after_the_tenant_quota_and_health_still_answers(start_service, site):
    service = start_service(INNDX_MAX_SESSIONS="3", INNDX_DEFAULT_MAX_SESSIONS="2", INNDX_RETRY_AFTER="7")
    sessions: list[Session] = []
    try:
        for tenant in ("a", "a", "b"):  # the instance is full: 3 of 3
            sessions.append(connect(service.ws_url, tenant=tenant))
            sessions[-1].open(max_retries=0)

        # the tenant over its own quota hears so (429), before the instance's cap (503)
        status, headers, body = upgrade(service.ws_url, "a")
        assert (status, body["code"], body["type"]) == (429, 429, "fatal"), body
        assert headers["retry-after"] == "7"
        status, headers, body = upgrade(service.ws_url, "c")
        assert (status, body["code"], body["type"]) == (503, 503, "fatal"), body
        assert headers["retry-after"] == "7" and "3 sessions" in body["message"]
        assert set(body) == {"type", "message", "code"}

        # every session busy in a slow goto; health and metrics still answer at once
        for session in sessions:
            session.send({"action": "goto", "url": site.url("/slow?seconds=3")})
        time.sleep(0.5)  # let the gotos start: the instance is full and busy
        took, status, body = timed_get(f"{service.url}/healthz")
        assert status == 200 and json.loads(body)["active_sessions"] == 3
        assert took < HEALTH_BOUND, took
        took, status, body = timed_get(f"{service.url}/metrics")
        assert status == 200 and took < HEALTH_BOUND, took
        text = body.decode()
        assert metric(text, "inndx_admission_refusals_total", resource="quota_sessions", code="429") == 1
        assert metric(text, "inndx_admission_refusals_total", resource="sessions", code="503") == 1
        assert metric(text, "inndx_capacity_in_use", resource="sessions") == 3
        assert metric(text, "inndx_capacity_limit", resource="sessions") == 3
        for session in sessions:
            assert session.recv(timeout=20)["status_code"] == 200

        # a slot frees once a session has ended
        assert sessions[0].request({"action": "close"}, timeout=10) == {"action": "closed"}
        wait_for(lambda: upgrade(service.ws_url, "c")[0] == 101, 10, interval=0.1, what="a free slot")
    finally:
        close_all(sessions)


@pytest.mark.clientless
def test_health_answers_while_a_crowd_is_refused_at_the_cap(start_service):
    """Refusals at the cap take a reserve thread only for a moment: a crowd of them never
    starves /healthz, and none of them waits."""
    service = start_service(INNDX_MAX_SESSIONS="2")
    sessions = [connect(service.ws_url, tenant=f"t{n}") for n in range(2)]
    try:
        for session in sessions:
            session.open()
        statuses: list[int] = []
        took: list[float] = []

        def refused() -> None:
            started = time.monotonic()
            statuses.append(upgrade(service.ws_url, "late")[0])
            took.append(time.monotonic() - started)

        crowd = [threading.Thread(target=refused) for _ in range(60)]
        for thread in crowd:
            thread.start()
        health = [timed_get(f"{service.url}/healthz") for _ in range(5)]
        for thread in crowd:
            thread.join(30)
        assert statuses == [503] * 60
        assert max(took) < 10, max(took)  # answered, never queued until a session ends
        assert all(status == 200 and seconds < HEALTH_BOUND for seconds, status, _ in health), health
    finally:
        close_all(sessions)


@pytest.mark.clients("chrome")
def test_tenant_max_browsers_is_429_before_the_instance_503(client, start_service, tmp_path):
    tenants = tmp_path / "tenants.json"
    tenants.write_text(json.dumps({"tenants": {"one": {"max_browsers": 1}, "two": {}}}))
    service = start_service(
        INNDX_TENANTS_FILE=str(tenants), INNDX_MAX_BROWSERS="1", INNDX_MAX_GRID_SESSIONS="1"
    )
    sessions: list[Session] = []
    try:
        sessions.append(connect(service.ws_url, tenant="one"))
        sessions[-1].open(client=client, recv_timeout=60)
        # tenant "one" has its one browser: 429, though the instance is full too
        sessions.append(connect(service.ws_url, tenant="one"))
        fatal = sessions[-1].request({"client": client}, timeout=30)
        assert fatal["type"] == "fatal" and fatal["code"] == 429 and "browsers" in fatal["message"], fatal
        # a standard session is no browser: still welcome
        sessions.append(connect(service.ws_url, tenant="one"))
        sessions[-1].open()
        # another tenant meets the instance's cap: 503
        sessions.append(connect(service.ws_url, tenant="two"))
        fatal = sessions[-1].request({"client": client}, timeout=30)
        assert fatal["type"] == "fatal" and fatal["code"] == 503 and "capacity" in fatal["message"], fatal
        _, _, body = http_get(f"{service.url}/metrics")
        text = body.decode()
        assert metric(text, "inndx_admission_refusals_total", resource="quota_browsers", code="429") == 1
        where = "grid_sessions" if "INNDX_SELENIUM_REMOTE_URL" in service.env else "local_browsers"
        assert metric(text, "inndx_admission_refusals_total", resource=where, code="503") == 1
    finally:
        close_all(sessions)


@pytest.mark.clients("chrome", "firefox")
def test_a_pooled_browser_holds_an_instance_slot_and_its_session_the_tenant_quota(client, start_service, tmp_path):
    """The warm pool's browser takes an instance slot before any tenant has it (local browsers,
    or Grid sessions on a Grid); the session that takes it over claims its tenant's
    ``max_browsers`` (429 before the instance's 503), and the slot goes back when it ends."""
    tenants = tmp_path / "tenants.json"
    tenants.write_text(json.dumps({"tenants": {"one": {"max_browsers": 1}, "two": {}}}))
    service = start_service(
        INNDX_TENANTS_FILE=str(tenants), INNDX_MAX_BROWSERS="1", INNDX_MAX_GRID_SESSIONS="1",
        **{f"INNDX_POOL_{client.upper()}": "1"},
    )
    where = "grid_sessions" if "INNDX_SELENIUM_REMOTE_URL" in service.env else "local_browsers"
    other = "local_browsers" if where == "grid_sessions" else "grid_sessions"

    def metrics() -> str:
        return http_get(f"{service.url}/metrics")[2].decode()

    wait_for(lambda: metric(metrics(), "inndx_pool_idle", client=client) == 1, 90, interval=0.25, what="a pooled browser")
    text = metrics()
    assert metric(text, "inndx_capacity_in_use", resource=where) == 1  # no session yet: the pool's
    assert metric(text, "inndx_capacity_in_use", resource=other) == 0
    sessions: list[Session] = []
    try:
        sessions.append(connect(service.ws_url, tenant="one"))
        sessions[-1].open(client=client, recv_timeout=60)
        text = metrics()
        assert metric(text, "inndx_pool_events_total", client=client, event="handed_out") == 1
        assert metric(text, "inndx_capacity_in_use", resource=where) == 1  # the slot went with the browser
        sessions.append(connect(service.ws_url, tenant="one"))  # over its quota, though the instance is full too
        fatal = sessions[-1].request({"client": client}, timeout=30)
        assert fatal["type"] == "fatal" and fatal["code"] == 429 and "browsers" in fatal["message"], fatal
        sessions.append(connect(service.ws_url, tenant="two"))  # no slot left for a replacement or a cold start
        fatal = sessions[-1].request({"client": client}, timeout=30)
        assert fatal["type"] == "fatal" and fatal["code"] == 503 and "capacity" in fatal["message"], fatal
        text = metrics()
        assert metric(text, "inndx_admission_refusals_total", resource="quota_browsers", code="429") == 1
        assert metric(text, "inndx_admission_refusals_total", resource=where, code="503") == 1
        assert metric(text, "inndx_capacity_in_use", resource=where) == 1
        assert sessions[0].request({"action": "close"}, timeout=30) == {"action": "closed"}
        # the slot is back: the pool refills it, and tenant "one" may have a browser again
        wait_for(lambda: metric(metrics(), "inndx_pool_idle", client=client) == 1, 90, interval=0.25, what="a refill")
        sessions.append(connect(service.ws_url, tenant="one"))
        sessions[-1].open(client=client, recv_timeout=60)
        assert metric(metrics(), "inndx_capacity_in_use", resource=where) == 1
    finally:
        close_all(sessions)


@pytest.mark.clients("chrome", "firefox")
def test_a_client_that_reconnects_at_once_finds_the_slot_it_gave_up(client, start_service, site, tmp_path):
    """At every limit at once (the tenant's one session and one browser, the instance's one
    browser): a client that closes, or drops its socket, and reconnects at once is admitted and
    opens, while its old browser may still be going (the claim waits for its end), every time."""
    tenants = tmp_path / "tenants.json"
    tenants.write_text(json.dumps({"tenants": {"one": {"max_sessions": 1, "max_browsers": 1}}}))
    service = start_service(INNDX_TENANTS_FILE=str(tenants), INNDX_MAX_BROWSERS="1", INNDX_MAX_GRID_SESSIONS="1",
                            INNDX_RESUME_WINDOW="0")  # resuming off: a drop ends the session at once
    for how in ("close", "drop", "close", "drop"):
        session = connect(service.ws_url, tenant="one")
        try:
            session.open(client=client, recv_timeout=60)
            reply = session.request({"action": "goto", "url": site.url("/html")}, timeout=60)
            assert reply.get("status_code") == 200, (how, reply)
            if how == "close":
                assert session.request({"action": "close"}, timeout=30) == {"action": "closed"}
            else:
                session.ws.sock.shutdown(socket.SHUT_RDWR)  # no close frame: the TCP connection just ends
        finally:
            session.close()
    session = connect(service.ws_url, tenant="one")  # the last one is back too
    try:
        session.open(client=client, recv_timeout=60)
    finally:
        session.close()


@pytest.mark.grid_only
@pytest.mark.clients("chrome")
def test_grid_sessions_are_not_counted_as_local_browsers(client, start_service):
    service = start_service(INNDX_MAX_BROWSERS="1", INNDX_MAX_GRID_SESSIONS="2")
    sessions: list[Session] = []
    try:
        for _ in range(2):  # two browsers, though only one may run locally: both are on the Grid
            sessions.append(connect(service.ws_url, tenant="acme"))
            sessions[-1].open(client=client, recv_timeout=60)
        sessions.append(connect(service.ws_url, tenant="acme"))
        fatal = sessions[-1].request({"client": client}, timeout=30)
        assert fatal["type"] == "fatal" and fatal["code"] == 503 and "2 Grid sessions" in fatal["message"], fatal
        _, _, body = http_get(f"{service.url}/metrics")
        text = body.decode()
        assert metric(text, "inndx_capacity_in_use", resource="grid_sessions") == 2
        assert metric(text, "inndx_capacity_in_use", resource="local_browsers") == 0
    finally:
        close_all(sessions)
