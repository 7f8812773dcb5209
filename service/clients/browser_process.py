"""The processes and files of local browsers: created, watched and destroyed here, nowhere else.

Every local browser session gets:

- **a temp dir of its own**, ``<system temp>/inndx-b-<owner>-XXXX``, given to its driver as
  ``TMPDIR``. Browsers inherit it, so Chrome's ``org.chromium.Chromium.*`` singleton dir, the
  profile chromedriver makes (``.org.chromium.Chromium.*``) and geckodriver's
  ``rust_mozprofile*`` all land inside it, and removing it removes them all.
- **a marker**, ``INNDX_BROWSER_OWNER=<owner>`` in the driver's environment, which every browser process
  inherits. ``<owner>`` names the worker process that started it (``<pid>.<start time>``),
  so a later worker can tell whether the owner is gone. Processes are never matched by name.
- **PR_SET_PDEATHSIG** (SIGKILL) on the driver, set in the child before it executes: when the
  thread that started the driver ends (the whole worker, killed or not), the kernel kills the
  driver. The kernel counts the *thread* that forked as the parent, so the launch thread stays
  alive for as long as the driver (``Keeper``). The browser gets the same signal, tied to its
  driver, from a launcher in the temp dir (``wrap_binary``: ``setpriv --pdeathsig KILL``), so a
  worker killed with its master leaves no browser behind.

- **a session id of its own**: the driver starts a new session (``setsid``); its browsers and
  their children stay in it, so ``owned`` finds the whole tree, Chrome's renderers and helpers
  included (they start with a cleared environment, without the marker).

A browser that still outlives its worker is found by ``browser_reaper.reap_orphans()``, called
once when a worker starts: it kills every process an owner that no longer runs owns, and
removes the temp dirs of such owners.

``SessionProcesses`` is one session's: the driver pid, the process tree seen so far (browsers
re-parent when their driver dies, so it is recorded again before the end), liveness, and
``end()`` (kill what is left, remove the temp dir; idempotent).
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import shlex
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping

import psutil

from service.clients import libc, mounts
from service.clients.browser_user import BrowserUser, clean_environment

logger = logging.getLogger(__name__)

OWNER_ENV = "INNDX_BROWSER_OWNER"
TEMP_PREFIX = "inndx-s-"
# The marker and temp dirs of releases before the owner became the kernel's start time: a new
# worker still reaps their orphans (by their own rule); their reapers cannot see ours.
LEGACY_OWNER_ENV = "INNDX_OWNER"
LEGACY_TEMP_PREFIX = "inndx-b-"
_PR_SET_PDEATHSIG = 1
TEMP_NAME = re.compile(rf"^(?:{re.escape(TEMP_PREFIX)}|{re.escape(LEGACY_TEMP_PREFIX)})(\d+\.[0-9a-z]+)-")
_OWNER = re.compile(r"^(\d+)\.([0-9a-z]+)$")
LEGACY_SLACK = 5.0  # seconds: how far an older marker's wall-clock start may be off


_prctl = libc.function("prctl", [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong])


# ------------------------------------------------------------------------------------ owners


def owner_of(pid: int) -> str | None:
    """The marker naming process ``pid`` as an owner: ``<pid>.t<start time, base 36>`` (short: it
    is part of the temp dir's name, and Chrome's singleton socket path below it must stay under
    the 108 bytes of a Unix socket address). The start time is the kernel's own, in clock ticks
    since boot (``/proc/<pid>/stat``), never a wall-clock time: a clock stepped while workers
    run changes nothing, so no worker takes a live one's browsers for orphans."""
    ticks = _start_ticks(pid)
    return None if ticks is None else f"{pid}.t{_base36(ticks)}"


