"""The egress gateway: nothing a page does reaches what the network policy denies.

A service on the strict policy allows only the attack site's port (INNDX_NETWORK_ALLOW). A
"secret" server on another loopback port (IPv4 and IPv6) records every connection it gets; pages
on the attack site try every way out against it, under every spelling of loopback. The secret
must see nothing, the session must stay usable, and the gateway's counters must show the
refusals. Control targets on the attack site itself prove each attack vector is live.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import quote

import psutil
import pytest

from tests.e2e.conftest import service_env
from tests.support.attack import AttackSite, Secret, UdpRecorder
from tests.support.ports import free_port, wait_for
from tests.support.proxy import Proxy
from tests.support.service import Service
from tests.support.wsclient import Session, connect

pytestmark = pytest.mark.clients("chrome", "firefox")

HOSTS = ("127.0.0.1", "localhost", "[::1]", "0x7f000001", "[::ffff:127.0.0.1]", "0.0.0.0")


@pytest.fixture(scope="module")
def attack_site() -> Iterator[AttackSite]:
    with AttackSite() as running:
        yield running


@pytest.fixture(scope="module")
def secret() -> Iterator[Secret]:
    with Secret() as running:
        yield running


@pytest.fixture(scope="module")
def proxies():
    with Proxy(username="scraper", password="s3cret") as guarded:
        yield {"guarded": guarded, "dead": free_port()}


@pytest.fixture(scope="module")
def strict(grid, logs, attack_site, proxies, tmp_path_factory) -> Iterator[Service]:
    """The service on the strict policy: only the attack site's port is allowed."""
    path = tmp_path_factory.mktemp("egress-proxies") / "proxies.json"
    path.write_text(json.dumps({"proxies": {
        "guarded": {"url": proxies["guarded"].url_with_credentials},
        "dead": {"url": f"http://127.0.0.1:{proxies['dead']}"},
    }}))
    env = service_env(grid, INNDX_NETWORK_ALLOW=f"127.0.0.1:{attack_site.port}", INNDX_PROXIES_FILE=str(path))
    with Service(env=env, log_dir=logs, private_networks=False) as running:
        yield running


@pytest.fixture(scope="module")
def attacker(strict, client) -> Iterator[Session]:
    session = connect(strict.ws_url)
    session.open(client=client, timeout="8s", max_retries=0, recv_timeout=60)
    yield session
    session.request({"action": "close"}, timeout=30)
    session.close()


