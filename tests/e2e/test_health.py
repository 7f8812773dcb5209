"""Liveness and readiness from the gunicorn master (``service.health``), on the health port.

- idle: both 200, with the figures behind them;
- at the session capacity: /readyz 503 "at capacity" (a load balancer sends new sessions
  elsewhere), /healthz still 200; one session fewer: ready again;
- a worker that gets no CPU (SIGSTOP): the master still answers at once; /readyz 503
  "overloaded" as soon as the worker's status is stale, /healthz 503 once its heartbeat is older
  than the liveness bound; SIGCONT: both 200 again. Control: the worker's own /healthz, on the
  main port, cannot answer meanwhile (what an orchestrator would have probed before).
"""

from __future__ import annotations

import http.client
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import service_env
from tests.support.ports import wait_for
from tests.support.service import Service
from tests.support.wsclient import connect

pytestmark = [pytest.mark.clientless, pytest.mark.local_only]

LIVENESS = 4.0  # seconds: this module's INNDX_LIVENESS_TIMEOUT


@pytest.fixture(scope="module")
def svc(grid, logs: Path) -> Iterator[Service]:
    env = service_env(grid, INNDX_MAX_SESSIONS="2", INNDX_LIVENESS_TIMEOUT=f"{LIVENESS:g}s")
    with Service(env=env, log_dir=logs) as running:
        yield running


def _verdict(svc: Service, path: str) -> tuple[int, str | None]:
    status, body = svc.probe(path, timeout=2.0)
    return status, body.get("why")


def test_idle_instance_is_alive_and_ready(svc: Service):
    status, body = svc.probe("/healthz", timeout=2.0)
    assert status == 200 and body["ok"] and len(body["workers"]) == 1, body
    status, body = svc.probe("/readyz", timeout=2.0)
    assert status == 200 and body["ok"] and body["max_sessions"] == 2 and body["active_sessions"] == 0, body


def test_at_capacity_the_instance_is_alive_but_not_ready(svc: Service):
    first, second = connect(svc.ws_url), connect(svc.ws_url)
    try:
        first.open(client="standard")
        second.open(client="standard")
        wait_for(lambda: _verdict(svc, "/readyz") == (503, "at capacity: 2 of 2 sessions"), 5, what="not ready")
        assert _verdict(svc, "/healthz") == (200, None)
        assert first.request({"action": "close"}, timeout=10) == {"action": "closed"}
        wait_for(lambda: _verdict(svc, "/readyz") == (200, None), 5, what="ready again")
    finally:
        first.close()
        second.close()


def test_a_stopped_worker_is_reported_by_the_master_at_once(svc: Service):
    [worker] = svc.worker_pids()
    os.kill(worker, signal.SIGSTOP)
    try:
        wait_for(lambda: _verdict(svc, "/readyz")[0] == 503, 6, interval=0.2, what="not ready")
        status, why = _verdict(svc, "/readyz")
        assert status == 503 and why.startswith(f"overloaded: worker [{worker}] did not report"), why
        with pytest.raises((TimeoutError, OSError, http.client.HTTPException)):
            svc.get("/healthz", timeout=1.0)  # control: the worker itself cannot answer
        wait_for(lambda: _verdict(svc, "/healthz")[0] == 503, LIVENESS + 4, interval=0.2, what="not alive")
        assert _verdict(svc, "/healthz") == (503, f"no heartbeat from worker [{worker}] for over {LIVENESS:g}s")
    finally:
        os.kill(worker, signal.SIGCONT)
    wait_for(lambda: _verdict(svc, "/healthz") == (200, None) and _verdict(svc, "/readyz") == (200, None), 10,
             what="alive and ready again")
    assert svc.worker_pids() == [worker]  # the same worker: nothing was restarted
