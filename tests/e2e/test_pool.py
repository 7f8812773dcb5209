"""The warm pool: a pooled open is a whole working session; a pooled browser is never reused, a
dead one is never handed out, a hung one is found by the sweep; the pool counts against
INNDX_MAX_BROWSERS (and gives way to sessions); shutdown with a full pool leaves no process.

Each test starts a service of its own with the pool sizes it needs (the suite's services run
without a pool). Pool state is read from the service's /metrics (``inndx_pool_idle``), browser
processes from the service's process tree. Every wait is bounded.
"""

from __future__ import annotations

import base64
import re

import psutil
import pytest

from tests.e2e.conftest import alive, browser_processes
from tests.support.ports import scaled, wait_for
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import connect, http_get

pytestmark = [pytest.mark.clients("chrome", "firefox"), pytest.mark.local_only]

READY_BOUND = 60.0  # seconds for the pool to fill on a loaded machine
BROWSER_NAMES = ("chromium", "chrome", "firefox")


def pool_env(client: str, size: int = 1, **extra: str) -> dict[str, str]:
    env = {"INNDX_POOL_CHROME": "0", "INNDX_POOL_FIREFOX": "0", f"INNDX_POOL_{client.upper()}": str(size)}
    env.update(extra)
    return env


def idle(svc: Service, client: str) -> int:
    status, _, body = http_get(f"{svc.url}/metrics")
    assert status == 200
    found = re.search(rf'^inndx_pool_idle\{{client="{client}"\}} (\S+)$', body.decode(), re.M)
    return int(float(found.group(1))) if found else 0


def pool_event(svc: Service, client: str, event: str) -> int:
    _, _, body = http_get(f"{svc.url}/metrics")
    found = re.search(rf'^inndx_pool_events_total\{{client="{client}",event="{event}"\}} (\S+)$', body.decode(), re.M)
    return int(float(found.group(1))) if found else 0


def wait_idle(svc: Service, client: str, count: int) -> None:
    wait_for(lambda: idle(svc, client) >= count, scaled(READY_BOUND), what=f"{count} pooled {client}")


def browsers(svc: Service) -> set[int]:
    """The service's browser processes (not drivers)."""
    found = set()
    for proc in browser_processes(svc.pid):
        try:
            if any(name in proc.name().lower() for name in BROWSER_NAMES):
                found.add(proc.pid)
        except psutil.Error:
            pass
    return found


def exercise(session, site: Site) -> None:
    """Every action once: the session works end to end."""
    reply = session.request({"action": "goto", "url": site.url("/form")}, timeout=30)
    assert reply.get("status_code") == 200, reply
    assert site.requests_to("/form"), "the page came from the site (through the egress gateway)"
    reply = session.request({"action": "fill", "selector": "#name", "value": "warm"}, timeout=20)
    assert reply.get("type") != "error", reply
    reply = session.request({"action": "click", "selector": "#counter"}, timeout=20)
    assert reply.get("type") != "error", reply
    reply = session.request({"action": "evaluate", "script": "return document.title"}, timeout=20)
    assert reply["result"] == "Form", reply
    reply = session.request({"action": "content"}, timeout=20)
    text = base64.b64decode(reply["content"], validate=True).decode("utf-8")
    assert 'id="result">warm<' in text and 'data-n="1"' in text, text[-600:]
    reply = session.request({"action": "screenshot"}, timeout=20)
    assert reply.get("type") != "error", reply
    assert session.request({"action": "close"}, timeout=15) == {"action": "closed"}


