"""A browser that stops answering (its main process SIGSTOPped) mid-session.

The action under way gets a non-fatal 504 within a few seconds (``bidi.QUIET`` + ``PROBE_BOUND``),
not at its own timeout; the session goes on on the same browser when it answers again; a browser
that stays silent past ``INNDX_UNRESPONSIVE_LIMIT`` ends its session with a fatal 503, and every
process of it ends.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator

import psutil
import pytest

from service.clients.bidi import PROBE_BOUND, QUIET
from tests.e2e.test_browser_processes import marked
from tests.support.ports import wait_for
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import Session, connect

pytestmark = [pytest.mark.local_only, pytest.mark.clients("chrome", "firefox")]

LIMIT = 20.0  # INNDX_UNRESPONSIVE_LIMIT of the service here
DETECTED = QUIET + PROBE_BOUND + 8.0  # the bound on a wedged action's reply (the goto's timeout is 60 s)


@pytest.fixture(scope="module")
def wedge_service(grid, logs) -> Iterator[Service]:
    from tests.e2e.conftest import service_env

    with Service(env=service_env(grid, INNDX_UNRESPONSIVE_LIMIT=f"{LIMIT:g}s"), log_dir=logs) as running:
        yield running


def browser_main(svc: Service) -> psutil.Process:
    """The one session's browser main process: the child of the driver the worker started."""
    drivers = [p for p in marked().values() if _ppid(p) in svc.worker_pids()]
    assert len(drivers) == 1, drivers
    children = drivers[0].children()
    assert len(children) == 1, children
    return children[0]


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _ppid(proc: psutil.Process) -> int | None:
    try:
        return proc.ppid()
    except psutil.Error:
        return None


@contextlib.contextmanager
def stopped(proc: psutil.Process) -> Iterator[None]:
    proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGCONT)


def open_page(svc: Service, site: Site, client: str) -> Session:
    session = connect(svc.ws_url)
    session.open(client=client, max_retries=0, timeout="60s", recv_timeout=90)
    reply = session.request({"action": "goto", "url": site.url("/html")}, timeout=60)
    assert reply.get("status_code") == 200, reply
    return session


def timed_goto(session: Session, url: str) -> tuple[dict, float]:
    started = time.monotonic()
    reply = session.request({"action": "goto", "url": url}, timeout=90)
    return reply, time.monotonic() - started


def test_a_browser_that_stops_answering_is_a_504_and_the_session_goes_on_when_it_answers(
    wedge_service: Service, site: Site, client: str
):
    session = open_page(wedge_service, site, client)
    try:
        main = browser_main(wedge_service)
        with stopped(main):
            reply, took = timed_goto(session, site.url("/html?wedged"))
            assert reply.get("type") == "error" and reply["code"] == 504, reply
            assert "answered nothing" in reply["message"], reply
            assert took < DETECTED, f"a wedge answered after {took:.1f}s, not within {DETECTED}s"
        reply, _ = timed_goto(session, site.url("/html?after"))
        assert reply.get("status_code") == 200, reply
        assert reply["url"] == site.url("/html?after")
        evaluated = session.request({"action": "evaluate", "script": "return location.search"}, timeout=30)
        assert evaluated.get("result") == "?after", evaluated
    finally:
        session.close()


def test_a_browser_silent_past_the_limit_ends_its_session_and_its_processes(
    wedge_service: Service, site: Site, client: str
):
    session = open_page(wedge_service, site, client)
    try:
        main = browser_main(wedge_service)
        tree = [main, *main.children(recursive=True)]
        with stopped(main):
            started = time.monotonic()
            replies = []
            while time.monotonic() - started < LIMIT + 3 * DETECTED:
                reply, took = timed_goto(session, site.url("/html"))
                replies.append(reply)
                assert took < DETECTED, (took, replies)
                if reply.get("type") == "fatal":
                    break
                assert reply.get("type") == "error" and reply["code"] == 504, replies
            assert replies[-1].get("type") == "fatal" and replies[-1]["code"] == 503, replies
            assert "answered nothing" in replies[-1]["message"], replies
            assert len(replies) >= 2, replies  # a non-fatal 504 first: the limit is not the first probe
            session.expect_close(timeout=30)
        wait_for(lambda: not any(_running(p) for p in tree), 30, what="the session's browser processes to end")
    finally:
        session.close()
