"""Browsers go out through the operator's proxy named in the open frame, with credentials."""

from __future__ import annotations

import json

import pytest

from tests.support.proxy import Proxy
from tests.support.service import Service
from tests.support.wsclient import connect

pytestmark = pytest.mark.clients("chrome", "firefox")


@pytest.fixture(scope="module")
def proxies():
    with Proxy() as open_proxy, Proxy(username="scraper", password="s3cret") as guarded:
        yield {"open": open_proxy, "guarded": guarded}


@pytest.fixture(scope="module")
def proxied(proxies, grid, tmp_path_factory, logs):
    from tests.e2e.conftest import service_env

    path = tmp_path_factory.mktemp("browser-proxies") / "proxies.json"
    path.write_text(json.dumps({"proxies": {
        "open": {"url": proxies["open"].url},
        "guarded": {"url": proxies["guarded"].url_with_credentials},
    }}))
    with Service(env=service_env(grid, INNDX_PROXIES_FILE=str(path)), log_dir=logs) as service:
        yield service


@pytest.mark.parametrize("proxy_id", ["open", "guarded"])
def test_browser_goes_through_the_proxy(client, proxied: Service, proxies, site, proxy_id):
    proxy = proxies[proxy_id]
    proxy.clear()
    url = site.url(f"/html?title=Proxied-{client}")
    with connect(proxied.ws_url) as session:
        session.open(client=client, proxies=[proxy_id], recv_timeout=60)
        reply = session.request({"action": "goto", "url": url}, timeout=60)
        assert reply.get("status_code") == 200, reply
        assert reply["url"] == url
        assert url in [request["url"] for request in proxy.requests]
        assert session.request({"action": "close"}, timeout=30) == {"action": "closed"}
    frames = json.dumps(reply)
    assert "s3cret" not in frames and "scraper" not in frames
    assert "s3cret" not in proxied.log_text()
