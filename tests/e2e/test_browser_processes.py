"""Nothing a browser session starts outlives it, nor the worker that started it.

- **No files left:** the service runs with a private ``TMPDIR``; after 20 browser sessions
  (mostly Chrome, some Firefox), ended by ``close``, by the client dropping the socket, and by a
  killed browser process, the temp dir holds exactly the entries it held before.
- **Worker killed:** 3 live browser sessions, then SIGKILL of the gunicorn worker. Drivers die
  at once (``PR_SET_PDEATHSIG``); browsers and temp dirs go when the master's next worker starts
  (``browser_reaper.reap_orphans``). Bound: ``REAP_BOUND`` seconds after the SIGKILL, no
  process of theirs runs and their temp dirs (profiles inside) are gone.

Processes are found by the marker the service sets (``INNDX_BROWSER_OWNER`` in their environment),
never by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from service.clients.browser_process import OWNER_ENV, TEMP_PREFIX, owned
from tests.e2e.conftest import alive, service_env
from tests.support.ports import wait_for
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import Session, connect

pytestmark = [pytest.mark.local_only, pytest.mark.clientless]  # runs once, in the env with standard (chrome)

REAP_BOUND = 15.0  # seconds from the worker's SIGKILL until its browsers and temp dirs are gone


def marked(owner_pid: int | None = None) -> dict[int, psutil.Process]:
    """Processes carrying the service's marker (of one worker when ``owner_pid`` is given)."""
    found = {}
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            owner = proc.environ().get(OWNER_ENV)
            if owner and (owner_pid is None or owner.startswith(f"{owner_pid}.")):
                found[proc.pid] = proc
    return found


def session_temp_dirs(tmp: Path) -> list[str]:
    return sorted(name for name in os.listdir(tmp) if name.startswith(TEMP_PREFIX))


@pytest.fixture()
def private_tmp() -> Iterator[Path]:
    """The service's own TMPDIR. Short: Chrome's singleton socket lives below it, and a Unix
    socket path has at most 108 bytes (Chrome does not start under a deep pytest tmp_path)."""
    tmp = Path(tempfile.mkdtemp(prefix="svc-"))
    tmp.chmod(0o711)  # the browser user (the service is root here) must reach its dirs below it
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture()
def svc(grid, logs: Path, private_tmp: Path):
    env = service_env(grid, TMPDIR=str(private_tmp), INNDX_NEW_SESSION_TIMEOUT="20s", INNDX_MAX_BROWSERS="4",
                      INNDX_RESUME_WINDOW="1s")  # a dropped session ends 1s after the drop
    with Service(env=env, log_dir=logs) as running:
        yield running


def open_browser(svc: Service, site: Site, kind: str) -> Session:
    session = connect(svc.ws_url)
    session.open(client=kind, max_retries=0, timeout="15s", recv_timeout=30)
    reply = session.request({"action": "goto", "url": site.url("/html")}, timeout=20)
    assert reply.get("status_code") == 200, reply
    return session


def kill_browser(svc: Service, session_dirs_before: set[str], tmp: Path) -> None:
    """Kill the main browser process of the session whose temp dir is new."""
    new = set(session_temp_dirs(tmp)) - session_dirs_before
    assert len(new) == 1, new
    temp_dir = str(tmp / new.pop())
    procs = [p for p in marked().values() if _env(p).get("TMPDIR") == temp_dir]
    drivers = [p for p in procs if _ppid(p) in svc.worker_pids()]  # the worker started it
    assert len(drivers) == 1, procs
    browsers = drivers[0].children()
    assert browsers, "the driver has no browser child"
    for browser in browsers:
        browser.kill()


def _env(proc: psutil.Process) -> dict[str, str]:
    try:
        return proc.environ()
    except (psutil.Error, OSError):
        return {}


def _ppid(proc: psutil.Process) -> int | None:
    try:
        return proc.ppid()
    except psutil.Error:
        return None


def test_no_files_left_after_20_sessions_closed_dropped_and_killed(svc: Service, site: Site, private_tmp: Path):
    before = sorted(os.listdir(private_tmp))
    kinds = ["chrome"] * 17 + ["firefox"] * 3  # each ending once in Firefox (its start is slow)
    endings = ["closed", "dropped", "killed"]
    started = time.monotonic()
    for number, kind in enumerate(kinds):
        ending = endings[number % len(endings)]
        dirs = set(session_temp_dirs(private_tmp))
        session = open_browser(svc, site, kind)
        with session:
            if ending == "closed":
                assert session.request({"action": "close"}, timeout=15) == {"action": "closed"}
            elif ending == "dropped":
                session.ws.sock.shutdown(socket.SHUT_RDWR)
            else:
                kill_browser(svc, dirs, private_tmp)
                frame = session.request({"action": "content"}, timeout=20)
                assert frame.get("type") == "fatal" and frame["code"] == 503, frame
        wait_for(lambda: svc.healthz()["active_sessions"] == 0, 15, what=f"session {number} ({kind}, {ending}) to end")
        print(f"session {number} ({kind}, {ending}) ended at {time.monotonic() - started:.1f}s")
    wait_for(lambda: sorted(os.listdir(private_tmp)) == before, 10, what="the temp dir to hold what it held before")
    [worker] = svc.worker_pids()
    assert alive(set(marked(worker))) == set()


