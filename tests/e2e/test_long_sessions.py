"""A long browser session stays small (``bench/soak.py`` measures it).

- It moves to a fresh tab every ``INNDX_TAB_GOTOS`` gotos, invisibly: the old tab's renderer goes
  with it (the memory a page renderer keeps of every document it showed). What the session set
  stays: cookies and localStorage (the profile's), the open frame's viewport, a goto's
  ``user_agent``; the metric ``inndx_fresh_tabs`` counts each move.
- Chrome's BiDi mapper tab logs nothing and its garbage is collected (``chrome_memory``).
- A local browser over ``INNDX_BROWSER_MEMORY_MIB`` is replaced by a fresh one carrying the same
  (``browser_move``); the metric ``inndx_fresh_browsers`` counts each, and every process of the
  old one ends.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import websocket

from tests.e2e.conftest import alive, browser_processes
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import Session, connect, http_get

TAB_GOTOS = 3
VIEWPORT = {"width": 820, "height": 610}


@pytest.fixture(scope="module")
def tab_service(grid, logs) -> Iterator[Service]:
    from tests.e2e.conftest import service_env

    with Service(env=service_env(grid, INNDX_TAB_GOTOS=str(TAB_GOTOS)), log_dir=logs) as running:
        yield running


@pytest.fixture()
def session(tab_service: Service, client: str) -> Iterator[Session]:
    opened = connect(tab_service.ws_url)
    opened.open(client={"kind": client, "viewport": VIEWPORT}, timeout="30s", max_retries=0, recv_timeout=60)
    yield opened
    opened.close()


def goto(session: Session, url: str, **fields) -> dict:
    reply = session.request({"action": "goto", "url": url, **fields}, timeout=60)
    assert reply.get("status_code") == 200, reply
    return reply


def evaluate(session: Session, script: str):
    reply = session.request({"action": "evaluate", "script": script}, timeout=30)
    assert reply.get("action") == "evaluated", reply
    return reply["result"]


def fresh_tabs(service: Service, client: str) -> float:
    text = http_get(f"{service.url}/metrics")[2].decode()
    found = re.search(rf'^inndx_fresh_tabs_total{{client="{client}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.clients("chrome", "firefox")
def test_a_session_moves_to_fresh_tabs_and_keeps_what_it_set(tab_service: Service, session: Session, site: Site, client: str):
    before = fresh_tabs(tab_service, client)
    goto(session, site.url("/cookies/set"))
    evaluate(session, "localStorage.setItem('kept', 'yes'); return true")
    goto(session, site.url("/html?ua"), user_agent="inndx-long/1.0")
    for n in range(2 * TAB_GOTOS):
        reply = goto(session, site.url(f"/html?n={n}"), user_agent="inndx-long/1.0")
        assert reply["url"] == site.url(f"/html?n={n}")
    assert fresh_tabs(tab_service, client) - before >= 2  # 2 + 2 * TAB_GOTOS gotos: at least 2 moves
    assert evaluate(session, "return localStorage.getItem('kept')") == "yes"
    assert evaluate(session, "return navigator.userAgent") == "inndx-long/1.0"
    assert evaluate(session, "return [innerWidth, innerHeight]") == [VIEWPORT["width"], VIEWPORT["height"]]
    shot = session.request({"action": "screenshot"}, timeout=30)
    png = base64.b64decode(shot["screenshot"])
    assert struct.unpack(">II", png[16:24]) == (VIEWPORT["width"], VIEWPORT["height"])
    echoed = json.loads(base64.b64decode(goto(session, site.url("/cookies/echo"))["body"]))
    assert {"a", "b"} <= set(echoed["cookies"]), echoed


# ------------------------------------------------------------------ Chrome's BiDi mapper tab

MIB = 1024 * 1024


class DevTools:
    """One CDP target of a local Chrome, through its DevTools port (the test's own look)."""

    def __init__(self, url: str):
        self.ws = websocket.create_connection(url, timeout=20, suppress_origin=True)
        self.ident = 0

    def ask(self, method: str, params: dict | None = None) -> dict:
        self.ident += 1
        self.ws.send(json.dumps({"id": self.ident, "method": method, "params": params or {}}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.ident:
                assert "error" not in message, message
                return message["result"]

    def value(self, expression: str):
        return self.ask("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"].get("value")


def chrome_targets(service: Service) -> Iterator[list[dict]]:
    """The DevTools targets of each local Chrome the service runs (pooled ones too)."""
    for proc in browser_processes(service.pid):
        with contextlib.suppress(psutil.Error, OSError):
            args = proc.cmdline()
            if any(a.startswith("--type=") for a in args):
                continue
            profile = next((a.split("=", 1)[1] for a in args if a.startswith("--user-data-dir=")), None)
            if profile is None:
                continue
            port = (Path(profile) / "DevToolsActivePort").read_text().split()[0]
            yield json.loads(http_get(f"http://127.0.0.1:{port}/json/list")[2])


@pytest.mark.local_only
@pytest.mark.clients("chrome")
def test_chromes_mapper_tab_keeps_no_log_and_its_garbage_is_collected(tab_service: Service, session: Session, site: Site):
    """chromium-bidi's tab wrote every BiDi message, bodies included, into its page and kept the
    strings as garbage: about 4.5 MiB per goto of a 2 MB page (service/clients/chrome_mapper.py)."""
    big = site.url(f"/big?bytes={2 * MIB}")
    goto(session, big)
    browsers = list(chrome_targets(tab_service))
    assert browsers, "no local Chrome found under the service"
    ours = None
    for targets in browsers:
        mappers = [t for t in targets if t["title"] == "BiDi-CDP Mapper"]
        assert len(mappers) == 1, targets  # a Chrome whose mapper tab changed: chrome_mapper must follow
        tab = DevTools(mappers[0]["webSocketDebuggerUrl"])
        try:
            assert tab.value("document.getElementById('logs') === null") is True  # every browser, pooled ones too
        finally:
            tab.ws.close()
        if any(t["url"] == big for t in targets):
            ours = mappers[0]
    assert ours is not None, browsers
    for _ in range(12):
        goto(session, big)
    tab = DevTools(ours["webSocketDebuggerUrl"])
    try:
        # 12 bodies of 2 MB passed through it: uncollected, that is 36 MB or more of garbage
        assert tab.ask("Runtime.getHeapUsage")["usedSize"] < 24 * MIB
    finally:
        tab.ws.close()


# ------------------------------------------------------------ the memory bound: a fresh browser


@pytest.fixture(scope="module")
def bound_service(grid, logs) -> Iterator[Service]:
    """Every local browser is over a bound of 1 MiB, looked at before every action."""
    from tests.e2e.conftest import service_env

    env = service_env(
        grid, INNDX_BROWSER_MEMORY_MIB="1", INNDX_BROWSER_MEMORY_CHECK="0s", INNDX_POOL_CHROME="0", INNDX_POOL_FIREFOX="0"
    )
    with Service(env=env, log_dir=logs) as running:
        yield running


def fresh_browsers(service: Service, client: str) -> float:
    text = http_get(f"{service.url}/metrics")[2].decode()
    found = re.search(rf'^inndx_fresh_browsers_total{{client="{client}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def browser_pids(service: Service) -> set[int]:
    """Every browser and driver process under the service."""
    return {proc.pid for proc in browser_processes(service.pid)}


@pytest.mark.local_only
@pytest.mark.clients("chrome", "firefox")
def test_a_browser_over_its_memory_bound_is_replaced_carrying_the_session(bound_service: Service, site: Site, client: str):
    session = connect(bound_service.ws_url)
    session.open(client={"kind": client, "viewport": VIEWPORT}, timeout="30s", max_retries=0, recv_timeout=60)
    try:
        before = fresh_browsers(bound_service, client)
        goto(session, site.url("/cookies/set"))  # moved before it: nothing to carry yet
        first = browser_pids(bound_service)
        evaluate(session, "localStorage.setItem('kept', 'yes'); return true")  # moved: the page loaded again first
        goto(session, site.url("/html?ua"), user_agent="inndx-bound/1.0")
        kept = evaluate(
            session, "return [localStorage.getItem('kept'), navigator.userAgent, location.href, innerWidth, innerHeight]"
        )
        assert kept == ["yes", "inndx-bound/1.0", site.url("/html?ua"), VIEWPORT["width"], VIEWPORT["height"]]
        echoed = json.loads(base64.b64decode(goto(session, site.url("/cookies/echo"))["body"]))
        assert {"a", "b"} <= set(echoed["cookies"]), echoed
        assert fresh_browsers(bound_service, client) - before >= 5  # one before each action
        assert browser_pids(bound_service) and not alive(first), alive(first)  # the old browsers ended, every process
    finally:
        session.close()
