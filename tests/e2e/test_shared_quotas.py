"""Tenant quotas shared across instances through a real redis-server on loopback
(``INNDX_REDIS_URL``): two instances share one tenant's quota, and the claims of an instance
killed with SIGKILL expire within ``INNDX_QUOTA_TTL``."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import websocket

from tests.e2e.test_capacity import upgrade
from tests.support.ports import wait_for
from tests.support.redis_server import RedisServer
from tests.support.wsclient import Session, connect

pytestmark = pytest.mark.clientless

TTL = 3.0  # seconds: INNDX_QUOTA_TTL for these instances (renewed every second)


@pytest.fixture(scope="module")
def redis_server(logs):
    with RedisServer(log_dir=logs) as server:
        yield server


def test_two_instances_share_a_tenant_quota_and_a_killed_ones_claims_expire(start_service, redis_server, tmp_path):
    tenants = tmp_path / "tenants.json"
    tenants.write_text(json.dumps({"tenants": {"shared": {"max_sessions": 2}, "other": {}}}))
    env = {"INNDX_TENANTS_FILE": str(tenants), "INNDX_REDIS_URL": redis_server.url, "INNDX_QUOTA_TTL": f"{TTL:g}s"}
    first, second = start_service(**env), start_service(**env)
    sessions: list[Session] = []
    try:
        for service in (first, second):  # one each: the tenant's quota of 2 is used up between them
            sessions.append(connect(service.ws_url, tenant="shared"))
            sessions[-1].open()
        for service in (first, second):
            status, _, body = upgrade(service.ws_url, "shared")
            assert (status, body["code"]) == (429, 429), body
        assert upgrade(second.ws_url, "other")[0] == 101  # only that tenant is full

        # a session's end frees its claim at once, everywhere
        assert sessions[1].request({"action": "close"}, timeout=10) == {"action": "closed"}
        wait_for(lambda: upgrade(first.ws_url, "shared")[0] == 101, 5, interval=0.1, what="the freed claim")
        sessions.append(wait_for(lambda: _opened(second.ws_url), 5, interval=0.1, what="a session"))  # full again


        # SIGKILL the first instance (master and worker): nothing releases its claim but the TTL
        os.killpg(os.getpgid(first.pid), signal.SIGKILL)
        killed = time.monotonic()
        assert upgrade(second.ws_url, "shared")[0] == 429  # still held: renewed under a second ago
        wait_for(lambda: upgrade(second.ws_url, "shared")[0] == 101, TTL + 5, interval=0.1, what="the claim to expire")
        freed = time.monotonic() - killed
        assert freed <= TTL + 2, freed  # the bound, plus the time to notice
    finally:
        for session in sessions:
            session.close()


def _opened(ws_url: str) -> Session | None:
    """A session of tenant "shared" opened, or None while the quota is still taken (429)."""
    try:
        session = connect(ws_url, tenant="shared")
    except websocket.WebSocketBadStatusException as refused:
        assert refused.status_code == 429
        return None
    session.open()
    return session
