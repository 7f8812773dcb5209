"""Liveness and readiness, answered by the gunicorn master, never by a busy worker.

A worker carrying a thousand busy sessions answers HTTP slowly (every thread waits its turn for
the interpreter), so an orchestrator's probe with a one-second timeout would kill a healthy
instance. The master does nothing but watch its workers, so it answers instead, on a port of its
own (``INNDX_HEALTH_PORT``, default ``PORT + 1``), from two facts:

- **each worker's heartbeat** to gunicorn (the mtime of its heartbeat file, on the monotonic
  clock; gunicorn kills a worker whose heartbeat is ``timeout`` old);
- **each worker's status file**, written every ``STATUS_INTERVAL`` by a thread of the worker
  (``StatusWriter``): its sessions, its capacity, whether it is shutting down.

``GET /healthz`` (alive): 200 while every worker's heartbeat is younger than the liveness bound
(``INNDX_LIVENESS_TIMEOUT``, 30 s), 503 naming the worker that is not. ``GET /readyz`` (send me new
sessions): 503 while the instance is shutting down, at its session capacity, or overloaded (a
worker's status older than ``STALE_STATUS``: its threads do not get the interpreter), 200
otherwise. Both bodies are JSON with the figures behind the verdict.

The master's server thread is forked into every worker: ``close_in_child`` closes the copy of
its socket there. It logs nothing and imports nothing lazily (a lock held by it at a fork would
stay held in the child).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STATUS_INTERVAL = 0.5  # seconds between a worker's status writes
STALE_STATUS = 3.0  # seconds: a worker whose status is older is overloaded (or stopped)


class StatusWriter:
    """A worker's thread writing ``status()`` (a JSON-able dict) to ``<directory>/<pid>.json``."""

    def __init__(self, directory: str, status: Callable[[], dict[str, Any]], interval: float = STATUS_INTERVAL):
        self.path = os.path.join(directory, f"{os.getpid()}.json")
        self._status = status
        self._interval = interval
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="health-status", daemon=True)

    def start(self) -> StatusWriter:
        self.write()
        self.thread.start()
        return self

    def write(self) -> None:
        document = dict(self._status(), pid=os.getpid(), written=time.monotonic())
        partial = f"{self.path}.{threading.get_ident()}.tmp"
        with open(partial, "w", encoding="utf-8") as file:
            json.dump(document, file)
        os.replace(partial, self.path)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.write()
            except OSError:
                pass  # the directory went with the master: nobody is asking any more

    def stop(self) -> None:
        self._stop.set()


def verdicts(
    heartbeats: Mapping[int, float],
    statuses: Mapping[int, dict[str, Any]],
    now: float,
    liveness_timeout: float,
    max_sessions: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(liveness, readiness) documents, each with ``ok``, for the workers' heartbeats (pid ->
    monotonic time of the last one) and their statuses (pid -> the last status written)."""
    workers = []
    for pid, beat in sorted(heartbeats.items()):
        status = statuses.get(pid) or {}
        written = status.get("written")
        workers.append(
            {
                "pid": pid,
                "heartbeat_age": round(now - beat, 3),
                "status_age": None if written is None else round(now - written, 3),
                "active_sessions": status.get("active_sessions"),
                "shutting_down": bool(status.get("shutting_down")),
            }
        )
    stuck = [w["pid"] for w in workers if w["heartbeat_age"] > liveness_timeout]
    why = None
    if not workers:
        why = "no worker runs"
    elif stuck:
        why = f"no heartbeat from worker {stuck} for over {liveness_timeout:g}s"
    alive = {"ok": why is None, "why": why, "workers": workers}
    sessions = sum(w["active_sessions"] or 0 for w in workers)
    if not alive["ok"]:
        why = alive["why"]
    elif any(w["shutting_down"] for w in workers):
        why = "shutting down"
    elif any(w["status_age"] is None or w["status_age"] > STALE_STATUS for w in workers):
        slow = [w["pid"] for w in workers if w["status_age"] is None or w["status_age"] > STALE_STATUS]
        why = f"overloaded: worker {slow} did not report within {STALE_STATUS:g}s"
    elif sessions >= max_sessions:
        why = f"at capacity: {sessions} of {max_sessions} sessions"
    ready = {"ok": why is None, "why": why, "active_sessions": sessions, "max_sessions": max_sessions, "workers": workers}
    return alive, ready


def read_statuses(directory: str) -> dict[int, dict[str, Any]]:
    statuses = {}
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as file:
                status = json.load(file)
            statuses[int(status["pid"])] = status
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return statuses


class HealthServer:
    """The master's probe server: ``heartbeats()`` gives pid -> last heartbeat (monotonic)."""

    def __init__(
        self,
        host: str,
        port: int,
        heartbeats: Callable[[], Mapping[int, float]],
        liveness_timeout: float,
        max_sessions: int,
    ):
        self.directory = tempfile.mkdtemp(prefix="inndx-health-")
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                if self.path not in ("/healthz", "/readyz"):
                    self._reply(404, {"ok": False, "why": "GET /healthz or /readyz"})
                    return
                alive, ready = verdicts(
                    heartbeats(), read_statuses(outer.directory), time.monotonic(), liveness_timeout, max_sessions
                )
                document = alive if self.path == "/healthz" else ready
                self._reply(200 if document["ok"] else 503, document)

            def _reply(self, code: int, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet (see the module's doc)
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.5}, name="health", daemon=True
        )

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def close_in_child(self) -> None:
        """In a forked worker: drop the copy of the listening socket (the thread did not fork)."""
        try:
            self.server.socket.close()
        except OSError:
            pass

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for name in os.listdir(self.directory):
            try:
                os.unlink(os.path.join(self.directory, name))
            except OSError:
                pass
        try:
            os.rmdir(self.directory)
        except OSError:
            pass