def test_a_killed_worker_leaves_no_browser_and_no_profile(svc: Service, site: Site, private_tmp: Path):
    before = sorted(os.listdir(private_tmp))
    [worker] = svc.worker_pids()
    sessions = [open_browser(svc, site, kind) for kind in ("chrome", "chrome", "firefox")]
    try:
        theirs = marked(worker)
        assert len(session_temp_dirs(private_tmp)) == 3
        assert len(theirs) >= 6, theirs  # a driver and at least one browser process each
        killed_at = time.monotonic()
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: not alive(set(theirs)), REAP_BOUND, interval=0.1, what="the dead worker's browsers to end")
        wait_for(lambda: session_temp_dirs(private_tmp) == [], REAP_BOUND, interval=0.1, what="their temp dirs to go")
        took = time.monotonic() - killed_at
        print(f"the dead worker's processes and temp dirs were gone {took:.1f}s after the SIGKILL")
        assert took < REAP_BOUND
        wait_for(lambda: svc.worker_pids() and svc.worker_pids() != [worker], 10, what="a new worker")
        wait_for(lambda: svc.healthz()["ok"], 10, what="the new worker to answer")
        assert sorted(os.listdir(private_tmp)) == before
        # and the new worker serves browsers again
        with open_browser(svc, site, "chrome") as again:
            assert again.request({"action": "close"}, timeout=15) == {"action": "closed"}
    finally:
        for session in sessions:
            session.close()
    assert "reaped" in svc.log_text()


WHOLE_BOUND = 3.0  # seconds from the SIGKILL of master and worker until none of their processes runs


def test_an_instance_killed_whole_leaves_no_process(logs: Path, site: Site, private_tmp: Path, grid):
    """Master and worker SIGKILLed together (no new worker will ever reap): the drivers die with
    the worker's thread, the browsers with their drivers (their launcher arms the same death
    signal), and the browsers' children with them, within WHOLE_BOUND seconds. Before the
    launcher, browsers outlived this by 2-9 s here (and by more than 30 s in a soak)."""
    env = service_env(grid, TMPDIR=str(private_tmp), INNDX_NEW_SESSION_TIMEOUT="20s")
    svc = Service(env=env, log_dir=logs).start()
    sessions = []
    try:
        sessions = [open_browser(svc, site, kind) for kind in ("chrome", "firefox")]
        tree = psutil.Process(svc.pid).children(recursive=True)
        [worker] = svc.worker_pids()
        assert len(tree) >= 8, tree  # the worker, drivers, browsers and their children
        os.kill(svc.pid, signal.SIGKILL)
        os.kill(worker, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: not alive({p.pid for p in tree}), WHOLE_BOUND, interval=0.05,
                 what="every process of the instance to end")
        print(f"the whole instance was gone {time.monotonic() - killed_at:.2f}s after the SIGKILL")
    finally:
        for session in sessions:
            with contextlib.suppress(Exception):
                session.close()
        svc.stop()


def test_ownership_covers_every_process_of_a_session(svc: Service, site: Site, private_tmp: Path):
    """Every process below a session's driver (Chrome's renderers, zygotes and helpers, which
    start with a cleared environment, and Firefox's content processes) is owned by the worker:
    ``browser_process.owned`` finds exactly the tree. Control: by the marker alone, Chrome's
    count falls short (its helpers carry none)."""
    [worker] = svc.worker_pids()
    sessions = [open_browser(svc, site, kind) for kind in ("chrome", "firefox")]
    try:
        drivers = [p for p in psutil.Process(worker).children() if p.name() in ("chromedriver", "geckodriver")]
        assert len(drivers) == 2, drivers
        tree = {p.pid for d in drivers for p in [d, *d.children(recursive=True)]}
        owner = _env(drivers[0]).get(OWNER_ENV)
        assert owner and owner.startswith(f"{worker}.")
        found = {p.pid: p for p in owned(owner)}
        assert tree <= set(found), tree - set(found)
        # beyond the tree: only processes that left it (the crash handlers double-fork into a
        # session of their own, re-parented to init), each with our marker or in a driver's session
        extra = {pid: (found[pid].name(), os.getsid(pid), _env(found[pid]).get(OWNER_ENV)) for pid in set(found) - tree}
        assert all(sid in {d.pid for d in drivers} or mark == owner for _, sid, mark in extra.values()), extra
        print("owned beyond the tree:", extra)
        chrome = next(d for d in drivers if d.name() == "chromedriver")
        chrome_tree = [chrome, *chrome.children(recursive=True)]
        assert len([p for p in chrome_tree if OWNER_ENV in _env(p)]) < len(chrome_tree)  # the gap it closes
    finally:
        for session in sessions:
            session.close()
