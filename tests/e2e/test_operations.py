"""Running the service: /healthz, /metrics, the log lines (and what they must never hold),
SIGTERM shutdown, idle expiry, the maximum lifetime, and clients that vanish."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket

from service import __version__
from tests.support.ports import wait_for
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import connect

pytestmark = pytest.mark.clientless

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')
ACTIONS = {"goto", "click", "fill", "content", "evaluate", "screenshot", "close", "invalid"}


@pytest.fixture(scope="module")
def ops(logs: Path) -> Iterator[Service]:
    """A service of this module's own, so that session counts and log lines are ours alone. A
    vanished client's session parks for the resume window (2 s here), then ends."""
    with Service(env={"INNDX_IDLE_TIMEOUT": "10m", "INNDX_RESUME_WINDOW": "2s"}, log_dir=logs) as running:
        yield running


def active(service: Service) -> int:
    return service.healthz()["active_sessions"]


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    found = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        labels = {m["key"]: m["value"] for m in LABEL.finditer(match["labels"] or "")}
        found.append((match["name"], labels, float(match["value"])))
    return found


def value(text: str, name: str, **labels: str) -> float:
    for sample_name, sample_labels, sample_value in samples(text):
        if sample_name == name and sample_labels == labels:
            return sample_value
    return 0.0


# ------------------------------------------------------------------------- /healthz


def test_healthz_reports_ok_version_and_active_sessions(ops: Service):
    status, body = ops.get("/healthz")
    assert status == 200
    health = json.loads(body)
    assert health["ok"] is True
    assert health["version"] == __version__ and isinstance(health["version"], str) and health["version"]
    wait_for(lambda: active(ops) == 0, 10, what="no active sessions")
    with connect(ops.ws_url) as first, connect(ops.ws_url) as second:
        first.open()
        assert active(ops) == 1
        second.open()
        assert active(ops) == 2
        assert first.request({"action": "close"}, timeout=10) == {"action": "closed"}
        first.expect_close(timeout=10)
        wait_for(lambda: active(ops) == 1, 10, what="one active session")
    wait_for(lambda: active(ops) == 0, 10, what="no active sessions")


def test_refused_opens_are_not_active_sessions(ops: Service):
    with connect(ops.ws_url) as session:
        session.send({"bogus": True})
        assert session.recv(timeout=10)["code"] == 400
    assert active(ops) == 0


# ------------------------------------------------------------------------- /metrics


def test_metrics_count_sessions_and_actions(ops: Service, site: Site):
    before = ops.metrics()
    with connect(ops.ws_url, tenant="metrics-tenant") as session:
        session.open()
        during = ops.metrics()
        assert value(during, "inndx_sessions_opened_total", client="standard") == value(
            before, "inndx_sessions_opened_total", client="standard") + 1
        assert value(during, "inndx_sessions_active", client="standard") == value(
            before, "inndx_sessions_active", client="standard") + 1
        assert session.request({"action": "goto", "url": site.url("/html?q=user-string")}, timeout=15)["action"] == "goto"
        assert session.request({"action": "evaluate", "script": "return 'user-string'"}, timeout=10)["code"] == 501
        assert session.request({"action": "content"}, timeout=10)["action"] == "content"
        assert session.request({"action": "click", "selector": 5}, timeout=10)["code"] == 400
        assert session.request({"action": "close"}, timeout=10) == {"action": "closed"}
        session.expect_close(timeout=10)
    wait_for(lambda: active(ops) == 0, 10, what="the session to end")
    after = ops.metrics()

    def grew(name: str, by: float = 1, **labels: str) -> None:
        assert value(after, name, **labels) == value(before, name, **labels) + by, (name, labels)

    grew("inndx_sessions_opened_total", client="standard")
    grew("inndx_sessions_closed_total", client="standard")
    assert value(after, "inndx_sessions_active", client="standard") == value(
        before, "inndx_sessions_active", client="standard")
    grew("inndx_actions_total", action="goto", outcome="ok")
    grew("inndx_actions_total", action="evaluate", outcome="501")
    grew("inndx_actions_total", action="content", outcome="ok")
    grew("inndx_actions_total", action="close", outcome="ok")
    assert value(after, "inndx_actions_total", action="click", outcome="400") + value(
        after, "inndx_actions_total", action="invalid", outcome="400") >= 1
    # the latency histogram, per action
    grew("inndx_action_duration_seconds_count", action="goto")
    assert value(after, "inndx_action_duration_seconds_bucket", action="goto", le="+Inf") >= 1
    assert value(after, "inndx_action_duration_seconds_sum", action="goto") > 0
    assert "# TYPE inndx_action_duration_seconds histogram" in after


