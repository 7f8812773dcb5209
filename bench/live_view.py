"""What the live view costs a session: its actions' latency with 0, 1 and 2 viewers watching.

Starts the real service (gunicorn, the project's config) and the test site on loopback; for each
browser kind, opens one session, and for 0, 1 and 2 viewers (WebSocket clients of
``/v1/sessions/<id>/live/ws`` on threads of this process, counting what they get): with the
session idle on a page that changes colour every 50 ms (every capture a new frame), the CPU
seconds the service and its browsers spend per second over ``--idle`` seconds and the frames a
second each viewer gets, and their size; then evaluate, screenshot and goto p50/p95 over
``--rounds`` each, the viewers still watching.

    .venv/bin/python bench/live_view.py [--rounds 30] [--idle 5] [--clients chrome,firefox]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from pathlib import Path

import psutil
import websocket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.clients.browser_process import tree_cpu_seconds  # noqa: E402
from tests.support.service import Service  # noqa: E402
from tests.support.site import Site  # noqa: E402
from tests.support.wsclient import connect  # noqa: E402

ANIMATE = (
    "let n = 0; setInterval(() => { document.body.style.background = "
    "'hsl(' + (n++ * 47 % 360) + ', 80%, 50%)'; }, 50); return null"
)


class Watcher(threading.Thread):
    """One viewer: reads frames until told to stop, counting them and their bytes."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.ws = websocket.create_connection(url, timeout=10, header=["X-Tenant-Id: bench"])
        self.frames = 0
        self.bytes = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with contextlib.suppress(websocket.WebSocketException, OSError):
            while not self.stop.is_set():
                data = self.ws.recv()
                if isinstance(data, bytes):
                    self.frames += 1
                    self.bytes += len(data)

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(Exception):
            self.ws.close(timeout=2)
        self.join(5)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def request(session, frame: dict) -> float:
    started = time.perf_counter()
    reply = session.request(frame, timeout=60)
    assert reply.get("type") not in ("error", "fatal"), reply
    return (time.perf_counter() - started) * 1000


def run(service: Service, site: Site, kind: str, rounds: int, idle: float) -> None:
    master = psutil.Process(service.pid)
    session = connect(service.ws_url, tenant="bench", timeout=60)
    session.open(client=kind, recv_timeout=60)
    frames_url = f"{service.ws_url.removesuffix('/ws')}/{session.session_id}/live/ws"
    try:
        for viewers in (0, 1, 2):
            request(session, {"action": "goto", "url": site.url("/html")})
            request(session, {"action": "evaluate", "script": ANIMATE})
            watchers = [Watcher(frames_url) for _ in range(viewers)]
            for watcher in watchers:
                watcher.start()
            cpu, started = tree_cpu_seconds(master), time.monotonic()
            time.sleep(idle)  # the session idle, its page animating: what watching alone costs
            cpu = (tree_cpu_seconds(master) - cpu) / (time.monotonic() - started)
            got = sum(w.frames for w in watchers)
            figures = {
                "evaluate": [request(session, {"action": "evaluate", "script": "return 1"}) for _ in range(rounds)],
                "screenshot": [request(session, {"action": "screenshot"}) for _ in range(rounds)],
                "goto": [request(session, {"action": "goto", "url": site.url(f"/html?n={i}")}) for i in range(rounds)],
            }
            for watcher in watchers:
                watcher.close()
            row = "  ".join(f"{name} {pct(s, 0.5):5.1f}/{pct(s, 0.95):6.1f}" for name, s in figures.items())
            size = sum(w.bytes for w in watchers) / max(sum(w.frames for w in watchers), 1) / 1024
            seen = f"{got / len(watchers) / idle:4.1f} frames/s each, {size:4.1f} KB" if watchers else " " * 30
            print(f"  {kind:<8}{viewers} viewers  idle CPU {cpu:4.2f} s/s  {seen}  {row}", flush=True)
    finally:
        session.request({"action": "close"}, timeout=30)
        session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--clients", default="chrome,firefox")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of watching an idle, animating session")
    args = parser.parse_args()
    print("live view cost: the service's and browsers' CPU while N viewers watch an idle session whose page")
    print("changes colour every 50 ms; then p50/p95 ms per action (evaluate, screenshot, goto) while they watch")
    with Site() as site, Service(env={"INNDX_MAX_BROWSERS": "2"}) as service:
        for kind in args.clients.split(","):
            run(service, site, kind.strip(), args.rounds, args.idle)


if __name__ == "__main__":
    main()
