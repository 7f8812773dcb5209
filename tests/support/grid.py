"""Start a real Selenium Grid for tests.

The Grid is started through ``scripts/grid`` (the same script and node config
template, ``scripts/grid-node.toml.in``, that operators use), on free loopback
ports, each Java process in its own process group with stdout/stderr in a log
file. ``scripts/setup`` must have run (it installs the jar, drivers, browsers).

    with Grid.start(mode="distributed", max_sessions=2, log_dir=tmp_path) as grid:
        driver = webdriver.Remote(command_executor=grid.url, options=opts)
        ...
        grid.kill_node()        # the node (JVM, drivers, browsers) dies with SIGKILL

Plain Python: no pytest import.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Self

from tests.support.ports import free_port, scaled

ROOT = Path(__file__).resolve().parents[2]
GRID_SCRIPT = ROOT / "scripts" / "grid"
GRID_JAR = ROOT / ".tools" / "selenium-server.jar"
HOST = "127.0.0.1"

__all__ = ["Grid", "GridError", "free_port", "grid_available"]


class GridError(RuntimeError):
    """The Grid did not start, or not in time. The message ends with the logs' tails."""


def grid_available() -> bool:
    """True when scripts/setup has installed the Grid jar."""
    return GRID_JAR.exists() and GRID_SCRIPT.exists()


def _free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return list(ports)


MARKER_VAR = "INNDX_GRID_ID"


def _marked(marker: str) -> list[int]:
    """Live processes whose environment carries ``INNDX_GRID_ID=marker``.

    Every process the Grid starts inherits it, including ones that leave the
    process group (Chromium's crashpad handler daemonizes into its own group).
    """
    needle = f"{MARKER_VAR}={marker}".encode()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    out.append(int(entry))
        except OSError:
            continue
    return out


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc; no psutil needed)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class _Proc:
    """One Grid component: a process group led by ``scripts/grid`` (which execs java)."""

    def __init__(self, name: str, args: list[str], log_path: Path, env: dict[str, str]):
        self.name = name
        self.marker = f"{name}-{uuid.uuid4().hex}"
        env = {**env, MARKER_VAR: self.marker}
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 (lives as long as the process)
        self.popen = subprocess.Popen(
            [str(GRID_SCRIPT), *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own session and process group
            cwd=str(ROOT),
            env=env,
        )
        self.pgid = self.popen.pid

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def _group_alive(self) -> bool:
        """Any non-zombie process left in the group? (Zombies wait for PID 1 to reap them.)"""
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().decode(errors="replace").rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == self.pgid:
                return True
        return False

    def _signal_all(self, sig: int, extra: list[int]) -> None:
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            pass
        for pid in extra:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, grace: float = 10.0, sig: int = signal.SIGTERM) -> None:
        """Signal the group (and any descendant that left it), wait, then SIGKILL."""
        # Browsers may start helpers in other process groups: remember them now,
        # while the tree is still connected.
        extra = (_descendants(self.pid) if self.alive() else []) + _marked(self.marker)
        if sig != signal.SIGKILL:
            self._signal_all(sig, extra)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                if self.popen.poll() is not None and not self._group_alive():
                    break
                time.sleep(0.05)
        extra += (
            [p for p in _descendants(self.pid) if p not in extra]
            if self.alive()
            else []
        )
        extra += [p for p in _marked(self.marker) if p not in extra]
        self._signal_all(signal.SIGKILL, extra)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 5
        while (
            self._group_alive() or _marked(self.marker)
        ) and time.monotonic() < deadline:
            for pid in _marked(self.marker):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        self._log.close()

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"[{self.name}] {line}" for line in lines[-n:])