def test_metrics_are_prometheus_text_with_fixed_label_values(ops: Service, site: Site):
    with connect(ops.ws_url, tenant="label-leak-tenant") as session:
        session.open()
        session.request({"action": "goto", "url": site.url("/echo/leak-path?leak=query")}, timeout=15)
        session.request({"action": "dance-leak"}, timeout=10)
        session.request({"action": "fill", "selector": "#leak", "value": "leak"}, timeout=10)
    status, body = ops.get("/metrics")
    assert status == 200
    text = body.decode()
    assert "# HELP inndx_sessions_opened_total" in text and "# TYPE inndx_sessions_opened_total counter" in text
    allowed = {
        "client": {"standard", "chrome", "firefox"},
        "action": ACTIONS,
        "outcome": {"ok"} | {str(code) for code in range(400, 600)},
        "resource": {"sessions", "local_browsers", "grid_sessions", "quota_sessions", "quota_browsers"},
        "code": {"429", "503"},
    }
    for name, labels, _ in samples(text):
        if not name.startswith("inndx_"):
            continue
        for label, label_value in labels.items():
            if label == "le":
                float(label_value)  # a bucket bound
                continue
            assert label in allowed, (name, labels)
            assert label_value in allowed[label], (name, labels)
    for leaked in ("leak", "127.0.0.1", "http", "tenant", str(site.port)):
        assert leaked not in text.lower().replace("inndx_", ""), leaked


