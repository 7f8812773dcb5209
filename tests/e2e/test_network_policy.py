"""The network policy: by default a goto may not reach loopback, private, link-local or other
non-public addresses (error 403, refused before any connection), and only http(s) URLs are
accepted (error 400). INNDX_ALLOW_PRIVATE_NETWORKS=1 lifts the address rule.

Every test site here is on loopback, so with the policy on no real first hop can succeed. The
per-hop check is still reached end to end through an operator proxy: the target URL is a public
address literal (allowed; never contacted, because the request goes to the proxy on loopback),
and the fake proxy answers it with a redirect to loopback, which must be refused."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import pytest

from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import Session, connect

pytestmark = pytest.mark.clientless

PUBLIC = "93.184.216.34"  # a global address, only ever named, never contacted


class RedirectingProxy:
    """A forward proxy that forwards nothing: a request for the public host gets a 302 to
    ``target``; any other request gets 200 ``leaked`` (and is recorded, so a test can fail)."""

    def __init__(self) -> None:
        self.target = ""
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests.append(self.path)
                if urlsplit(self.path).hostname == PUBLIC:
                    status, headers, body = 302, [("Location", owner.target)], b"moved\n"
                else:
                    status, headers, body = 200, [("Content-Type", "text/plain")], b"leaked\n"
                self.send_response_only(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture(scope="module")
def redirecting_proxy() -> Iterator[RedirectingProxy]:
    with RedirectingProxy() as running:
        yield running


@pytest.fixture(scope="module")
def guarded(redirecting_proxy: RedirectingProxy, tmp_path_factory: pytest.TempPathFactory, logs: Path):
    """The service with the default network policy (private networks not allowed)."""
    path = tmp_path_factory.mktemp("policy") / "proxies.json"
    path.write_text(json.dumps({"proxies": {"redirector": {"url": redirecting_proxy.url}}}))
    env = {"INNDX_PROXIES_FILE": str(path), "INNDX_ALLOW_PRIVATE_NETWORKS": None, "INNDX_IDLE_TIMEOUT": "10m"}
    with Service(env=env, log_dir=logs, private_networks=False) as running:  # type: ignore[arg-type]
        yield running


@pytest.fixture()
def guarded_session(guarded: Service) -> Iterator[Session]:
    with connect(guarded.ws_url) as session:
        session.open(timeout="5s", max_retries=2)
        yield session


def loopback_targets(site: Site) -> list[str]:
    port = site.port
    return [
        f"http://127.0.0.1:{port}/html",
        f"http://localhost:{port}/html",
        f"http://LOCALHOST:{port}/html",
        f"http://[::1]:{port}/html",
        f"http://[::ffff:127.0.0.1]:{port}/html",
        f"http://127.1:{port}/html",
        f"http://2130706433:{port}/html",  # 127.0.0.1 as one decimal number
        f"http://0x7f000001:{port}/html",
        f"http://0.0.0.0:{port}/html",
        f"http://user:pass@127.0.0.1:{port}/html",
        f"https://127.0.0.1:{port}/html",
    ]


NON_PUBLIC = [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata, link-local
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://224.0.0.1/",  # multicast
    "http://240.0.0.1/",  # reserved
    "http://255.255.255.255/",
    "http://192.0.2.1/",  # documentation
]


def test_loopback_targets_are_403_without_a_request(guarded_session: Session, site: Site):
    site.clear()
    for url in loopback_targets(site):
        started = time.monotonic()
        reply = guarded_session.request({"action": "goto", "url": url, "id": url}, timeout=10)
        assert reply["type"] == "error" and reply["code"] == 403 and reply["id"] == url, reply
        assert time.monotonic() - started < 1.0, url  # refused, not retried
    assert site.requests == []


@pytest.mark.parametrize("url", NON_PUBLIC)
def test_non_public_addresses_are_403_without_a_connection_attempt(guarded_session: Session, url):
    started = time.monotonic()
    reply = guarded_session.request({"action": "goto", "url": url}, timeout=10)
    assert reply["type"] == "error" and reply["code"] == 403, reply
    # a connection attempt to an unreachable address would take the 5 s timeout, three times
    assert time.monotonic() - started < 1.0


def test_refusal_is_an_error_not_fatal(guarded_session: Session, site: Site):
    assert guarded_session.request({"action": "goto", "url": site.url("/html")}, timeout=10)["code"] == 403
    assert guarded_session.request({"action": "content"}, timeout=10)["code"] == 409  # nothing was loaded
    assert guarded_session.request({"action": "screenshot"}, timeout=10)["screenshot"] is None


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "data:text/html,<h1>hi</h1>",
        "javascript:alert(1)",
        "ftp://127.0.0.1/",
        "chrome://settings",
        "about:blank",
        "view-source:http://127.0.0.1/",
        "ws://127.0.0.1/",
        "//127.0.0.1/html",
        "http:/127.0.0.1/html",
    ],
)
def test_non_http_schemes_are_400(guarded_session: Session, service: Service, url):
    reply = guarded_session.request({"action": "goto", "url": url}, timeout=10)
    assert reply["type"] == "error" and reply["code"] == 400 and "$.url" in reply["message"], reply
    # the scheme rule holds whatever the address policy
    with connect(service.ws_url) as open_policy:
        open_policy.open()
        reply = open_policy.request({"action": "goto", "url": url}, timeout=10)
        assert reply["type"] == "error" and reply["code"] == 400, reply


def test_redirect_hop_to_loopback_is_403(guarded: Service, redirecting_proxy: RedirectingProxy, site: Site):
    redirecting_proxy.target = site.url("/html?title=Leaked")
    redirecting_proxy.requests.clear()
    site.clear()
    with connect(guarded.ws_url) as session:
        session.open(proxies=["redirector"], max_retries=0, timeout="20s")  # a loaded machine is slow
        reply = session.request({"action": "goto", "url": f"http://{PUBLIC}/start"}, timeout=30)
        assert reply["type"] == "error" and reply["code"] == 403, reply
    # the first hop was allowed (it reached the proxy), the second was refused before it was sent
    assert redirecting_proxy.requests == [f"http://{PUBLIC}/start"]
    assert site.requests == []


def test_redirect_hop_to_a_private_address_is_403(guarded: Service, redirecting_proxy: RedirectingProxy):
    redirecting_proxy.target = "http://10.1.2.3/internal"
    redirecting_proxy.requests.clear()
    with connect(guarded.ws_url) as session:
        session.open(proxies=["redirector"], max_retries=0, timeout="20s")  # a loaded machine is slow
        reply = session.request({"action": "goto", "url": f"http://{PUBLIC}/start"}, timeout=30)
        assert reply["type"] == "error" and reply["code"] == 403, reply
    assert redirecting_proxy.requests == [f"http://{PUBLIC}/start"]


def test_private_networks_allowed_reaches_the_same_urls(open_session, site: Site):
    session = open_session("standard", max_retries=0)
    for url in (site.url("/html"), site.url("/html", host="localhost"), f"http://127.1:{site.port}/html"):
        reply = session.request({"action": "goto", "url": url}, timeout=10)
        assert reply["action"] == "goto" and reply["status_code"] == 200, reply