def refusals(service: Service) -> dict[str, float]:
    found = {}
    for line in service.metrics().splitlines():
        match = re.match(r'inndx_egress_refusals_total\{reason="(\w+)"\} ([0-9.e+]+)', line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


def total(counts: dict[str, float]) -> float:
    return sum(counts.values())


def targets(port: int) -> list[str]:
    return [f"http://{host}:{port}/" for host in HOSTS]


def usable(session: Session, attack_site: AttackSite) -> None:
    reply = session.request({"action": "goto", "url": attack_site.url("/hit/ok")}, timeout=60)
    assert reply.get("status_code") == 200, reply


def test_sub_resources_and_scripts_never_reach_a_denied_address(attacker, strict, attack_site, secret):
    before = refusals(strict)
    control = attack_site.url("/hit/control-")
    url = attack_site.url("/page?targets=" + ",".join([*targets(secret.port), control]))
    reply = attacker.request({"action": "goto", "url": url}, timeout=60)
    assert reply.get("status_code") == 200, reply
    done = attacker.request({"action": "evaluate", "script": "return window.__done"}, timeout=60)
    assert done == {"action": "evaluated", "result": "done"}
    assert secret.accepted == []
    hits = {r["path"] for r in attack_site.requests if r["path"].startswith("/hit/control-")}
    for vector in ("frame", "img", "script", "css", "fetch", "xhr", "beacon", "ws", "events"):
        assert f"/hit/control-{vector}" in hits, f"the control {vector} never arrived: the vector is dead"
    # Each browser refuses some forms itself (Firefox never sends 0.0.0.0 out, say); the rest
    # reach the gateway and are refused there, at least one per spelling of loopback.
    after = wait_for(lambda: (r := refusals(strict)) and total(r) >= total(before) + len(HOSTS) - 1 and r,
                     20, what="refusals counted")
    assert after.get("loopback", 0) > before.get("loopback", 0)
    assert secret.accepted == []
    usable(attacker, attack_site)


@pytest.mark.parametrize("host", HOSTS)
def test_page_navigations_never_reach_a_denied_address(attacker, strict, attack_site, secret, host, client):
    target = f"http://{host}:{secret.port}/"
    redirect = attack_site.url(f"/redirect?to={target}redirect")
    for how, url in (
        ("location", attack_site.url(f"/nav?to={target}nav")),
        ("meta refresh", attack_site.url(f"/meta?to={target}meta")),
        ("form POST", attack_site.url(f"/form?to={target}form")),
        ("server redirect after a script's navigation", attack_site.url(f"/nav?to={quote(redirect)}")),
    ):
        reply = attacker.request({"action": "goto", "url": url}, timeout=60)
        assert reply.get("type") == "error", (how, reply)
        if client == "firefox" and how == "form POST" and host in ("0.0.0.0", "[::ffff:127.0.0.1]"):
            # Firefox blocks these POSTs itself, and no event tells the goto: it times out.
            assert reply["code"] in (403, 504), reply
        else:
            assert reply["code"] == 403, (how, reply)
        assert secret.accepted == [], how


def test_popups_never_reach_a_denied_address(attacker, strict, attack_site, secret):
    usable(attacker, attack_site)
    for host in HOSTS:
        before = total(refusals(strict))
        script = f"window.__popup = window.open({json.dumps(f'http://{host}:{secret.port}/popup')}); return 1"
        assert attacker.request({"action": "evaluate", "script": script}).get("result") == 1
        wait_for(lambda b=before: total(refusals(strict)) > b, 20, what=f"the gateway refusing the popup to {host}")
        assert attacker.request({"action": "evaluate", "script": "window.__popup.close(); return 1"}).get("result") == 1
    assert secret.accepted == []
    usable(attacker, attack_site)


def test_goto_and_server_redirects_are_refused_with_403(attacker, attack_site, secret):
    for host in HOSTS:
        for url in (f"http://{host}:{secret.port}/", attack_site.url(f"/redirect?to=http://{host}:{secret.port}/x")):
            reply = attacker.request({"action": "goto", "url": url}, timeout=60)
            assert reply.get("type") == "error" and reply["code"] == 403, (url, reply)
    assert secret.accepted == []
    usable(attacker, attack_site)


def test_cloud_metadata_address_is_refused_by_the_gateway(attacker, strict, attack_site):
    before = refusals(strict)
    usable(attacker, attack_site)
    script = "return fetch('http://169.254.169.254/latest/meta-data/').then(r => r.status, e => 'failed')"
    assert attacker.request({"action": "evaluate", "script": script}, timeout=60)["result"] in ("failed", 403)
    after = wait_for(lambda: (r := refusals(strict)).get("link_local", 0) > before.get("link_local", 0) and r,
                     20, what="a link_local refusal")
    assert after["link_local"] == before.get("link_local", 0) + 1


def test_webrtc_sends_no_udp_and_the_browser_holds_no_side_socket(attacker, strict, attack_site, grid):
    usable(attacker, attack_site)
    with UdpRecorder() as stun:
        script = """
        return (async () => {
          const pc = new RTCPeerConnection({iceServers: [{urls: "stun:127.0.0.1:PORT"}]});
          window.__pc = pc;
          pc.createDataChannel("x");
          await pc.setLocalDescription(await pc.createOffer());
          await new Promise(r => { if (pc.iceGatheringState === "complete") r();
                                   pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r();
                                   setTimeout(r, 5000); });
          return pc.iceGatheringState;
        })();
        """.replace("PORT", str(stun.port))
        reply = attacker.request({"action": "evaluate", "script": script}, timeout=60)
        assert reply.get("action") == "evaluated", reply
        if grid is None:  # a Grid's browsers are the node's processes, not the service's
            browser, ours = sockets(strict)
        assert stun.datagrams == 0
    if grid is None:
        # Every connection the browser (or its driver) holds ends at a socket of the service's
        # own processes: the gateway, the driver, the browser's debugging port. Nothing goes direct.
        remote = [c for c in browser if c.raddr]
        assert remote and all(tuple(c.raddr) in ours for c in remote), remote
    attacker.request({"action": "evaluate", "script": "window.__pc.close(); return 1"}, timeout=30)


def sockets(service: Service) -> tuple[list, set]:
    """The inet sockets of the service's browser processes (drivers included), and the local
    addresses of every socket of the service's own process tree."""
    browser, ours = [], set()
    root = psutil.Process(service.pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            connections = proc.net_connections(kind="inet")
            if any(name in proc.name().lower() for name in ("chrom", "firefox", "geckodriver")):
                browser.extend(connections)
        except psutil.Error:
            continue
        ours.update(tuple(c.laddr) for c in connections)
    return browser, ours


# ------------------------------------------------------------------------------- upstream proxies


def test_upstream_credentials_come_from_the_gateway_and_never_reach_a_site(strict, attack_site, proxies, client):
    proxy = proxies["guarded"]
    proxy.clear()
    with connect(strict.ws_url) as session:
        session.open(client=client, proxies=["guarded"], timeout="20s", max_retries=0, recv_timeout=60)
        reply = session.request({"action": "goto", "url": attack_site.url("/auth")}, timeout=60)
        assert reply.get("status_code") == 401, reply
        ok = session.request({"action": "goto", "url": attack_site.url("/hit/proxied")}, timeout=60)
        assert ok.get("status_code") == 200, ok
        session.request({"action": "close"}, timeout=30)
    assert attack_site.url("/auth") in [r["url"] for r in proxy.requests]
    assert proxy.rejected == []
    for request in attack_site.requests:
        names = {name.lower() for name, _ in request["headers"]}
        assert not names & {"authorization", "proxy-authorization"}, request
    assert "s3cret" not in strict.log_text()


def test_a_dead_upstream_proxy_is_a_502_error_frame(strict, attack_site, client):
    with connect(strict.ws_url) as session:
        session.open(client=client, proxies=["dead"], timeout="20s", max_retries=0, recv_timeout=60)
        reply = session.request({"action": "goto", "url": attack_site.url("/hit/dead")}, timeout=60)
        assert reply.get("type") == "error" and reply["code"] == 502, reply
        assert "dead" in reply["message"] and "unreachable" in reply["message"]
        assert session.request({"action": "close"}, timeout=30) == {"action": "closed"}