def test_a_pooled_open_is_a_working_session_and_its_browser_is_never_reused(client, start_service, site: Site):
    svc = start_service(**pool_env(client))
    wait_idle(svc, client, 1)
    pooled = browsers(svc)
    assert pooled, "the pool holds a browser"
    with connect(svc.ws_url) as session:
        session.open(client={"kind": client, "viewport": {"width": 800, "height": 600}}, timeout="20s", recv_timeout=scaled(60))
        assert pool_event(svc, client, "handed_out") == 1
        size = session.request({"action": "evaluate", "script": "return [innerWidth, innerHeight]"}, timeout=20)
        assert size["result"] == [800, 600], size  # the viewport of the open frame, set at hand-out
        exercise(session, site)
    # the session's browser ended with it, and the pool made a new one
    wait_for(lambda: not alive(pooled), scaled(15), what="the session's browser to end")
    wait_idle(svc, client, 1)
    assert not (browsers(svc) & pooled)


def test_a_pooled_browser_killed_while_idle_is_not_handed_out(client, start_service, site: Site):
    svc = start_service(**pool_env(client))
    wait_idle(svc, client, 1)
    victims = [psutil.Process(pid) for pid in browsers(svc)]
    main = min(victims, key=lambda proc: proc.create_time())  # the browser's main process
    main.kill()
    wait_for(lambda: not alive({main.pid}), 5, what="the killed browser to exit")
    with connect(svc.ws_url) as session:  # at once: before any sweep can notice
        session.open(client=client, timeout="20s", recv_timeout=scaled(90))  # the replacement may start cold
        exercise(session, site)
    assert pool_event(svc, client, "discarded") == 1


def test_a_pooled_browser_that_hangs_while_idle_is_discarded_by_the_sweep(client, start_service):
    """A browser that runs but answers nothing (stopped with SIGSTOP): the hand-out checks only
    processes and socket, so the sweep's BiDi question must find it, end it (a stopped process
    is killed all the same) and free its slot for a replacement."""
    svc = start_service(**pool_env(client))
    wait_idle(svc, client, 1)
    victims = [psutil.Process(pid) for pid in browsers(svc)]
    main = min(victims, key=lambda proc: proc.create_time())  # the browser's main process
    main.suspend()
    try:
        wait_for(lambda: pool_event(svc, client, "discarded") == 1, scaled(20), what="the sweep to discard the hung browser")
        wait_for(lambda: not alive({main.pid}), scaled(10), what="the hung browser to be ended")
    finally:
        try:
            main.resume()
        except psutil.Error:
            pass
    wait_idle(svc, client, 1)  # a replacement took its slot
    assert main.pid not in browsers(svc)


def test_shutdown_with_a_full_pool_leaves_no_process(start_service):
    svc = start_service(INNDX_POOL_CHROME="2", INNDX_POOL_FIREFOX="1", INNDX_POOL_LAUNCHES="2")
    wait_idle(svc, "chrome", 2)
    wait_idle(svc, "firefox", 1)
    pids = {proc.pid for proc in browser_processes(svc.pid)}
    assert pids
    assert svc.stop() == 0, svc.log_tail()
    assert svc.leftovers == []
    assert not alive(pids)


def test_the_pool_counts_against_max_browsers_and_gives_way_to_sessions(start_service, site: Site):
    svc = start_service(INNDX_MAX_BROWSERS="2", INNDX_POOL_CHROME="3", INNDX_POOL_FIREFOX="0")
    wait_idle(svc, "chrome", 2)
    assert idle(svc, "chrome") == 2  # never past the bound, though 3 were asked for
    with connect(svc.ws_url) as firefox:
        firefox.open(client="firefox", timeout="20s")  # an idle chrome gave its slot
        assert idle(svc, "chrome") == 1
        with connect(svc.ws_url) as chrome:
            chrome.open(client="chrome", timeout="20s")  # the last pooled one
            assert idle(svc, "chrome") == 0
            with connect(svc.ws_url) as third:
                third.send({"client": "chrome"})
                frame = third.recv(timeout=scaled(10))
                assert frame.get("type") == "fatal" and frame["code"] == 503, frame
            reply = chrome.request({"action": "goto", "url": site.url("/json")}, timeout=30)
            assert reply.get("status_code") == 200, reply
        assert len(browsers(svc)) <= 2 * 8  # both browsers' processes, nothing more started
