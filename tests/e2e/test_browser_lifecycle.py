"""A browser session's processes end with it, however it ends: close, expiry, a vanished client,
server shutdown, a browser or driver that died; and browser capacity is bounded and given back.

Each test opens its own sessions (it ends them). A session's processes are found by difference:
the descendants of the process that starts browsers (the service's gunicorn master, or the Grid's
node) after the open and a first goto, minus those before. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.e2e.conftest import alive, service_env
from tests.support.ports import scaled, wait_for
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import Session, connect

pytestmark = pytest.mark.clients("chrome", "firefox")

NEW_SESSION_BOUND = 20.0  # INNDX_NEW_SESSION_TIMEOUT of this module's services, in seconds
DRIVERS = ("chromedriver", "geckodriver")
BROWSERS = ("chromium", "chrome", "firefox")
GONE_BOUND = 15.0  # seconds for a session's processes to end once the session has ended


@pytest.fixture(scope="module")
def lifecycle(grid, logs: Path) -> Iterator[Service]:
    """A service of this module's own, so that its session count and process tree are ours."""
    # a dropped client's session is parked for the resume window, then ends: 2s here
    env = service_env(grid, INNDX_NEW_SESSION_TIMEOUT=f"{NEW_SESSION_BOUND:g}s", INNDX_RESUME_WINDOW="2s")
    with Service(env=env, log_dir=logs) as running:
        yield running


# ------------------------------------------------------------------------------- helpers


def _roots(svc: Service, grid) -> list[int]:
    """The processes under which a session's driver and browser start."""
    if grid is None:
        return [svc.pid]
    return [proc.pid for proc in (grid.node, grid.hub) if proc is not None]


def _descendants(roots: list[int]) -> dict[int, psutil.Process]:
    found: dict[int, psutil.Process] = {}
    for root in roots:
        with contextlib.suppress(psutil.Error):
            for proc in psutil.Process(root).children(recursive=True):
                found[proc.pid] = proc
    return found


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name().lower()
    except psutil.Error:
        return ""


class Tracked:
    """The processes one session started: new descendants of the roots since ``before``."""

    def __init__(self, roots: list[int]):
        self.roots = roots
        self.before = set(_descendants(roots))
        self.procs: dict[int, psutil.Process] = {}

    def record(self) -> dict[int, psutil.Process]:
        for pid, proc in _descendants(self.roots).items():
            if pid not in self.before:
                self.procs[pid] = proc
        return self.procs

    @property
    def pids(self) -> set[int]:
        return set(self.procs)

    def driver(self) -> psutil.Process:
        drivers = [p for p in self.procs.values() if any(d in _name(p) for d in DRIVERS)]
        assert len(drivers) == 1, f"expected one driver among {self.describe()}"
        return drivers[0]

    def browser(self) -> psutil.Process:
        """The main browser process: the driver's child running the browser."""
        driver = self.driver()
        main = [
            p for p in self.procs.values()
            if any(b in _name(p) for b in BROWSERS) and _ppid(p) == driver.pid
        ]
        assert len(main) == 1, f"expected one main browser process among {self.describe()}"
        return main[0]

    def describe(self) -> str:
        return ", ".join(f"{pid}:{_name(p)}" for pid, p in sorted(self.procs.items()))

    def wait_gone(self, timeout: float = GONE_BOUND) -> None:
        self.record()  # anything the session started late and left behind counts too
        pids = self.pids
        assert pids
        try:
            wait_for(lambda: not alive(pids), timeout, interval=0.1, what="the session's processes to end")
        except TimeoutError:
            left = {pid: self.procs[pid] for pid in alive(pids)}
            raise AssertionError(
                "processes of the ended session still running: "
                + ", ".join(f"{pid}:{_name(p)}" for pid, p in sorted(left.items()))
            ) from None


def _ppid(proc: psutil.Process) -> int | None:
    try:
        return proc.ppid()
    except psutil.Error:
        return None


def open_tracked(svc: Service, grid, client: str, site: Site, **fields) -> tuple[Session, Tracked]:
    """Open a ``client`` session on ``svc`` within the new-session bound, load a page, and
    record the processes it started (a driver and its browser at least)."""
    tracked = Tracked(_roots(svc, grid))
    session = connect(svc.ws_url)
    try:
        started = time.monotonic()
        session.open(client=client, max_retries=0, recv_timeout=NEW_SESSION_BOUND + 5, **fields)
        assert time.monotonic() - started < scaled(NEW_SESSION_BOUND), "the open took longer than its bound"
        reply = session.request({"action": "goto", "url": site.url("/form")}, timeout=20)
        assert reply.get("action") == "goto" and reply["status_code"] == 200, reply
        tracked.record()
        tracked.driver(), tracked.browser()  # one of each, at least
    except BaseException:
        session.close()
        raise
    return session, tracked


def active(svc: Service) -> int:
    return svc.healthz()["active_sessions"]


def wait_no_sessions(svc: Service) -> None:
    wait_for(lambda: active(svc) == 0, 15, interval=0.1, what="active_sessions to drop to 0")


