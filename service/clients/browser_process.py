"""The processes and files of local browsers: created, watched and destroyed here, nowhere else.

Every local browser session gets:

- **a temp dir of its own**, ``<system temp>/inndx-b-<owner>-XXXX``, given to its driver as
  ``TMPDIR``. Browsers inherit it, so Chrome's ``org.chromium.Chromium.*`` singleton dir, the
  profile chromedriver makes (``.org.chromium.Chromium.*``) and geckodriver's
  ``rust_mozprofile*`` all land inside it, and removing it removes them all.
- **a marker**, ``INNDX_OWNER=<owner>`` in the driver's environment, which every browser process
  inherits. ``<owner>`` names the worker process that started it (``<pid>.<start time>``),
  so a later worker can tell whether the owner is gone. Processes are never matched by name.
- **PR_SET_PDEATHSIG** (SIGKILL) on the driver, set in the child before it executes: when the
  thread that started the driver ends (the whole worker, killed or not), the kernel kills the
  driver. The kernel counts the *thread* that forked as the parent, so the launch thread stays
  alive for as long as the driver (``Keeper``).

A driver killed that way leaves its browsers orphaned: ``reap_orphans()``, called once when a
worker starts, kills every process whose marker names an owner that no longer runs, and removes
temp dirs of owners that no longer run.

``SessionProcesses`` is one session's: the driver pid, the process tree seen so far (browsers
re-parent when their driver dies, so it is recorded again before the end), liveness, and
``end()`` (kill what is left, remove the temp dir; idempotent).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping

import psutil

logger = logging.getLogger(__name__)

OWNER_ENV = "INNDX_OWNER"
TEMP_PREFIX = "inndx-b-"
_PR_SET_PDEATHSIG = 1
_TEMP_NAME = re.compile(rf"^{re.escape(TEMP_PREFIX)}(\d+\.[0-9a-z]+)-")
_OWNER = re.compile(r"^(\d+)\.([0-9a-z]+)$")


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, resolved once in the parent (never looked up in a forked child)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        prctl = ctypes.CDLL(name, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_prctl = _load_prctl()


# ------------------------------------------------------------------------------------ owners


def owner_of(pid: int) -> str | None:
    """The marker naming process ``pid`` as an owner: ``<pid>.<start time in ms, base 36>``
    (short: it is part of the temp dir's name, and Chrome's singleton socket path below it must
    stay under the 108 bytes of a Unix socket address)."""
    try:
        return f"{pid}.{_base36(int(psutil.Process(pid).create_time() * 1000))}"
    except psutil.Error:
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
    return owner_of(pid) == owner and running_pid(pid)


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


def kill_processes(procs: Iterable[psutil.Process], grace: float = 0.5) -> None:
    """SIGTERM, wait up to ``grace`` seconds, SIGKILL what is left, wait again (bounded)."""
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

    def __init__(self, owner: str | None = None, temp_root: str | None = None):
        self.owner = owner or this_owner()
        root = temp_root or tempfile.gettempdir()
        self.temp_dir = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{self.owner}-", dir=root)
        self.driver_pid: int | None = None
        self.keeper = Keeper("browser-keeper")
        self._procs: dict[int, psutil.Process] = {}
        self._browsers: list[psutil.Process] = []
        self._ended = False
        self._lock = threading.Lock()

    def driver_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The driver's environment: ours, with the marker and the session's temp dir."""
        env = dict(os.environ if base is None else base)
        env[OWNER_ENV] = self.owner
        for name in ("TMPDIR", "TMP", "TEMP"):
            env[name] = self.temp_dir
        return env

    def popen_kw(self) -> dict:
        """Extra ``subprocess.Popen`` arguments for the driver."""
        return {"preexec_fn": _die_with_parent(os.getpid())}

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
        procs += _marked(self.owner, self.temp_dir)  # anything that left the tree
        kill_processes(procs, grace=grace)
        self.keeper.release()
        unmount_below(self.temp_dir)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _marked(owner: str, temp_dir: str) -> list[psutil.Process]:
    """Processes carrying this session's marker and temp dir in their environment."""
    found = []
    for proc in psutil.process_iter():
        env = _environ(proc)
        if env.get(OWNER_ENV) == owner and env.get("TMPDIR") == temp_dir:
            found.append(proc)
    return found


def _environ(proc: psutil.Process) -> dict[str, str]:
    try:
        return proc.environ()
    except (psutil.Error, OSError):
        return {}


# ------------------------------------------------------------------------------------ mounts


def unmount_below(path: str) -> int:
    """Detach every mount at or below ``path`` (a session's downloads tmpfs, mounted by
    ``browser_downloads`` when the service runs as root), so the dir can be removed. Lazy
    (MNT_DETACH): a browser still holding a file there frees it when it dies. Returns how many."""
    if _umount2 is None:
        return 0
    prefix = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            points = [_unescape(line.split()[4]) for line in f if len(line.split()) > 4]
    except OSError:
        return 0
    done = 0
    for point in sorted(points, key=len, reverse=True):  # the deepest first
        if point == prefix or point.startswith(prefix + "/"):
            if _umount2(point.encode(), _MNT_DETACH) == 0:
                done += 1
    return done


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _load_umount2() -> Callable[..., int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        umount2 = ctypes.CDLL(name, use_errno=True).umount2
    except (OSError, AttributeError):
        return None
    umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    umount2.restype = ctypes.c_int
    return umount2


_umount2 = _load_umount2()
_MNT_DETACH = 2


# ------------------------------------------------------------------------------------ reaper


def reap_orphans(temp_root: str | None = None, grace: float = 0.5) -> tuple[int, int]:
    """Kill every process whose marker names an owner that no longer runs, and remove the temp
    dirs of such owners. Returns (processes killed, dirs removed). Safe to call at any time: an
    owner that runs keeps its processes and dirs."""
    me = os.getpid()
    verdicts: dict[str, bool] = {}

    def orphaned(owner: str) -> bool:
        if owner not in verdicts:
            verdicts[owner] = not owner_alive(owner)
        return verdicts[owner]

    victims = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        owner = _environ(proc).get(OWNER_ENV)
        if owner and orphaned(owner):
            victims.append(proc)
    kill_processes(victims, grace=grace)
    removed = 0
    root = temp_root or tempfile.gettempdir()
    try:
        names = os.listdir(root)
    except OSError:
        names = []
    for name in names:
        match = _TEMP_NAME.match(name)
        if match and orphaned(match.group(1)):
            unmount_below(os.path.join(root, name))
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed += 1
    if victims or removed:
        logger.warning(
            "reaped %d browser processes and %d temp dirs left by workers that died",
            len(victims),
            removed,
        )
    return len(victims), removed
