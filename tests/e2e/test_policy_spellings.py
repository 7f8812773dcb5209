"""The network policy's finer rules, end to end on every client: the ranges Python's tables miss,
an IPv4 allow rule that admits no IPv6 spelling of its address, and refusals that never name the
address a host name resolved to.

The service here allows exactly the test site (``127.0.0.1:<site port>``) and a closed port on
``localhost`` (a host-name rule, so every address of ``localhost`` is allowed there). Each test
has its control: the allowed IPv4 address itself is reached, the allowed name is dialled. The
gateway's own 403 page is asked of a Chrome session's listener directly (local only: its port is
read from the browser's command line).
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import psutil
import pytest

from tests.e2e.conftest import service_env
from tests.support.ports import free_port
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import Session, connect

# Every IPv6 spelling of 127.0.0.1: mapped, compatible, 6to4, NAT64 (well-known and local-use),
# Teredo (server field). The mapped one really reaches 127.0.0.1 on Linux: without the rule
# "an IPv4 allow rule admits IPv4 only" it would load the site.
SPELLINGS = ("[::ffff:127.0.0.1]", "[::127.0.0.1]", "[2002:7f00:1::1]", "[64:ff9b::7f00:1]",
             "[64:ff9b:1::7f00:1]", "[2001:0:7f00:1::1]")
UNROUTED = ("[fec0::1]", "[fec0:1::80]", "[3fff::1]", "[3fff:fff::2]")  # site-local, documentation
ADDRESSES = ("127.0.0.1", "::1", "7f00:1", "loopback")  # what a refusal of "localhost" must not say


@pytest.fixture(scope="module")
def closed_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def refused_port(closed_port: int) -> int:
    """A port no rule allows (not one a browser refuses itself, as it does port 1)."""
    return next(port for port in iter(free_port, None) if port != closed_port)


@pytest.fixture(scope="module")
def allowing(grid, logs, site: Site, closed_port: int) -> Iterator[Service]:
    env = service_env(grid, INNDX_NETWORK_ALLOW=f"127.0.0.1:{site.port} localhost:{closed_port}")
    with Service(env=env, log_dir=logs, private_networks=False) as running:
        yield running


@pytest.fixture(scope="module")
def session(allowing: Service, client: str) -> Iterator[Session]:
    opened = connect(allowing.ws_url)
    opened.open(client=client, timeout="8s", max_retries=0, recv_timeout=60)
    yield opened
    opened.request({"action": "close"}, timeout=30)
    opened.close()


def goto(session: Session, url: str) -> dict:
    return session.request({"action": "goto", "url": url}, timeout=60)


def assert_no_address(message: str) -> None:
    for shown in ADDRESSES:
        assert shown not in message, message


def test_an_ipv4_allow_rule_admits_no_ipv6_spelling_of_its_address(session: Session, site: Site):
    site.clear()
    control = goto(session, site.url("/html?title=allowed"))
    assert control.get("status_code") == 200, control
    for host in SPELLINGS:
        reply = goto(session, f"http://{host}:{site.port}/html?title=spelled")
        assert reply.get("type") == "error" and reply["code"] == 403, (host, reply)
        assert "blocked by the network policy" in reply["message"], reply
    assert [r["query"] for r in site.requests_to("/html")] == ["title=allowed"]


@pytest.mark.clients("chrome", "firefox")
def test_a_page_reaches_the_allowed_address_but_none_of_its_ipv6_spellings(session: Session, site: Site):
    """The egress gateway applies the same rule to what a page fetches."""
    assert goto(session, site.url("/html")).get("status_code") == 200
    site.clear()
    urls = [f"http://127.0.0.1:{site.port}/echo/control"]
    urls += [f"http://{host}:{site.port}/echo/spelled-{n}" for n, host in enumerate(SPELLINGS)]
    script = f"""
        const urls = {json.dumps(urls)};
        return Promise.all(urls.map(u => fetch(u, {{mode: "no-cors"}}).then(() => "answered", () => "failed")));
    """
    reply = session.request({"action": "evaluate", "script": script}, timeout=60)
    assert reply.get("action") == "evaluated", reply
    assert reply["result"][0] == "answered", reply  # the control reached the site
    assert [r["path"] for r in site.requests_to("/echo/control")] == ["/echo/control"]
    assert not [r for r in site.requests if r["path"].startswith("/echo/spelled")], site.requests


def test_site_local_and_documentation_ranges_are_refused(session: Session):
    for host in UNROUTED:
        reply = goto(session, f"http://{host}/")
        assert reply.get("type") == "error" and reply["code"] == 403, (host, reply)
        assert reply["message"].startswith(f"{host}:80 is blocked by the network policy (private)"), reply


def test_a_refusal_names_the_host_not_the_address_it_resolves_to(session: Session, closed_port, refused_port):
    reply = goto(session, f"http://localhost:{refused_port}/html")
    assert reply.get("type") == "error" and reply["code"] == 403, reply
    assert f"localhost:{refused_port} is blocked by the network policy" in reply["message"], reply
    assert_no_address(reply["message"])
    literal = goto(session, f"http://127.0.0.1:{closed_port}/")  # only localhost is allowed there
    assert literal.get("code") == 403 and "(loopback)" in literal["message"], literal  # the client named it


def test_an_unreachable_allowed_name_is_a_502_naming_the_host_only(session: Session, closed_port: int):
    reply = goto(session, f"http://localhost:{closed_port}/")
    assert reply.get("type") == "error" and reply["code"] == 502, reply
    assert "localhost" in reply["message"], reply
    assert_no_address(reply["message"])


@pytest.mark.clients("chrome", "firefox")
def test_a_page_navigation_refused_names_no_address(session: Session, site: Site, refused_port: int):
    """A script's navigation to a refused name: the goto's error and whatever the page shows
    afterwards (the gateway's own 403 page, in Chrome) carry the host only."""
    target = f"http://localhost:{refused_port}/html"
    reply = goto(session, site.url(f"/js-redirect?to={target}"))
    assert reply.get("type") == "error" and reply["code"] == 403, reply
    assert_no_address(reply["message"])
    content = session.request({"action": "content"}, timeout=60)
    if content.get("action") == "content":
        assert_no_address(base64.b64decode(content["content"]).decode("utf-8", "replace"))


def gateway_listener(service: Service) -> tuple[str, int]:
    """The egress listener of the service's one Chrome (its ``--proxy-server``)."""
    for proc in psutil.Process(service.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            for arg in proc.cmdline():
                if arg.startswith("--proxy-server="):
                    parts = urlsplit(arg.partition("=")[2])
                    return parts.hostname or "", parts.port or 80
    raise AssertionError("no browser with a --proxy-server")


def ask(listener: tuple[str, int], target: str) -> bytes:
    with socket.create_connection(listener, timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


@pytest.mark.clients("chrome")
@pytest.mark.local_only
def test_the_gateways_403_page_names_the_host_only(session: Session, allowing: Service, site: Site, refused_port):
    """What a page is shown when the gateway refuses it, asked of the session's own listener."""
    listener = gateway_listener(allowing)
    control = ask(listener, site.url("/html?title=through"))
    assert control.startswith(b"HTTP/1.1 200") and b"through" in control, control[:200]
    answer = ask(listener, f"http://localhost:{refused_port}/")
    assert answer.startswith(b"HTTP/1.1 403"), answer
    text = answer.decode("latin-1")
    assert f"localhost:{refused_port} is blocked by the network policy" in text, text
    assert_no_address(text.split("\r\n\r\n", 1)[1])
