"""A long browser session moves to a fresh tab every ``INNDX_TAB_GOTOS`` gotos, invisibly.

The old tab's renderer goes with it (the memory a page renderer keeps of every document it showed:
``bench/soak.py``). What the session set stays: cookies and localStorage (the profile's), the
open frame's viewport, a goto's ``user_agent``; the metric ``inndx_fresh_tabs`` counts each move.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import Iterator

import pytest

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