class Grid:
    """A running Selenium Grid. Build it with :meth:`Grid.start`."""

    def __init__(self, mode: str, log_dir: Path, max_sessions: int):
        self.mode = mode
        self.log_dir = log_dir
        self.max_sessions = max_sessions
        self.port = 0
        self.url = ""
        self.hub: _Proc | None = None  # hub or standalone
        self.node: _Proc | None = None  # distributed only
        self._stopped = False

    # -- starting -------------------------------------------------------------

    @classmethod
    def start(
        cls,
        mode: str = "distributed",
        max_sessions: int = 2,
        log_dir: Path | str | None = None,
        *,
        session_timeout: int = 600,
        request_timeout: int = 60,
        timeout: float = 90.0,
    ) -> Grid:
        """Start a Grid and wait until it is ready with its slots registered.

        mode: "distributed" (a hub and one node, two JVMs) or "standalone" (one JVM).
        max_sessions: concurrent sessions on the node (each browser gets that many slots).
        log_dir: where hub.log / node.log / standalone.log and the node TOML go
            (default: a new temporary directory).
        session_timeout: seconds of inactivity after which the node kills a session.
        request_timeout: seconds a new-session request may wait for a free slot.
        timeout: bound on the readiness wait (nominal seconds, scaled by
            INNDX_TEST_TIMEOUT_FACTOR, like every timeout in tests.support); on failure everything is stopped and
            GridError (with the logs' tails) is raised.
        """
        if mode not in ("distributed", "standalone"):
            raise ValueError(
                f"mode must be 'distributed' or 'standalone', not {mode!r}"
            )
        if not GRID_JAR.exists():
            raise GridError(f"{GRID_JAR} is missing: run scripts/setup")
        log_dir = (
            Path(log_dir)
            if log_dir is not None
            else Path(tempfile.mkdtemp(prefix="grid-"))
        )
        log_dir.mkdir(parents=True, exist_ok=True)
        grid = cls(mode, log_dir, max_sessions)
        atexit.register(grid.stop)
        env = dict(os.environ)
        # Selenium's environment overrides (SE_*) outrank our flags: keep them out.
        for key in [k for k in env if k.startswith("SE_")]:
            del env[key]
        node_opts = [
            "--max-sessions",
            str(max_sessions),
            "--session-timeout",
            str(session_timeout),
            "--run-dir",
            str(log_dir),
        ]
        try:
            if mode == "standalone":
                (grid.port,) = _free_ports(1)
                grid.hub = _Proc(
                    "standalone",
                    [
                        "standalone",
                        "--port",
                        str(grid.port),
                        "--request-timeout",
                        str(request_timeout),
                        *node_opts,
                    ],
                    log_dir / "standalone.log",
                    env,
                )
            else:
                grid.port, pub, sub, node_port = _free_ports(4)
                grid.hub = _Proc(
                    "hub",
                    [
                        "hub",
                        "--port",
                        str(grid.port),
                        "--publish-port",
                        str(pub),
                        "--subscribe-port",
                        str(sub),
                        "--request-timeout",
                        str(request_timeout),
                    ],
                    log_dir / "hub.log",
                    env,
                )
                grid.node = _Proc(
                    "node",
                    [
                        "node",
                        "--hub",
                        f"http://{HOST}:{grid.port}",
                        "--port",
                        str(node_port),
                        "--publish-port",
                        str(pub),
                        "--subscribe-port",
                        str(sub),
                        *node_opts,
                    ],
                    log_dir / "node.log",
                    env,
                )
            grid.url = f"http://{HOST}:{grid.port}"
            grid.wait_ready(timeout)
        except BaseException:
            grid.stop()
            raise
        return grid

    def status(self, timeout: float = 2.0) -> dict:
        """The Grid's ``GET /status`` ``value`` object."""
        with urllib.request.urlopen(f"{self.url}/status", timeout=timeout) as resp:
            return json.load(resp)["value"]

    def slots(self) -> int:
        """Number of slots on nodes that are UP."""
        try:
            value = self.status()
        except (OSError, ValueError, KeyError):
            return 0
        return sum(
            len(n.get("slots", []))
            for n in value.get("nodes", [])
            if n.get("availability") == "UP"
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Poll /status until ready and a node with slots is UP; GridError otherwise.

        ``timeout`` is in nominal seconds, scaled by the suite's timeout factor.
        """
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            for proc in self._procs():
                if not proc.alive():
                    raise GridError(
                        f"Grid {proc.name} exited with {proc.popen.returncode}\n{self._tails()}"
                    )
            try:
                value = self.status()
                slots = sum(
                    len(n.get("slots", []))
                    for n in value.get("nodes", [])
                    if n.get("availability") == "UP"
                )
                if value.get("ready") and slots > 0:
                    return
                last = (
                    f"ready={value.get('ready')} slots={slots}: {value.get('message')}"
                )
            except (OSError, ValueError, KeyError) as e:
                last = repr(e)
            if time.monotonic() >= deadline:
                raise GridError(
                    f"Grid not ready after {timeout:.1f}s ({last})\n{self._tails()}"
                )
            time.sleep(0.1)

    # -- failures and stopping ------------------------------------------------

    def kill_node(self) -> None:
        """Kill the node with SIGKILL, with its drivers and browsers (distributed mode).

        The hub stays up; sessions on the node are lost. In standalone mode the node
        is the whole Grid, so this kills the whole standalone server.
        """
        proc = self.node if self.mode == "distributed" else self.hub
        if proc is not None:
            proc.stop(sig=signal.SIGKILL)

    def stop(self) -> None:
        """Stop everything (node first): SIGTERM to each process group, wait, SIGKILL. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for proc in (self.node, self.hub):
            if proc is not None:
                proc.stop()
        atexit.unregister(self.stop)

    def leftover_pids(self) -> list[int]:
        """Processes this Grid started that are still alive (empty after stop())."""
        return sorted({pid for p in self._procs() for pid in _marked(p.marker)})

    def _procs(self) -> list[_Proc]:
        return [p for p in (self.hub, self.node) if p is not None]

    def _tails(self) -> str:
        return "\n".join(p.log_tail() for p in self._procs())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Grid {self.mode} {self.url or '(not started)'}>"
