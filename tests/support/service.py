"""Run the real service the way users do: gunicorn with the repo's ``gunicorn.conf.py``.

``Service(env=None, log_dir=None, app="service.app:create_app()", cwd=REPO_ROOT,
config="gunicorn.conf.py", ready_timeout=30, private_networks=True)`` starts
``python -m gunicorn -c <config> <app>`` in its own process group (stdout and stderr to
``<log_dir>/service-<port>.log``) with the environment plus ``PORT``, ``INNDX_HOST=127.0.0.1``,
``INNDX_ALLOW_PRIVATE_NETWORKS=1`` (unless ``private_networks=False``), the warm pool off
(``INNDX_POOL_CHROME=0``, ``INNDX_POOL_FIREFOX=0``) and ``env`` on top (a value
of ``None`` in ``env`` removes that variable). ``start()`` waits until ``GET /healthz`` answers
JSON with ``"ok": true``, or raises ``ServiceError`` with the log tail. Context manager.

``stop(sig=SIGTERM, timeout=30)`` signals the gunicorn master, waits (bounded), SIGKILLs the
process group if it has not exited, and returns the master's exit code (negative: killed by that
signal). Processes of the group, or descendants seen before the stop, still alive after the master
exited are recorded in ``.leftovers`` (``[{"pid", "name", "cmdline"}]``) and then killed, so a test
can assert that shutdown cleaned up after itself. ``stop()`` is idempotent.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from tests.support.ports import free_port, scaled, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
WS_PATH = "/v1/sessions/ws"


class ServiceError(RuntimeError):
    """The service died or never became ready; the message carries the log tail."""


class Service:
    """The real service under gunicorn, on a free loopback port."""

    def __init__(
        self,
        env: Mapping[str, str | None] | None = None,
        log_dir: Path | str | None = None,
        app: str = "service.app:create_app()",
        cwd: Path | str | None = None,
        config: str = "gunicorn.conf.py",
        ready_timeout: float = 30.0,
        private_networks: bool = True,
        command: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.health_port = free_port()  # the master's probes (never PORT + 1: another service may hold it)
        self.host = "127.0.0.1"
        self.app, self.config = app, config
        self.command = command  # instead of the gunicorn command line built from app and config
        self.cwd = Path(cwd) if cwd is not None else REPO_ROOT
        self.ready_timeout = ready_timeout
        self.log_dir = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="inndx-service-"))
        self.log_path = self.log_dir / f"service-{self.port}.log"
        self.env = dict(os.environ)
        self.env.update(PORT=str(self.port), INNDX_HEALTH_PORT=str(self.health_port), INNDX_HOST=self.host, PYTHONUNBUFFERED="1")
        # no warm pool unless the test asks for one in ``env``: a pool holds browsers (or Grid slots)
        # the test did not open, and process checks count every browser of the service
        self.env.update(INNDX_POOL_CHROME="0", INNDX_POOL_FIREFOX="0")
        if private_networks:
            self.env["INNDX_ALLOW_PRIVATE_NETWORKS"] = "1"
        for name, value in (env or {}).items():
            if value is None:
                self.env.pop(name, None)
            else:
                self.env[name] = value
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self.leftovers: list[dict[str, Any]] = []

    # addresses -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}{WS_PATH}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "service not started"
        return self.proc.pid

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> Service:
        """Start gunicorn and wait for /healthz; raise ServiceError with the log tail on failure."""
        if self.proc is not None:
            return self
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cmd = self.command or [sys.executable, "-m", "gunicorn", "-c", self.config, self.app]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            wait_for(self._ready, self.ready_timeout, interval=0.1, what=f"{self.url}/healthz")
        except (TimeoutError, ServiceError) as exc:
            self.stop(sig=signal.SIGKILL, timeout=5)
            raise ServiceError(f"service not ready: {exc}\n--- log tail ---\n{self.log_tail()}") from None
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise ServiceError(f"service exited with code {self.proc.returncode} before becoming ready")
        try:
            return bool(self.healthz(timeout=1.0).get("ok") is True)
        except (OSError, http.client.HTTPException, ValueError):
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Signal the master, wait up to ``timeout`` (scaled), then kill the group; the exit code."""
        proc = self.proc
        if proc is None or self.returncode is not None:
            return self.returncode
        descendants = self._descendants()
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.leftovers = self._survivors(descendants, grace=0)
            self._kill_group()
            proc.wait(scaled(10))
        else:
            self.leftovers = self._survivors(descendants, grace=2)
            self._kill_group()
        self._kill([info["pid"] for info in self.leftovers])
        self.returncode = proc.returncode
        return self.returncode

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # processes -----------------------------------------------------------------------------
    def worker_pids(self) -> list[int]:
        """PIDs of the master's direct children (the gunicorn workers)."""
        try:
            return [p.pid for p in psutil.Process(self.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def _descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def _survivors(self, seen: list[psutil.Process], grace: float) -> list[dict[str, Any]]:
        """Group members and earlier descendants still alive after ``grace`` seconds."""
        found: dict[int, psutil.Process] = {p.pid: p for p in seen if _alive(p)}
        for p in psutil.process_iter():
            try:
                if p.pid != self.pid and os.getpgid(p.pid) == self.pid and _alive(p):
                    found[p.pid] = p
            except (OSError, psutil.Error):
                continue
        _wait_dead(list(found.values()), grace)
        out = []
        for pid, p in sorted(found.items()):
            try:
                if _alive(p):
                    out.append({"pid": pid, "name": p.name(), "cmdline": p.cmdline()})
            except psutil.Error:
                continue
        return out

    @staticmethod
    def _kill(pids: list[int]) -> None:
        procs = []
        for pid in pids:
            try:
                proc = psutil.Process(pid)
                proc.kill()
                procs.append(proc)
            except psutil.Error:
                continue
        _wait_dead(procs, 5)

    def _kill_group(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    # HTTP ----------------------------------------------------------------------------------
    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """GET ``path`` on the service; return (status, body)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=scaled(timeout))
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def healthz(self, timeout: float = 5.0) -> dict[str, Any]:
        """The JSON of GET /healthz (whatever its status)."""
        _, body = self.get("/healthz", timeout)
        data = json.loads(body)
        assert isinstance(data, dict), f"/healthz is not a JSON object: {body!r}"
        return data

    def probe(self, path: str, timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
        """(status, JSON) of the master's ``/healthz`` or ``/readyz`` on the health port."""
        conn = http.client.HTTPConnection(self.host, self.health_port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def metrics(self, timeout: float = 5.0) -> str:
        """The text of GET /metrics."""
        status, body = self.get("/metrics", timeout)
        assert status == 200, f"/metrics answered {status}: {body[:500]!r}"
        return body.decode()

    # logs ----------------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_dead(procs: list[psutil.Process], timeout: float) -> None:
    """Wait up to ``timeout`` (scaled) for ``procs`` to exit (zombies count as exited)."""
    try:
        wait_for(lambda: not any(_alive(p) for p in procs), timeout, interval=0.05, what="processes to exit")
    except TimeoutError:
        pass