def test_metrics_content_type_is_prometheus_text(ops: Service):
    import http.client

    conn = http.client.HTTPConnection(ops.host, ops.port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        assert response.getheader("Content-Type", "").startswith("text/plain")
    finally:
        conn.close()


# ------------------------------------------------------------------------- logs


def test_log_lines_for_open_actions_and_close_without_secrets(ops: Service, site: Site):
    secrets = {
        "cookie": "cookieSECRET4711",
        "query": "querySECRET0815",
        "body": "bodySECRET1234",
        "header": "headerSECRET9999",
        "set_cookie": "setcookieSECRET42",
        "path": "pathSECRET777",
    }
    tenant = "log-tenant"
    with connect(ops.ws_url, tenant=tenant) as session:
        session_id = session.open(max_retries=0)
        reply = session.request({
            "action": "goto",
            "url": site.url(f"/echo/{secrets['path']}?token={secrets['query']}"),
            "method": "POST",
            "body": base64.b64encode(secrets["body"].encode()).decode(),
            "headers": [["Authorization", f"Bearer {secrets['header']}"]],
            "cookies": [{"name": "sid", "value": secrets["cookie"]}],
        }, timeout=15)
        assert reply["status_code"] == 200
        sent = json.loads(base64.b64decode(reply["body"]))  # the secrets did travel
        assert base64.b64decode(sent["body_base64"]).decode() == secrets["body"]
        assert secrets["query"] in sent["query"] and secrets["path"] in sent["path"]
        session.request({"action": "goto", "url": site.url(
            f"/cookies/set?name=srv&value={secrets['set_cookie']}")}, timeout=15)
        failed = session.request({"action": "goto", "url": site.url(f"/reset?token={secrets['query']}")}, timeout=15)
        assert failed["code"] == 502
        assert secrets["query"] not in failed["message"]
        assert session.request({"action": "close"}, timeout=10) == {"action": "closed"}
        session.expect_close(timeout=10)
    wait_for(lambda: "session ended" in _session_lines(ops, session_id)[-1:][0] if _session_lines(ops, session_id)
             else False, 10, what="the session's last log line")
    lines = _session_lines(ops, session_id)
    assert all(tenant in line for line in lines), lines
    assert any("opened" in line and "standard" in line for line in lines), lines
    assert any("ended" in line for line in lines), lines
    action_lines = [line for line in lines if re.search(r"\baction (goto|close)\b", line)]
    assert len(action_lines) == 4, lines
    for line in action_lines:
        assert re.search(r"\b(ok|\d{3})\b", line), line
        assert re.search(r"\d+\.\d+\s*s|\d+\s*ms", line), line  # a duration
    assert any("502" in line for line in action_lines), action_lines
    log = ops.log_text()
    secrets["body_base64"] = base64.b64encode(secrets["body"].encode()).decode().rstrip("=")
    for what, secret in secrets.items():
        assert secret not in log, f"the {what} secret is in the service log"


def _session_lines(service: Service, session_id: str) -> list[str]:
    return [line for line in service.log_text().splitlines() if session_id in line]


def test_refused_upgrades_are_logged_without_credentials(logs: Path, tmp_path: Path):
    tenants = tmp_path / "tenants.json"
    tenants.write_text(json.dumps({"tenants": {"acme": {"api_keys": ["keySECRET55"]}}}))
    with Service(env={"INNDX_TENANTS_FILE": str(tenants)}, log_dir=logs) as svc:
        with connect(svc.ws_url, headers={"Authorization": "Bearer keySECRET55"}) as session:
            session.open()
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            connect(svc.ws_url, headers={"Authorization": "Bearer wrongSECRET66"})
        assert refused.value.status_code == 401
    log = svc.log_text()
    assert "401" in log
    assert "keySECRET55" not in log and "wrongSECRET66" not in log


# ------------------------------------------------------------------------- shutdown


def test_sigterm_ends_open_sessions_with_503_and_1001(logs: Path, site: Site):
    svc = Service(env={"INNDX_IDLE_TIMEOUT": "10m"}, log_dir=logs).start()
    try:
        idle = connect(svc.ws_url)
        idle.open()
        busy = connect(svc.ws_url)
        busy.open(timeout="20s")
        busy.send({"action": "goto", "url": site.url("/slow?seconds=1"), "id": "inflight"})
        wait_for(lambda: site.requests_to("/slow"), 5, what="the goto to reach the site")
        stopper = threading.Thread(target=svc.stop, name="stop-service")
        started = time.monotonic()
        stopper.start()
        fatal = idle.recv(timeout=15)
        assert fatal == {"type": "fatal", "message": fatal["message"], "code": 503}, fatal
        assert idle.expect_close(timeout=15)[0] == 1001
        # the busy session finishes its action, then gets the same
        frames = []
        while True:
            frame = busy.recv(timeout=15)
            frames.append(frame)
            if frame.get("type") == "fatal":
                break
        assert frames[-1]["code"] == 503 and "id" not in frames[-1]
        assert all(frame.get("id") == "inflight" for frame in frames[:-1])
        assert busy.expect_close(timeout=15)[0] == 1001
        stopper.join(40)
        assert not stopper.is_alive()
        assert time.monotonic() - started < 15
        assert svc.returncode == 0, svc.log_tail()
        assert svc.leftovers == []
    finally:
        svc.stop()


def test_sigterm_after_ended_sessions_exits_0_quickly(logs: Path):
    svc = Service(log_dir=logs).start()
    # connections the server closed (refused opens, closed sessions) must not hold up the exit
    for frame in [{"a": 1}, "not json", {"action": "close"}] * 3:
        with connect(svc.ws_url) as session:
            session.send(frame)
            assert session.recv(timeout=10)["code"] == 400
            assert session.expect_close(timeout=10)[0] == 1008
    with connect(svc.ws_url) as session:
        session.open()
        assert session.request({"action": "close"}, timeout=10) == {"action": "closed"}
        assert session.expect_close(timeout=10)[0] == 1000
    wait_for(lambda: active(svc) == 0, 10, what="the sessions to end")
    started = time.monotonic()
    assert svc.stop() == 0
    assert time.monotonic() - started < 5
    assert svc.leftovers == []


# ------------------------------------------------------------------------- expiry


def test_idle_session_expires_with_410_and_1008(start_service):
    svc = start_service(INNDX_IDLE_TIMEOUT="1s")
    with connect(svc.ws_url) as session:
        session.open()
        started = time.monotonic()
        fatal = session.recv(timeout=6)  # part of the scenario: we stay idle
        assert fatal["type"] == "fatal" and fatal["code"] == 410, fatal
        assert 0.9 <= time.monotonic() - started < 5
        assert session.expect_close(timeout=5)[0] == 1008
    wait_for(lambda: active(svc) == 0, 10, what="the expired session to end")


def test_activity_keeps_a_session_from_idling_out(start_service, site: Site):
    svc = start_service(INNDX_IDLE_TIMEOUT="1s")
    with connect(svc.ws_url) as session:
        session.open(timeout="10s")
        # a goto longer than the idle timeout does not count as idle
        reply = session.request({"action": "goto", "url": site.url("/slow?seconds=1.5")}, timeout=10)
        assert reply["action"] == "goto", reply
        assert session.request({"action": "screenshot"}, timeout=5)["screenshot"] is None


def test_max_lifetime_ends_even_a_busy_session_with_410(start_service):
    svc = start_service(INNDX_MAX_LIFETIME="2s")
    with connect(svc.ws_url) as session:
        session.open()
        started = time.monotonic()
        deadline = started + 8
        fatal = None
        while time.monotonic() < deadline:  # keep talking: lifetime is not idleness
            session.send({"action": "screenshot"})
            frame = session.recv(timeout=5)
            if frame.get("type") == "fatal":
                fatal = frame
                break
            assert frame == {"action": "screenshot", "screenshot": None}
            time.sleep(0.3)  # part of the scenario: a steady, chatty client
        assert fatal is not None and fatal["code"] == 410, fatal
        assert 1.9 <= time.monotonic() - started < 5
        assert session.expect_close(timeout=5)[0] == 1008


# ------------------------------------------------------------------------- vanishing clients


def _drop(session) -> None:
    """End the TCP connection without a WebSocket close frame."""
    sock = session.ws.sock
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def test_client_vanishing_ends_the_session(ops: Service):
    wait_for(lambda: active(ops) == 0, 10, what="no active sessions")
    session = connect(ops.ws_url)
    session_id = session.open()
    assert active(ops) == 1
    _drop(session)
    wait_for(lambda: active(ops) == 0, 10, what="the abandoned session to end")
    wait_for(lambda: any("ended" in line for line in _session_lines(ops, session_id)), 10, what="its log line")


def test_client_vanishing_mid_goto_ends_the_session(ops: Service, site: Site):
    wait_for(lambda: active(ops) == 0, 10, what="no active sessions")
    session = connect(ops.ws_url)
    session.open(timeout="10s")
    site.clear()
    session.send({"action": "goto", "url": site.url("/slow?seconds=1")})
    wait_for(lambda: site.requests_to("/slow"), 5, what="the goto to reach the site")
    _drop(session)
    wait_for(lambda: active(ops) == 0, 10, what="the abandoned session to end")
    assert ops.healthz()["ok"] is True