def expect_fatal(session: Session, code: int, close_code: int, timeout: float = 20) -> dict:
    frame = session.recv(timeout=timeout)
    assert frame.get("type") == "fatal" and frame["code"] == code, frame
    assert "id" not in frame, frame
    assert session.expect_close(timeout=10)[0] == close_code
    return frame


# ------------------------------------------------------------------------------- ending a session


def test_close_ends_the_browser_and_driver(client, lifecycle: Service, grid, site: Site):
    wait_no_sessions(lifecycle)
    session, tracked = open_tracked(lifecycle, grid, client, site)
    with session:
        assert active(lifecycle) == 1
        assert session.request({"action": "close", "id": "bye"}, timeout=15) == {"action": "closed", "id": "bye"}
        assert session.expect_close(timeout=10)[0] == 1000
    tracked.wait_gone()
    wait_no_sessions(lifecycle)


def test_idle_expiry_ends_the_browser(client, start_service, grid, site: Site):
    svc = start_service(INNDX_IDLE_TIMEOUT="2s", INNDX_NEW_SESSION_TIMEOUT=f"{NEW_SESSION_BOUND:g}s")
    session, tracked = open_tracked(svc, grid, client, site)
    with session:
        started = time.monotonic()
        frame = expect_fatal(session, 410, 1008, timeout=15)  # part of the scenario: we stay idle
        assert "idle" in frame["message"], frame
        assert time.monotonic() - started >= 1.5
    tracked.wait_gone()
    wait_no_sessions(svc)


def test_client_vanishing_ends_the_browser(client, lifecycle: Service, grid, site: Site):
    wait_no_sessions(lifecycle)
    session, tracked = open_tracked(lifecycle, grid, client, site)
    assert active(lifecycle) == 1
    session.ws.sock.shutdown(socket.SHUT_RDWR)  # no close frame: the TCP connection just ends
    session.ws.sock.close()
    tracked.wait_gone()
    wait_no_sessions(lifecycle)
    assert lifecycle.healthz()["ok"] is True


def test_server_shutdown_ends_the_browser(client, start_service, grid, site: Site):
    svc = start_service(INNDX_NEW_SESSION_TIMEOUT=f"{NEW_SESSION_BOUND:g}s")
    session, tracked = open_tracked(svc, grid, client, site)
    with session:
        stopper = threading.Thread(target=svc.stop, name="stop-service", daemon=True)
        stopper.start()
        frame = expect_fatal(session, 503, 1001, timeout=20)
        assert "shutting down" in frame["message"], frame
        stopper.join(scaled(40))
        assert not stopper.is_alive(), "the service did not stop"
    assert svc.returncode == 0, svc.log_tail()
    assert svc.leftovers == []
    tracked.wait_gone(timeout=5)


# On a Grid a driver killed under the node leaves its browser to the node (not ours to reap) and
# its slot taken: the Grid's own fault, a dead node, is tested in test_grid.py.
@pytest.mark.parametrize("victim", ["browser", pytest.param("driver", marks=pytest.mark.local_only)])
def test_a_dead_process_ends_the_session_with_503_and_1011(client, lifecycle: Service, grid, site: Site, victim):
    wait_no_sessions(lifecycle)
    session, tracked = open_tracked(lifecycle, grid, client, site)
    with session:
        target = tracked.browser() if victim == "browser" else tracked.driver()
        target.kill()
        wait_for(lambda: not alive({target.pid}), 5, what=f"the killed {victim} to exit")
        session.send({"action": "evaluate", "script": "return 1", "id": "after-kill"})
        frame = expect_fatal(session, 503, 1011)  # the action's only reply: the fatal frame
        assert "lost" in frame["message"], frame
    tracked.wait_gone()
    wait_no_sessions(lifecycle)
    assert lifecycle.healthz()["ok"] is True


# ------------------------------------------------------------------------------- capacity


def test_no_browser_capacity_is_fatal_503_until_a_browser_is_free(client, start_service, grid, site: Site):
    svc = start_service(
        INNDX_MAX_BROWSERS="1", INNDX_MAX_GRID_SESSIONS="1", INNDX_NEW_SESSION_TIMEOUT=f"{NEW_SESSION_BOUND:g}s"
    )
    first, tracked = open_tracked(svc, grid, client, site)
    with first:
        with connect(svc.ws_url) as second:
            started = time.monotonic()
            second.send({"client": client})
            frame = second.recv(timeout=10)
            assert frame.get("type") == "fatal" and frame["code"] == 503, frame
            assert "capacity" in frame["message"], frame
            assert time.monotonic() - started < scaled(5), "refusing for capacity does not wait for a browser"
            assert second.expect_close(timeout=10)[0] == 1011
        with connect(svc.ws_url) as plain:  # the standard client needs no browser
            plain.open()
            assert plain.request({"action": "close"}, timeout=10) == {"action": "closed"}
        assert first.request({"action": "close"}, timeout=15) == {"action": "closed"}
        assert first.expect_close(timeout=10)[0] == 1000
    tracked.wait_gone()
    wait_no_sessions(svc)
    third, tracked = open_tracked(svc, grid, client, site)
    with third:
        assert third.request({"action": "close"}, timeout=15) == {"action": "closed"}
    tracked.wait_gone()
