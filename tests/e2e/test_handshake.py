"""Connecting and the handshake: the checks before the upgrade (tenant id, tenants file, API
keys, quotas) and the open frame (defaults, validation, the open timeout, the timeout bound)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket

from tests.support.ports import wait_for
from tests.support.service import Service
from tests.support.wsclient import connect, http_get, raw_upgrade

pytestmark = pytest.mark.clientless

TENANTS = {
    "tenants": {
        "acme": {"api_keys": ["k", "k-two"], "max_sessions": 5},
        "solo": {"max_sessions": 1},
        "free": {},
    }
}


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, logs: Path) -> Iterator[Service]:
    """A service with a tenants file, a 1 s open timeout and a 1 m maximum timeout."""
    tenants = tmp_path_factory.mktemp("handshake") / "tenants.json"
    tenants.write_text(json.dumps(TENANTS))
    env = {
        "INNDX_TENANTS_FILE": str(tenants),
        "INNDX_OPEN_TIMEOUT": "1s",
        "INNDX_MAX_TIMEOUT": "1m",
        "INNDX_IDLE_TIMEOUT": "10m",
    }
    with Service(env=env, log_dir=logs) as running:
        yield running


def assert_refused(status: int, body: bytes, code: int) -> dict:
    assert status == code, (status, body)
    refusal = json.loads(body)
    assert refusal["type"] == "fatal" and refusal["code"] == code, refusal
    assert isinstance(refusal["message"], str) and refusal["message"]
    assert set(refusal) == {"type", "message", "code"}, refusal
    return refusal


def expect_fatal(session, code: int, close_code: int = 1008) -> dict:
    frame = session.recv(timeout=10)
    assert frame["type"] == "fatal" and frame["code"] == code, frame
    assert "id" not in frame, frame
    assert session.expect_close(timeout=10)[0] == close_code
    return frame


# ------------------------------------------------------------------------- before the upgrade


def test_missing_tenant_header_is_refused_before_upgrade(service):
    status, body = raw_upgrade(service.ws_url)
    refusal = assert_refused(status, body, 400)
    assert "X-Tenant-Id" in refusal["message"]


@pytest.mark.parametrize("tenant", ["", "has space", "a" * 65, "semi;colon", "slash/", "ünïcode"])
def test_malformed_tenant_header_is_refused_before_upgrade(service, tenant):
    status, body = raw_upgrade(service.ws_url, headers={"X-Tenant-Id": tenant})
    assert_refused(status, body, 400)


def test_longest_valid_tenant_id_is_accepted(service):
    tenant = "A-z_0.9" + "x" * 57
    assert len(tenant) == 64
    with connect(service.ws_url, tenant=tenant) as session:
        session.open()
        assert session.request({"action": "close"}, timeout=10) == {"action": "closed"}


def test_websocket_client_sees_the_refusal(service):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        connect(service.ws_url, tenant=None)
    assert refused.value.status_code == 400


def test_plain_get_on_the_websocket_path_is_400(service):
    status, _, body = http_get(service.ws_url, headers={"X-Tenant-Id": "acme"})
    refusal = assert_refused(status, body, 400)
    assert "Upgrade" in refusal["message"] or "WebSocket" in refusal["message"]


def test_unknown_tenant_is_403(strict):
    status, body = raw_upgrade(strict.ws_url, headers={"X-Tenant-Id": "stranger"})
    assert_refused(status, body, 403)


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", "Basic k", "k", "Bearer kk", "Bearer k-tw"],
)
def test_missing_or_wrong_api_key_is_401(strict, authorization):
    headers = {"X-Tenant-Id": "acme"}
    if authorization is not None:
        headers["Authorization"] = authorization
    status, body = raw_upgrade(strict.ws_url, headers=headers)
    assert_refused(status, body, 401)


@pytest.mark.parametrize("key", ["k", "k-two"])
def test_right_api_key_is_upgraded(strict, key):
    status, _ = raw_upgrade(strict.ws_url, headers={"X-Tenant-Id": "acme", "Authorization": f"Bearer {key}"})
    assert status == 101
    with connect(strict.ws_url, tenant="acme", headers={"Authorization": f"Bearer {key}"}) as session:
        session.open()
        assert session.request({"action": "screenshot"}, timeout=10) == {"action": "screenshot", "screenshot": None}


def test_tenant_without_keys_needs_no_authorization(strict):
    with connect(strict.ws_url, tenant="free") as session:
        session.open()


def test_tenant_at_quota_is_429_until_a_session_closes(strict):
    first = connect(strict.ws_url, tenant="solo")
    try:
        first.open()
        status, body = raw_upgrade(strict.ws_url, headers={"X-Tenant-Id": "solo"})
        assert_refused(status, body, 429)
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            connect(strict.ws_url, tenant="solo")
        assert refused.value.status_code == 429
        # another tenant is not affected by solo's quota
        with connect(strict.ws_url, tenant="free") as other:
            other.open()
        assert first.request({"action": "close"}, timeout=10) == {"action": "closed"}
        assert first.expect_close(timeout=10)[0] == 1000
    finally:
        first.close()

    def second_session():
        try:
            session = connect(strict.ws_url, tenant="solo")
        except websocket.WebSocketBadStatusException as refused:
            assert refused.status_code == 429
            return None
        return session

    second = wait_for(second_session, 10, interval=0.1, what="solo's slot to free up")
    with second:
        second.open()
        assert second.request({"action": "close"}, timeout=10) == {"action": "closed"}


# ------------------------------------------------------------------------- the open frame


def test_empty_open_frame_takes_the_defaults(service):
    with connect(service.ws_url) as session:
        session_id = session.open()
        assert uuid.UUID(session_id).version == 4
        assert str(uuid.UUID(session_id)) == session_id
        # the default client is standard: no screenshot, no script
        assert session.request({"action": "screenshot"}, timeout=10) == {"action": "screenshot", "screenshot": None}
        assert session.request({"action": "evaluate", "script": "return 1"}, timeout=10)["code"] == 501


def test_session_ids_are_distinct_uuid4(service):
    ids = set()
    for _ in range(3):
        with connect(service.ws_url) as session:
            ids.add(session.open())
    assert len(ids) == 3
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_full_open_frame_is_accepted(service):
    frame = {
        "client": {"kind": "standard", "viewport": {"width": 1024, "height": 768}},
        "middleware": [{"type": "headers", "headers": [["X-From-Middleware", "yes"]]}],
        "proxies": [],
        "timeout": "1m30s",
        "max_redirects": 0,
        "max_retries": 10,
    }
    with connect(service.ws_url) as session:
        assert uuid.UUID(session.open(frame)).version == 4


@pytest.mark.parametrize("timeout", ["500ms", "30s", "5m", "1m30s", "1.5s", "250ms"])
def test_durations_up_to_the_maximum_are_accepted(service, timeout):
    with connect(service.ws_url) as session:
        session.open(timeout=timeout)


def test_viewport_object_is_accepted_for_standard(service):
    with connect(service.ws_url) as session:
        session.open(client={"kind": "standard", "viewport": {"width": 800, "height": 600}})
        assert session.request({"action": "screenshot"}, timeout=10)["screenshot"] is None


@pytest.mark.parametrize(
    "frame, where",
    [
        ({"client": "opera"}, "$.client"),
        ({"client": {"kind": "standard", "viewport": {"width": 10, "height": 600}}}, "$.client"),
        ({"timeout": "soon"}, "$.timeout"),
        ({"timeout": "0s"}, "$.timeout"),
        ({"max_redirects": 51}, "$.max_redirects"),
        ({"max_retries": -1}, "$.max_retries"),
        ({"proxies": [1]}, "$.proxies[0]"),
        ({"colour": "blue"}, "colour"),
        ([], "$"),
    ],
)
def test_invalid_open_frame_is_fatal_400_and_closes(service, frame, where):
    with connect(service.ws_url) as session:
        session.send(frame)
        fatal = expect_fatal(session, 400)
        assert where in fatal["message"], fatal


@pytest.mark.parametrize("text", ["not json", "{", '"a string"', "null"])
def test_open_frame_that_is_not_a_json_object_is_fatal_400(service, text):
    with connect(service.ws_url) as session:
        session.send(text)
        expect_fatal(session, 400)


def test_binary_open_frame_is_fatal_400(service):
    with connect(service.ws_url) as session:
        session.send(b"{}")
        expect_fatal(session, 400)


@pytest.mark.parametrize(
    "frame",
    [{"action": "goto", "url": "http://127.0.0.1/"}, {"action": "close"}, {"action": "screenshot", "id": 1}],
)
def test_action_frame_first_is_fatal_400(service, frame):
    with connect(service.ws_url) as session:
        session.send(frame)
        fatal = expect_fatal(session, 400)
        assert "open" in fatal["message"]


def test_unknown_middleware_type_is_fatal_400(service):
    with connect(service.ws_url) as session:
        session.send({"middleware": [{"type": "captcha"}]})
        fatal = expect_fatal(session, 400)
        assert "$.middleware[0]" in fatal["message"], fatal


def test_middleware_without_headers_is_fatal_400(service):
    with connect(service.ws_url) as session:
        session.send({"middleware": [{"type": "headers"}]})
        assert "$.middleware[0]" in expect_fatal(session, 400)["message"]


def test_timeout_above_the_server_maximum_is_fatal_400(strict):
    with connect(strict.ws_url, tenant="free") as session:
        session.send({"timeout": "1m1s"})
        fatal = expect_fatal(session, 400)
        assert "$.timeout" in fatal["message"], fatal
    with connect(strict.ws_url, tenant="free") as session:
        session.open(timeout="1m")


def test_default_maximum_timeout_is_five_minutes(service):
    with connect(service.ws_url) as session:
        session.open(timeout="5m")
    with connect(service.ws_url) as session:
        session.send({"timeout": "5m1s"})
        assert "$.timeout" in expect_fatal(session, 400)["message"]


def test_no_open_frame_in_time_is_fatal_408(strict):
    with connect(strict.ws_url, tenant="free") as session:
        started = time.monotonic()
        expect_fatal(session, 408)
        assert 0.8 <= time.monotonic() - started < 6


def test_open_timeout_frees_the_tenant_slot(strict):
    with connect(strict.ws_url, tenant="solo") as silent:
        expect_fatal(silent, 408)

    def opened():
        try:
            return connect(strict.ws_url, tenant="solo")
        except websocket.WebSocketBadStatusException as refused:
            assert refused.status_code == 429
            return None

    with wait_for(opened, 10, interval=0.1, what="the slot held by the silent client") as session:
        session.open()
