"""browser_process: owner markers, the reaper, a session's temp dir, the driver's death signal.

Real processes (``sleep``) stand in for drivers and browsers; every one is ended by the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import psutil
import pytest

from service.clients import browser_process as bp
from service.clients import browser_reaper
from tests.support.ports import wait_for


def _dead_owner() -> str:
    """The marker of a process that ran and has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = bp.owner_of(proc.pid)
    proc.wait()
    assert owner is not None
    return owner


def _marked_sleeper(owner: str, tmp: str, own_session: bool = True) -> subprocess.Popen:
    """A sleeping process with ``owner``'s marker, in a session of its own by default: a reaper
    running beside this test (another test run on the machine) that finds it orphaned kills
    its whole session, and that must never be the session this test runs in."""
    env = dict(os.environ, **{bp.OWNER_ENV: owner, "TMPDIR": tmp})
    return subprocess.Popen(["sleep", "60"], env=env, start_new_session=own_session)


@pytest.fixture()
def sleepers():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait(5)


def test_owner_markers_name_live_and_dead_processes():
    assert bp.owner_alive(bp.this_owner())
    assert not bp.owner_alive(_dead_owner())
    assert not bp.owner_alive("junk")
    pid, _, started = bp.this_owner().partition(".")
    assert not bp.owner_alive(f"{pid}.{started}0")  # same pid, another start: pid reused


def test_reaper_kills_orphans_and_spares_live_owners(tmp_path, sleepers):
    orphan = _marked_sleeper(_dead_owner(), str(tmp_path))
    kept = _marked_sleeper(bp.this_owner(), str(tmp_path))
    sleepers += [orphan, kept]
    wait_for(lambda: bp._environ(psutil.Process(orphan.pid)).get(bp.OWNER_ENV), 5, what="the child's environment")
    dead_dir = tmp_path / f"{bp.TEMP_PREFIX}{_dead_owner()}-abc"
    live_dir = tmp_path / f"{bp.TEMP_PREFIX}{bp.this_owner()}-abc"
    other = tmp_path / "org.chromium.Chromium.x"  # not ours: never touched
    for path in (dead_dir, live_dir, other):
        path.mkdir()
    killed, removed = browser_reaper.reap_orphans(str(tmp_path))
    assert killed >= 1 and removed == 1
    assert orphan.wait(5) is not None
    assert kept.poll() is None
    assert not dead_dir.exists() and live_dir.exists() and other.exists()


def test_session_processes_end_kills_the_tree_and_removes_the_temp_dir(tmp_path):
    procs = bp.SessionProcesses(temp_root=str(tmp_path))
    assert os.path.isdir(procs.temp_dir) and os.path.basename(procs.temp_dir).startswith(bp.TEMP_PREFIX)
    env = procs.driver_env({"PATH": os.environ["PATH"]})
    assert env["TMPDIR"] == procs.temp_dir and env[bp.OWNER_ENV] == bp.this_owner()
    # a "driver" (shell) with a "browser" child that writes into its TMPDIR
    driver = subprocess.Popen(["sh", "-c", 'mkdir "$TMPDIR/org.chromium.Chromium.1"; sleep 60 & wait'], env=env)
    procs.attach(driver.pid)
    wait_for(lambda: psutil.Process(driver.pid).children(), 5, what="the child")
    procs.record_tree()
    child = psutil.Process(driver.pid).children()[0]
    procs.end()
    assert driver.wait(5) is not None
    wait_for(lambda: not bp.running(child), 5, what="the child to end")
    assert not os.path.exists(procs.temp_dir)
    procs.end()  # idempotent


def test_driver_dies_with_the_thread_that_started_it(tmp_path):
    """PR_SET_PDEATHSIG: the kernel kills the driver when its starting thread ends."""
    procs = bp.SessionProcesses(temp_root=str(tmp_path))
    box: dict = {}

    def start() -> None:
        box["proc"] = subprocess.Popen(["sleep", "60"], env=procs.driver_env(), **procs.popen_kw())

    thread = procs.keeper.run(start)
    wait_for(lambda: "proc" in box, 5, what="the start")
    proc = box["proc"]
    assert proc.poll() is None  # the keeper holds the thread: the driver lives
    procs.keeper.release()
    thread.join(5)
    assert proc.wait(5) == -9
    procs.end()


def test_keeper_thread_is_released_by_end(tmp_path):
    procs = bp.SessionProcesses(temp_root=str(tmp_path))
    ran = threading.Event()
    thread = procs.keeper.run(ran.set)
    assert ran.wait(5)
    assert thread.is_alive()
    procs.end()
    thread.join(5)
    assert not thread.is_alive()


def test_selenium_passes_our_environment_and_preexec_to_the_driver(tmp_path):
    """The pinned Selenium's Service hands ``env`` and ``popen_kw`` to ``subprocess.Popen``: if a
    new version stops, drivers lose their marker, temp dir and death signal. Fails loudly then."""
    from selenium.webdriver.chrome.service import Service as ChromeService

    procs = bp.SessionProcesses(temp_root=str(tmp_path))
    script = tmp_path / "driver.sh"  # a "driver" that reports what it was given, then exits
    script.write_text(f'#!/bin/sh\necho "$TMPDIR ${bp.OWNER_ENV}" > {tmp_path}/seen\nexit 0\n')
    script.chmod(0o755)
    service = ChromeService(executable_path=str(script), env=procs.driver_env(), popen_kw=procs.popen_kw())
    service._start_process(str(script))  # the one private call: Popen without the port wait
    assert service.process.wait(5) == 0
    assert (tmp_path / "seen").read_text().split() == [procs.temp_dir, bp.this_owner()]
    # and the preexec: started from a thread that then ends, the "driver" is killed
    script.write_text("#!/bin/sh\nexec sleep 60\n")
    service = ChromeService(executable_path=str(script), env=procs.driver_env(), popen_kw=procs.popen_kw())
    starter = threading.Thread(target=service._start_process, args=(str(script),))
    starter.start()
    starter.join(5)
    assert service.process.wait(5) == -9
    procs.end()


