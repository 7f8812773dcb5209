"""What is particular to the standard client and the session layer around it: content and
screenshot, the actions it does not support, its per-session cookie jar, max_retries, the
operator's proxies, and the headers middleware. (goto's fields are in test_goto.py.)"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.proxy import Proxy
from tests.support.service import Service
from tests.support.site import Site, html_page
from tests.support.wsclient import Session, connect

pytestmark = pytest.mark.clients("standard")


def decode(b64: str | None) -> bytes:
    return base64.b64decode(b64) if b64 is not None else b""


def echo(reply: dict) -> dict:
    assert reply["action"] == "goto" and reply["status_code"] == 200, reply
    return json.loads(decode(reply["body"]))


def header_values(headers: list[list[str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name.lower()]


def goto(session: Session, url: str, timeout: float = 20, **fields) -> dict:
    return session.request({"action": "goto", "url": url, **fields}, timeout=timeout)


def key() -> str:
    return uuid.uuid4().hex[:12]


# ------------------------------------------------------------------------- content, screenshot


def test_content_before_any_goto_is_409(client, open_session):
    session = open_session(client)
    reply = session.request({"action": "content", "id": "c"}, timeout=10)
    assert reply["type"] == "error" and reply["code"] == 409 and reply["id"] == "c", reply


def test_content_is_the_last_goto_body(client, page, site: Site):
    goto(page, site.url("/html?title=First"))
    second = goto(page, site.url("/json"))
    content = page.request({"action": "content"}, timeout=10)
    assert set(content) == {"action", "content"}
    assert content["content"] == second["body"]
    assert json.loads(decode(content["content"])) == {"hello": "world", "n": 1}
    goto(page, site.url("/html?title=Again"))
    assert decode(page.request({"action": "content"}, timeout=10)["content"]) == html_page("Again")


def test_content_is_the_raw_bytes_not_a_dom(client, page, site: Site):
    goto(page, site.url("/binary"))
    assert decode(page.request({"action": "content"}, timeout=10)["content"]) == bytes(range(256))


def test_content_after_an_empty_body_is_empty(client, page, site: Site):
    reply = goto(page, site.url("/status/204"))
    assert reply["status_code"] == 204 and reply["body"] is None
    assert page.request({"action": "content"}, timeout=10) == {"action": "content", "content": ""}


def test_content_keeps_the_last_successful_goto_after_an_error(client, page, site: Site):
    ok = goto(page, site.url("/html?title=Kept"))
    failed = goto(page, site.url("/reset"))
    assert failed["type"] == "error" and failed["code"] == 502, failed
    assert page.request({"action": "content"}, timeout=10)["content"] == ok["body"]


def test_content_of_an_error_status_page(client, page, site: Site):
    reply = goto(page, site.url("/status/503"))
    assert reply["status_code"] == 503
    assert decode(page.request({"action": "content"}, timeout=10)["content"]) == b"status 503\n"


def test_screenshot_is_null(client, page, site: Site):
    assert page.request({"action": "screenshot"}, timeout=10) == {"action": "screenshot", "screenshot": None}
    goto(page, site.url("/html"))
    assert page.request({"action": "screenshot", "id": 5}, timeout=10) == {
        "action": "screenshot", "screenshot": None, "id": 5}


@pytest.mark.parametrize(
    "frame",
    [
        {"action": "click", "selector": "#go"},
        {"action": "fill", "selector": "#name", "value": "x"},
        {"action": "evaluate", "script": "return 1"},
    ],
)
def test_browser_actions_are_501(client, page, site: Site, frame):
    goto(page, site.url("/form"))
    reply = page.request({**frame, "id": "b"}, timeout=10)
    assert reply["type"] == "error" and reply["code"] == 501 and reply["id"] == "b", reply
    # the session goes on
    assert page.request({"action": "screenshot"}, timeout=10)["screenshot"] is None


def test_browser_actions_are_501_even_before_a_goto(client, open_session):
    session = open_session(client)
    for frame in ({"action": "click", "selector": "a"}, {"action": "evaluate", "script": "return 1"}):
        assert session.request(frame, timeout=10)["code"] == 501


def test_connect_method_is_501_and_sends_nothing(client, page, site: Site):
    site.clear()
    reply = goto(page, site.url("/echo"), method="CONNECT")
    assert reply["type"] == "error" and reply["code"] == 501, reply
    assert site.requests_to("/echo") == []


# ------------------------------------------------------------------------- cookie jar


def test_cookies_persist_across_gotos_within_a_session(client, open_session, site: Site):
    session = open_session(client)
    name = f"jar{key()}"
    goto(session, site.url(f"/cookies/set?name={name}&value=kept"))
    assert echo(goto(session, site.url("/cookies/echo")))["cookies"].get(name) == "kept"
    # still there on a later goto, and overwritten by a new Set-Cookie
    goto(session, site.url("/html"))
    goto(session, site.url(f"/cookies/set?name={name}&value=changed"))
    assert echo(goto(session, site.url("/cookies/echo")))["cookies"].get(name) == "changed"


def test_cookies_set_on_redirect_hops_are_kept(client, open_session, site: Site):
    session = open_session(client)
    goto(session, site.url("/chain/2"))
    cookies = echo(goto(session, site.url("/cookies/echo")))["cookies"]
    assert {"chain2": "v2", "chain1": "v1", "chain0": "v0"}.items() <= cookies.items()


def test_cookie_jar_is_not_shared_between_sessions(client, open_session, site: Site):
    first = open_session(client)
    second = open_session(client)
    name = f"own{key()}"
    goto(first, site.url(f"/cookies/set?name={name}&value=first"))
    assert echo(goto(second, site.url("/cookies/echo")))["cookies"].get(name) is None
    goto(second, site.url(f"/cookies/set?name={name}&value=second"))
    assert echo(goto(first, site.url("/cookies/echo")))["cookies"][name] == "first"
    assert echo(goto(second, site.url("/cookies/echo")))["cookies"][name] == "second"
    # a new session starts with an empty jar
    third = open_session(client)
    assert echo(goto(third, site.url("/cookies/echo")))["raw"] is None


def test_expired_cookie_is_removed_from_the_jar(client, open_session, site: Site):
    session = open_session(client)
    goto(session, site.url("/cookies/set?name=gone&value=1"))
    goto(session, site.url("/cookies/set?name=gone&value=x&attrs=Path=/;%20Max-Age=0"))
    assert "gone" not in echo(goto(session, site.url("/cookies/echo")))["cookies"]


# ------------------------------------------------------------------------- max_retries


@pytest.mark.parametrize("fail, max_retries, attempts", [(2, 3, 3), (3, 3, 4), (1, 1, 2), (0, 0, 1)])
def test_retries_until_success(client, open_session, site: Site, fail, max_retries, attempts):
    session = open_session(client, max_retries=max_retries, timeout="10s")
    k = key()
    reply = goto(session, site.url(f"/flaky?key={k}&fail={fail}"))
    assert reply["action"] == "goto" and reply["status_code"] == 200, reply
    assert site.count(k) == attempts
    # /counter is not counted itself: the site saw exactly `attempts` requests with this key
    counter = echo(goto(session, site.url(f"/counter?key={k}")))
    assert counter == {"key": k, "count": attempts}


@pytest.mark.parametrize("fail, max_retries, attempts", [(1, 0, 1), (5, 2, 3), (4, 3, 4)])
def test_retries_exhausted_is_502(client, open_session, site: Site, fail, max_retries, attempts):
    session = open_session(client, max_retries=max_retries, timeout="10s")
    k = key()
    started = time.monotonic()
    reply = goto(session, site.url(f"/flaky?key={k}&fail={fail}"), id="r")
    assert reply["type"] == "error" and reply["code"] == 502 and reply["id"] == "r", reply
    assert site.count(k) == attempts
    if max_retries:
        assert f"after {attempts} attempts" in reply["message"]
    else:
        assert time.monotonic() - started < 1.5  # no backoff without retries
    # an upstream failure is not fatal
    assert session.request({"action": "screenshot"}, timeout=10)["screenshot"] is None


def test_default_max_retries_is_three(client, open_session, site: Site):
    session = open_session(client, timeout="10s")
    k = key()
    reply = goto(session, site.url(f"/flaky?key={k}&fail=10"))
    assert reply["code"] == 502 and site.count(k) == 4


def test_http_error_statuses_are_not_retried(client, open_session, site: Site):
    session = open_session(client, max_retries=3)
    site.clear()
    assert goto(session, site.url("/status/503"))["status_code"] == 503
    assert goto(session, site.url("/status/500"))["status_code"] == 500
    assert len(site.requests_to("/status/503")) == 1 and len(site.requests_to("/status/500")) == 1


def test_timeouts_are_retried(client, open_session, site: Site):
    session = open_session(client, max_retries=1, timeout="300ms")
    site.clear()
    reply = goto(session, site.url("/slow?seconds=2"))
    assert reply["type"] == "error" and reply["code"] == 504, reply
    assert len(site.requests_to("/slow")) == 2


# ------------------------------------------------------------------------- proxies


@pytest.fixture(scope="module")
def proxy() -> Iterator[Proxy]:
    with Proxy() as running:
        yield running


@pytest.fixture(scope="module")
def proxied(proxy: Proxy, tmp_path_factory: pytest.TempPathFactory, logs: Path) -> Iterator[Service]:
    """A service with a proxies file: ``open`` (any tenant), ``acme-only``, ``others-only``."""
    path = tmp_path_factory.mktemp("proxies") / "proxies.json"
    path.write_text(json.dumps({"proxies": {
        "open": {"url": proxy.url},
        "acme-only": {"url": proxy.url, "tenants": ["acme"]},
        "others-only": {"url": proxy.url, "tenants": ["globex", "initech"]},
    }}))
    with Service(env={"INNDX_PROXIES_FILE": str(path), "INNDX_IDLE_TIMEOUT": "10m"}, log_dir=logs) as running:
        yield running


@pytest.mark.parametrize("proxy_id", ["open", "acme-only"])
def test_configured_proxy_is_used(client, proxied: Service, proxy: Proxy, site: Site, proxy_id):
    proxy.clear()
    site.clear()
    with connect(proxied.ws_url, tenant="acme") as session:
        session.open(client=client, proxies=[proxy_id], max_retries=0)
        url = site.url(f"/echo?via={proxy_id}")
        reply = goto(session, url)
        assert echo(reply)["query"] == f"via={proxy_id}"
        assert {"method": "GET", "url": url} in proxy.requests
        assert len(site.requests_to("/echo")) == 1


def test_proxy_url_and_credentials_never_reach_the_client(client, proxied: Service, proxy: Proxy, site: Site):
    with connect(proxied.ws_url, tenant="acme") as session:
        session.open(client=client, proxies=["open"])
        reply = goto(session, site.url("/echo"))
        assert str(proxy.port) not in json.dumps({k: v for k, v in reply.items() if k != "body"})


def test_no_proxy_without_proxies_in_the_open_frame(client, proxied: Service, proxy: Proxy, site: Site):
    proxy.clear()
    with connect(proxied.ws_url, tenant="acme") as session:
        session.open(client=client)
        echo(goto(session, site.url("/echo")))
    assert proxy.requests == []


def test_unknown_proxy_id_is_fatal_400(client, proxied: Service):
    with connect(proxied.ws_url, tenant="acme") as session:
        session.send({"client": client, "proxies": ["open", "nowhere"]})
        fatal = session.recv(timeout=10)
        assert fatal["type"] == "fatal" and fatal["code"] == 400, fatal
        assert "nowhere" in fatal["message"]
        assert session.expect_close(timeout=10)[0] == 1008


def test_proxy_not_allowed_for_the_tenant_is_fatal_403(client, proxied: Service):
    with connect(proxied.ws_url, tenant="acme") as session:
        session.send({"client": client, "proxies": ["others-only"]})
        fatal = session.recv(timeout=10)
        assert fatal["type"] == "fatal" and fatal["code"] == 403, fatal
        assert session.expect_close(timeout=10)[0] == 1008
    with connect(proxied.ws_url, tenant="globex") as session:
        session.open(client=client, proxies=["others-only"])


def test_unknown_proxy_without_a_proxies_file_is_fatal_400(client, service: Service):
    with connect(service.ws_url) as session:
        session.send({"client": client, "proxies": ["open"]})
        fatal = session.recv(timeout=10)
        assert fatal["type"] == "fatal" and fatal["code"] == 400, fatal


# ------------------------------------------------------------------------- middleware


def test_headers_middleware_adds_headers_to_every_goto(client, open_session, site: Site):
    middleware = [
        {"type": "headers", "headers": [["X-Tenant-Tag", "blue"], ["X-Both", "from-middleware"]]},
        {"type": "headers", "headers": [["X-Second", "2"]]},
    ]
    session = open_session(client, middleware=middleware)
    for path in ("/echo/one", "/echo/two"):
        headers = echo(goto(session, site.url(path)))["headers"]
        assert header_values(headers, "X-Tenant-Tag") == ["blue"]
        assert header_values(headers, "X-Both") == ["from-middleware"]
        assert header_values(headers, "X-Second") == ["2"]


def test_a_gotos_own_header_wins_over_middleware(client, open_session, site: Site):
    middleware = [{"type": "headers", "headers": [["X-Both", "from-middleware"], ["X-Keep", "k"]]}]
    session = open_session(client, middleware=middleware)
    headers = echo(goto(session, site.url("/echo"), headers=[["x-both", "from-goto"]]))["headers"]
    assert header_values(headers, "X-Both") == ["from-goto"]
    assert header_values(headers, "X-Keep") == ["k"]
    # the override is for that goto only
    headers = echo(goto(session, site.url("/echo")))["headers"]
    assert header_values(headers, "X-Both") == ["from-middleware"]


def test_middleware_can_set_the_user_agent(client, open_session, site: Site):
    session = open_session(client, middleware=[{"type": "headers", "headers": [["User-Agent", "mw-agent/1"]]}])
    assert header_values(echo(goto(session, site.url("/echo")))["headers"], "User-Agent") == ["mw-agent/1"]


def test_middleware_headers_follow_redirects(client, open_session, site: Site):
    session = open_session(client, middleware=[{"type": "headers", "headers": [["X-Tag", "t"]]}])
    site.clear()
    reply = goto(session, site.url("/redirect/302?to=/echo/landed"))
    assert header_values(echo(reply)["headers"], "X-Tag") == ["t"]
    assert header_values(site.requests_to("/redirect/302")[0]["headers"], "X-Tag") == ["t"]
