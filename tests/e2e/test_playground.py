"""The playground at ``/``: static files served by the service, driven in a real headless Chromium.

The page authenticates with the ``tenant`` / ``api_key`` query parameters of the WebSocket URL,
which the service accepts only with ``INNDX_TENANT_QUERY=1``, under the tenants file's rules.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.support import playground
from tests.support.service import Service
from tests.support.site import COOKIES_SET, Site
from tests.support.wsclient import http_get, raw_upgrade

TENANTS = {"tenants": {"play": {"api_keys": ["k-play"], "max_sessions": 5}, "free": {}}}


@pytest.fixture(scope="module")
def querying(tmp_path_factory: pytest.TempPathFactory, logs: Path, grid) -> Iterator[Service]:
    """A service that takes the tenant from the query, with a tenants file that has API keys."""
    from tests.e2e.conftest import service_env

    tenants = tmp_path_factory.mktemp("playground") / "tenants.json"
    tenants.write_text(json.dumps(TENANTS))
    env = service_env(grid, INNDX_TENANT_QUERY="1", INNDX_TENANTS_FILE=str(tenants))
    with Service(env=env, log_dir=logs) as running:
        yield running


@pytest.fixture(scope="module")
def driver() -> Iterator:
    with playground.chromium() as chrome:
        yield chrome


@pytest.mark.local_only
@pytest.mark.clients("chrome")
def test_goto_and_screenshot_from_the_page(querying: Service, site: Site, driver, client):
    playground.load(driver, querying.url + "/")
    assert playground.open_session(driver, "play", "k-play", client) == "open"
    target = site.url("/redirect/302?to=/cookies/set")
    playground.send(driver, "goto", url=target)

    assert driver.find_element(By.ID, "goto-status").text == "200"
    assert driver.find_element(By.ID, "goto-url").text == site.url("/cookies/set")
    assert driver.find_element(By.ID, "goto-content-type").text == "text/html"
    headers = playground.table(driver, "goto-headers")
    assert ["Cache-Control", "no-store"] in headers
    assert [name for name, _ in headers].count("Set-Cookie") == len(COOKIES_SET)
    cookies = {row[0]: row for row in playground.table(driver, "goto-cookies")}
    assert {"a", "b", "c", "d", "e", "f", "hop302"} <= set(cookies)
    assert cookies["a"][5] == "true" and cookies["b"][7] == "Strict"
    redirects = playground.table(driver, "goto-redirects")
    assert redirects == [["1", target, site.url("/cookies/set"), "server", "temporary"]]

    playground.send(driver, "screenshot")
    image = driver.find_element(By.ID, "screenshot")
    assert image.is_displayed()
    src = image.get_attribute("src")
    assert src.startswith("data:image/png;base64,")
    assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 100

    playground.send(driver, "click", selector="#nothing-here")
    assert driver.find_element(By.ID, "action-error").text.startswith("error 404:")
    log = [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#log li.sent, #log li.received")]
    assert any('"action":"goto"' in line for line in log) and any('"session_id"' in line for line in log)

    playground.send(driver, "close")
    status = driver.find_element(By.ID, "status")
    playground.WebDriverWait(driver, 10).until(lambda _: status.get_attribute("data-state") == "idle")


@pytest.mark.local_only
@pytest.mark.clients("chrome")
def test_any_action_can_be_sent_as_its_json_frame(querying: Service, site: Site, driver, client):
    """The actions beyond the seed's have no form of their own: their frame is sent as it is
    written, the service checks it as any other, and the reply is shown."""
    playground.load(driver, querying.url + "/")
    assert playground.open_session(driver, "play", "k-play", client) == "open"
    playground.send(driver, "goto", url=site.url("/html?title=frames"))
    playground.send(driver, "frame", frame='{"action": "wait_for", "selector": "body", "state": "attached"}')
    assert json.loads(driver.find_element(By.ID, "result-text").text)["action"] == "waited"
    playground.send(driver, "frame", frame='{"action": "har"}')
    archive = json.loads(driver.find_element(By.ID, "result-text").text)["har"]
    assert site.url("/html?title=frames") in [entry["request"]["url"] for entry in archive["log"]["entries"]]
    playground.send(driver, "frame", frame='{"action": "press"}')  # the service's own check: 400
    assert driver.find_element(By.ID, "action-error").text.startswith("error 400:")
    sent = len(driver.find_elements(By.CSS_SELECTOR, "#log li.sent"))
    Select(driver.find_element(By.ID, "action")).select_by_value("frame")
    field = driver.find_element(By.ID, "frame")
    field.clear()
    field.send_keys("[1, 2]")
    driver.find_element(By.ID, "send").click()  # not an object: refused on the page, nothing sent
    assert driver.find_element(By.ID, "action-error").text == "not sent: the frame is not a JSON object"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#log li.sent")) == sent
    playground.send(driver, "close")


@pytest.mark.local_only
@pytest.mark.clients("chrome")
def test_a_wrong_api_key_is_refused_on_the_page(querying: Service, driver, client):
    playground.load(driver, querying.url + "/")
    assert playground.open_session(driver, "play", "wrong", "standard") == "error"
    assert "refused" in driver.find_element(By.ID, "status").text


@pytest.mark.clientless
def test_the_page_and_its_files_load_nothing_from_elsewhere(service: Service):
    status, headers, body = http_get(service.url + "/")
    assert status == 200
    names = {name.lower(): value for name, value in headers}
    assert names["content-type"].startswith("text/html")
    assert "default-src 'none'" in names["content-security-policy"]
    assert "connect-src 'self'" in names["content-security-policy"]
    links = _links(body.decode())
    assert set(links) == {"/static/playground.css", "/static/playground.js", "/asyncapi.yaml"}
    for path in ("/static/playground.js", "/static/playground.css"):
        status, _, asset = http_get(service.url + path)
        assert status == 200 and not re.search(rb"https?://|url\(|@import|import\s*\(", asset), path


def _links(html: str) -> list[str]:
    """Every src and href of the page."""
    found: list[str] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.extend(value for name, value in attrs if name in ("src", "href") and value)

    Collector().feed(html)
    return found


@pytest.mark.clientless
def test_the_tenant_query_is_off_by_default(service: Service):
    status, body = raw_upgrade(service.ws_url + "?tenant=acme")
    assert status == 400
    assert "INNDX_TENANT_QUERY" in json.loads(body)["message"]


@pytest.mark.clientless
@pytest.mark.parametrize(
    ("query", "headers", "code"),
    [
        ("?tenant=play&api_key=k-play", None, 101),
        ("?tenant=free", None, 101),
        ("?tenant=play", None, 401),
        ("?tenant=play&api_key=nope", None, 401),
        ("?tenant=stranger", None, 403),
        ("?tenant=bad%20id", None, 400),
        ("?api_key=k-play", None, 400),
        ("?tenant=free&tenant=play", None, 400),
        ("?tenant=free", {"X-Tenant-Id": "free"}, 400),
        ("", {"X-Tenant-Id": "play", "Authorization": "Bearer k-play"}, 101),
    ],
)
def test_the_tenant_query_keeps_every_rule_of_the_tenants_file(querying: Service, query, headers, code):
    status, _ = raw_upgrade(querying.ws_url + query, headers=headers)
    assert status == code


@pytest.mark.clientless
def test_the_contract_is_served(service: Service):
    status, headers, body = http_get(service.url + "/asyncapi.yaml")
    assert status == 200
    assert dict((n.lower(), v) for n, v in headers)["content-type"].startswith("application/yaml")
    assert body == (Path(__file__).resolve().parents[2] / "schemas/asyncapi.yaml").read_bytes()
    status, _, same = http_get(service.url + "/schemas/asyncapi.yaml")
    assert status == 200 and same == body
    status, _, schema = http_get(service.url + "/schemas/goto.request.json")
    assert status == 200 and json.loads(schema)["$id"].endswith("goto.request.json")
    assert http_get(service.url + "/schemas/../service/app.py")[0] == 404
    assert http_get(service.url + "/schemas/README")[0] == 404
