"""gunicorn configuration: ``gunicorn -c gunicorn.conf.py 'service.app:create_app()'``.

Threaded workers: each WebSocket holds one gunicorn thread for its whole life. The thread
budget comes from one setting, INNDX_MAX_SESSIONS (default 1000 per instance): each worker
carries its share of it (INNDX_WORKERS, default 1) and gets that many threads, one more for each
live viewer it allows (INNDX_LIVE_MAX_VIEWERS), plus a RESERVE that sessions never take, so
``/healthz``, ``/metrics`` and the refusal of an upgrade at the cap (503 with Retry-After,
decided before the upgrade) always find a thread.
``worker_connections`` leaves room for the reserve's keep-alive connections beyond that, so
gunicorn never stops accepting while the sessions are full.

The interpreter's switch interval is raised to SWITCH_INTERVAL in each worker. Every thread
that waits for the interpreter lock wakes up each interval to ask for it; with a thousand
sessions busy at once, a thousand threads waking every 5 ms (Python's default) spent the
machine on those wake-ups (`bench/load.py`, N=1000: about 1 goto/s and nearly every goto timed
out, in two runs; 266 gotos/s with 50 ms). Our threads give the lock up on every socket
operation long before the interval, so only a thread that computes for that long is affected.

Health: the master answers /healthz and /readyz on INNDX_HEALTH_PORT (default PORT + 1) from
the workers' heartbeats and the status each worker writes twice a second (``service.health``), so
a probe is answered at once however busy the workers are.

Shutdown: on SIGTERM each worker first tells its sessions (fatal 503, close 1001) and quits
their browsers, then lets gunicorn stop; ``worker_exit`` repeats that as a backstop. With
INNDX_REDIS_URL, standard sessions are handed over instead (fatal 503 ``resumable``, close 1012):
their records are left for another instance to adopt (``service.handover``).
"""

import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the gunicorn script's path lacks the repo
from service.config import Settings  # noqa: E402
from service.health import HealthServer, StatusWriter  # noqa: E402

bind = f"{os.environ.get('INNDX_HOST', '127.0.0.1')}:{os.environ.get('PORT', '8022')}"
worker_class = "gthread"
_settings = Settings.from_env()
RESERVE = 32  # threads no session takes: health checks, metrics, refusals
SWITCH_INTERVAL = 0.05  # seconds (Python's default: 0.005); see above
workers = _settings.workers
threads = _settings.worker_max_sessions + _settings.live_max_viewers + RESERVE  # live viewers hold one each
worker_connections = threads + 256
backlog = 2048
timeout = 60  # the worker heartbeat; not a request timeout for gthread
graceful_timeout = 30
keepalive = 5
accesslog = None
loglevel = os.environ.get("INNDX_LOG_LEVEL", "info")

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "service.log_format.ContextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(tenant)s %(session_id)s] %(message)s",
        },
        "generic": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"},
    },
    "handlers": {
        "service": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"},
        "console": {"class": "logging.StreamHandler", "formatter": "generic", "stream": "ext://sys.stderr"},
    },
    "loggers": {
        "service": {"level": loglevel.upper(), "handlers": ["service"], "propagate": False},
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["console"], "propagate": False},
        # third-party loggers would log URLs (with their queries) at INFO
        "selenium": {"level": "WARNING", "handlers": ["service"], "propagate": False},
        "httpx": {"level": "WARNING", "handlers": ["service"], "propagate": False},
        "httpcore": {"level": "WARNING", "handlers": ["service"], "propagate": False},
        "urllib3": {"level": "WARNING", "handlers": ["service"], "propagate": False},
    },
}


_health: HealthServer | None = None  # the master's probe server (service.health)


def when_ready(server):
    """In the master: answer /healthz and /readyz on the health port from the workers' heartbeats
    and status files. A port that cannot be had is logged, never fatal."""
    global _health

    def heartbeats():
        return {pid: worker.tmp.last_update() for pid, worker in list(server.WORKERS.items())}

    host, port = _settings.health_address
    try:
        _health = HealthServer(host, port, heartbeats, _settings.liveness_timeout, _settings.max_sessions).start()
    except OSError as exc:
        server.log.error("no health probes: cannot listen on %s:%s (%s); set INNDX_HEALTH_PORT", host, port, exc)
    else:
        server.log.info("health probes on http://%s:%s (/healthz, /readyz)", host, _health.port)


def post_fork(server, worker):
    if _health is not None:
        _health.close_in_child()


def on_exit(server):
    if _health is not None:
        _health.stop()


def _hub(worker):
    app = getattr(worker, "wsgi", None)
    return getattr(app, "extensions", {}).get("inndx")


def post_worker_init(worker):
    """Chain our session shutdown in front of gunicorn's own SIGTERM handling."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    hub = _hub(worker)
    if _health is not None and hub is not None:
        StatusWriter(_health.directory, hub.status).start()
    gunicorn_handler = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):
        hub = _hub(worker)
        if hub is not None:
            threading.Thread(target=hub.shutdown, name="session-shutdown", daemon=True).start()
        if callable(gunicorn_handler):
            gunicorn_handler(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def worker_exit(server, worker):
    hub = _hub(worker)
    if hub is not None:
        hub.shutdown()