def test_owner_markers_ignore_the_wall_clock(monkeypatch):
    """A clock stepped while workers run must not make a live owner look dead: the marker is
    the kernel's start time in ticks since boot, read from /proc, never a wall-clock time."""
    before = bp.this_owner()
    assert before.split(".")[1].startswith("t")
    real_boot = psutil.boot_time()
    monkeypatch.setattr(psutil, "boot_time", lambda: real_boot + 3600.0)  # the clock jumped an hour

    def no_wall_clock(self):
        raise AssertionError("the owner check read a wall-clock time")

    monkeypatch.setattr(psutil.Process, "create_time", no_wall_clock)
    assert bp.this_owner() == before
    assert bp.owner_alive(before)


def test_an_older_releases_marker_of_a_live_process_is_alive():
    """A marker in the previous format (wall-clock ms, base 36) of a running process is kept
    alive (a deploy beside a running older instance), a wrong start time is not."""
    started = int(psutil.Process(os.getpid()).create_time() * 1000)
    assert bp.owner_alive(f"{os.getpid()}.{bp._base36(started)}")
    assert not bp.owner_alive(f"{os.getpid()}.{bp._base36(started - 60_000)}")
    assert not bp.owner_alive(_dead_owner())


def test_ownership_covers_unmarked_children_in_the_drivers_session(tmp_path):
    """A "driver" started as the service starts one (its own session id) with a child whose
    environment is cleared (as Chrome starts its renderers): ``owned`` finds both, the marker
    alone finds one, and the reaper kills both once their owner is dead."""
    dead = _dead_owner()
    env = dict(os.environ, **{bp.OWNER_ENV: dead, "TMPDIR": str(tmp_path)})
    driver = subprocess.Popen(["sh", "-c", "env -i sleep 60 & exec sleep 61"], env=env, start_new_session=True)
    try:
        # the child is ours once it has run `env -i` (before that it is a copy of sh, marker and all)
        wait_for(lambda: [c for c in psutil.Process(driver.pid).children() if c.name() == "sleep"], 5,
                 what="the unmarked child")
        [child] = psutil.Process(driver.pid).children()
        assert bp.OWNER_ENV not in bp._environ(child)  # control: the marker alone misses it
        assert {p.pid for p in bp.owned(dead)} == {driver.pid, child.pid}
        killed, _ = browser_reaper.reap_orphans(str(tmp_path))
        assert killed == 2
        assert driver.wait(5) is not None
        wait_for(lambda: not bp.running(child), 5, what="the unmarked child to be reaped")
    finally:
        driver.kill()
        driver.wait(5)


def test_ownership_never_reaches_the_callers_own_session(tmp_path):
    """A marked process left in the caller's session (no new session) takes only itself: the
    caller's session holds the service, its tests, everything else."""
    owner = bp.owner_of(os.getppid())  # alive (no other run's reaper takes this session) and no one else's
    assert owner is not None
    proc = _marked_sleeper(owner, str(tmp_path), own_session=False)
    try:
        wait_for(lambda: bp._environ(psutil.Process(proc.pid)).get(bp.OWNER_ENV), 5, what="the marker")
        assert [p.pid for p in bp.owned(owner)] == [proc.pid]
    finally:
        proc.kill()
        proc.wait(5)


def test_the_reaper_still_ends_an_older_releases_orphans(tmp_path):
    """Orphans of a release before this marker (``INNDX_OWNER``, wall-clock ms, ``inndx-b-``
    dirs) are still found: by their own rule, their owner is dead."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = int(psutil.Process(proc.pid).create_time() * 1000)
    proc.wait()
    legacy = f"{proc.pid}.{bp._base36(started)}"
    orphan = subprocess.Popen(["sleep", "60"], env=dict(os.environ, **{bp.LEGACY_OWNER_ENV: legacy}), start_new_session=True)
    old_dir = tmp_path / f"{bp.LEGACY_TEMP_PREFIX}{legacy}-abc"
    old_dir.mkdir()
    try:
        wait_for(lambda: bp._environ(psutil.Process(orphan.pid)).get(bp.LEGACY_OWNER_ENV), 5, what="the marker")
        killed, removed = browser_reaper.reap_orphans(str(tmp_path))
        assert (killed, removed) == (1, 1) and orphan.wait(5) is not None and not old_dir.exists()
    finally:
        orphan.kill()
        orphan.wait(5)


def test_kill_processes_with_no_grace_kills_at_once_and_returns_when_they_are_gone():
    """A session's teardown (grace 0): SIGKILL without a SIGTERM first (a process that ignores
    SIGTERM ends as fast), and it returns only once none of them runs (a zombie counts as gone)."""
    stubborn = [
        subprocess.Popen(["sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"]) for _ in range(3)
    ]
    try:
        bp.kill_processes([psutil.Process(p.pid) for p in stubborn], grace=0)
        assert [bp.running_pid(p.pid) for p in stubborn] == [False] * 3
        assert [p.wait(5) for p in stubborn] == [-9] * 3  # SIGKILL, not a TERM that was ignored
    finally:
        for proc in stubborn:
            proc.kill()
            proc.wait(5)