def _start_ticks(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat``: when the process started, in ticks since boot."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
        return int(data[data.rindex(b")") + 2 :].split()[19])  # fields from the 3rd (after comm)
    except (OSError, ValueError, IndexError):
        return None


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def this_owner() -> str:
    owner = owner_of(os.getpid())
    assert owner is not None, "this process has no start time"
    return owner


def owner_alive(owner: str) -> bool:
    """Whether the process the marker names still runs (same pid and same start time)."""
    match = _OWNER.match(owner)
    if match is None:
        return False
    pid = int(match.group(1))
    if not match.group(2).startswith("t"):  # a marker of an older release: ms since the epoch
        return _legacy_alive(pid, int(match.group(2), 36))
    return owner_of(pid) == owner and running_pid(pid)


def _legacy_alive(pid: int, started_ms: int) -> bool:
    """An older release's marker (its wall-clock start in ms): alive when that pid runs and
    started within LEGACY_SLACK of it, so an instance of the previous release on the same
    machine keeps its browsers while the new one starts (a deploy)."""
    try:
        created = psutil.Process(pid).create_time() * 1000
    except psutil.Error:
        return False
    return abs(created - started_ms) <= LEGACY_SLACK * 1000 and running_pid(pid)


# ------------------------------------------------------------------------------------ liveness


def running(proc: psutil.Process) -> bool:
    """Alive and not a zombie (``is_running`` also checks the pid was not reused)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def running_pid(pid: int) -> bool:
    try:
        return running(psutil.Process(pid))
    except psutil.Error:
        return False


KILL_WAIT = 2.0  # seconds kill_processes waits for SIGKILLed processes to be gone
KILL_POLL = 0.01  # seconds between its looks


def tree_cpu_seconds(root: psutil.Process) -> float:
    """CPU time (user + system) ``root`` and every process under it have spent so far, with
    their children that ended and were reaped (so the sum never falls when one ends)."""
    total = 0.0
    for proc in (root, *root.children(recursive=True)):
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def kill_processes(procs: Iterable[psutil.Process], grace: float = 0.5) -> None:
    """SIGTERM, wait up to ``grace`` seconds, SIGKILL what is left, wait again (bounded). With
    ``grace`` 0: SIGKILL at once, then wait (up to KILL_WAIT) until they are gone."""
    if grace <= 0:
        doomed = []
        for proc in procs:
            try:
                proc.kill()
                doomed.append(proc)
            except psutil.Error:
                pass
        end = time.monotonic() + KILL_WAIT  # a zombie counts as gone: init reaps it when it will
        while any(running(proc) for proc in doomed) and time.monotonic() < end:
            time.sleep(KILL_POLL)
        return
    alive = []
    for proc in procs:
        try:
            if running(proc):
                proc.terminate()
                alive.append(proc)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(alive, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace)


# ------------------------------------------------------------------------------------ one session


def _die_with_parent(parent: int) -> Callable[[], None]:
    """The driver's preexec: SIGKILL when the starting thread ends. Only async-signal-safe work
    here (the ctypes function is resolved before the fork)."""
    prctl = _prctl

    def preexec() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


class Keeper:
    """The thread that starts a driver stays alive until the driver has ended: the kernel's
    death signal follows the forking *thread*. ``run(target)`` runs ``target`` in a new thread
    that then waits for ``release()``."""

    def __init__(self, name: str):
        self._released = threading.Event()
        self._name = name
        self.thread: threading.Thread | None = None

    def run(self, target: Callable[[], None]) -> threading.Thread:
        def body() -> None:
            try:
                target()
            finally:
                self._released.wait()

        self.thread = threading.Thread(target=body, name=self._name, daemon=True)
        self.thread.start()
        return self.thread

    def release(self) -> None:
        self._released.set()


class SessionProcesses:
    """One local browser session's processes and temp dir."""

    def __init__(self, owner: str | None = None, temp_root: str | None = None, user: BrowserUser | None = None):
        self.owner = owner or this_owner()
        self.user = user
        root = temp_root or tempfile.gettempdir()
        self.temp_dir = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{self.owner}-", dir=root)
        if user is not None:
            try:
                user.give(self.temp_dir)
            except OSError:
                shutil.rmtree(self.temp_dir, ignore_errors=True)
                raise
        self.driver_pid: int | None = None
        self.keeper = Keeper("browser-keeper")
        self._procs: dict[int, psutil.Process] = {}
        self._browsers: list[psutil.Process] = []
        self._ended = False
        self._lock = threading.Lock()

    def driver_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The driver's whole environment (``browser_user.clean_environment``: nothing of ours
        but PATH and the locale), with the marker, and the session's temp dir as its temp dir
        and its home."""
        extra = {OWNER_ENV: self.owner, "HOME": self.temp_dir}
        for name in ("TMPDIR", "TMP", "TEMP"):
            extra[name] = self.temp_dir
        return clean_environment(extra, base)

    def wrap_binary(self, binary: str) -> str:
        """A launcher for ``binary``, in the session's temp dir, that arms the kernel's death
        signal in the browser too (``setpriv --pdeathsig KILL``, util-linux): the browser dies
        with its driver, and so with the worker, however it ends, and its own children
        (renderers, content processes) end when it does. Both drivers start browsers from a
        thread that lives as long as they do (the signal follows the forking thread). ``binary``
        itself when there is no ``setpriv``: the reaper then finds what outlives a worker."""
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            logger.warning("no setpriv on PATH: a browser outlives its driver until the reaper finds it")
            return binary
        text = f'#!/bin/sh\nexec {shlex.quote(setpriv)} --pdeathsig KILL -- {shlex.quote(binary)} "$@"\n'
        path = os.path.join(self.temp_dir, "browser")
        with open(path, "w", encoding="utf-8") as script:
            script.write(text)
        if self.user is not None and self.user.switches:
            os.chown(path, self.user.uid, self.user.gid)
        os.chmod(path, 0o500)
        return path

    def popen_kw(self) -> dict:
        """Extra ``subprocess.Popen`` arguments for the driver: the browser user (when the
        service switches users), a session id of its own, and the death signal (armed after the
        switch: the kernel clears it when the user changes)."""
        kw = self.user.popen_kw() if self.user is not None else {}
        kw["preexec_fn"] = _die_with_parent(os.getpid())
        kw["start_new_session"] = True  # the whole tree shares a session id of its own (``owned``)
        return kw

    def attach(self, driver_pid: int) -> None:
        self.driver_pid = driver_pid
        self.record_tree()

    def record_tree(self) -> None:
        """Remember the driver and its descendants (they may be re-parented later)."""
        if self.driver_pid is None:
            return
        try:
            root = psutil.Process(self.driver_pid)
            found = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        with self._lock:
            for proc in found:
                self._procs.setdefault(proc.pid, proc)

    def browser_procs(self) -> list[psutil.Process]:
        """The driver's direct children as seen now (the main browser process)."""
        if self.driver_pid is None:
            return []
        try:
            return psutil.Process(self.driver_pid).children()
        except psutil.Error:
            return []

    def watch_browsers(self) -> None:
        """Remember the driver's children now (after the start): the browsers ``alive`` checks."""
        self._browsers = self.browser_procs()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the driver and every process under it have spent so far."""
        return 0.0 if self.driver_pid is None else tree_cpu_seconds(psutil.Process(self.driver_pid))

    def alive(self) -> bool:
        """The driver runs, and so does one of the browsers it had started (when it had any)."""
        if self.driver_pid is None:
            return True
        if not running_pid(self.driver_pid):
            return False
        return not self._browsers or any(running(proc) for proc in self._browsers)

    def end(self, grace: float = 0.5) -> None:
        """Kill whatever is left of the tree, release the keeper, remove the temp dir. Idempotent."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        self.record_tree()
        with self._lock:
            procs = list(self._procs.values())
        procs += owned(self.owner, self.temp_dir)  # anything that left the tree
        kill_processes(procs, grace=grace)
        self.keeper.release()
        mounts.unmount_below(self.temp_dir)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def owned(owner: str, temp_dir: str | None = None) -> list[psutil.Process]:
    """Every process of ``owner`` (of one session of it, by its temp dir, when given): those that
    carry the marker, and every process in the same session id as one of them. Chrome starts its
    renderers and helpers with a cleared environment (no marker), but they stay in the session
    their driver was started in (``start_new_session``), which is the session's alone."""
    return owned_by(lambda env: env.get(OWNER_ENV) == owner and (temp_dir is None or env.get("TMPDIR") == temp_dir))


def owned_by(is_ours: Callable[[dict[str, str]], bool]) -> list[psutil.Process]:
    """The processes whose environment ``is_ours`` accepts, and every process sharing a session
    id with one of them (never the caller's own session)."""
    marked: dict[int, psutil.Process] = {}
    by_session: dict[int, list[psutil.Process]] = {}
    for proc in psutil.process_iter():
        sid = _session_of(proc.pid)
        if sid is not None:
            by_session.setdefault(sid, []).append(proc)
        if is_ours(_environ(proc)):
            marked[proc.pid] = proc
    sessions = {_session_of(pid) for pid in marked} - {None, 0, 1, os.getsid(0)}
    found = dict(marked)
    for sid in sessions:
        for proc in by_session.get(sid, []):
            found.setdefault(proc.pid, proc)
    return list(found.values())


def _session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def _environ(proc: psutil.Process) -> dict[str, str]:
    try:
        return proc.environ()
    except (psutil.Error, OSError):
        return {}
