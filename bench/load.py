"""Capacity under load: N standard sessions held open at once, then 20 gotos each, next to the
same requests made directly with httpx.

Starts a real nginx (Debian's; ``scripts/setup --with-nginx``, ``make bench`` does it) on
loopback serving one small page, and the real service (gunicorn, the project's config). For
each N (default 100, 300, 1000):

- service side: N threads each open a standard session, wait until all N are open (so they
  are held open together), then send 20 gotos of the page, one after the other, and close;
- raw side: N threads each with an ``httpx.Client`` make the same 20 GETs, in this process;
- meanwhile ``GET /healthz`` and ``GET /readyz`` every 0.25 s on the master's health port, and
  the worker's RSS and threads are sampled.

It prints open p50/p95, goto p50/p95/p99, throughput (gotos per second over the goto phase),
the service/raw throughput ratio, errors, the worker's peak RSS and threads, and /healthz
latency. Figures, not assertions: targets are zero errors at N=1000, ratio >= 0.8 at N=300,
/healthz under 100 ms throughout.

    .venv/bin/python bench/load.py [--sessions 100,300,1000] [--gotos 20]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.ports import free_port, wait_for  # noqa: E402
from tests.support.service import Service  # noqa: E402
from tests.support.wsclient import connect, validate_frame  # noqa: E402

PAGE = "<!doctype html><html><head><title>load</title></head><body><p>a small page</p></body></html>"
NGINX_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ default_type text/html; return 200 '{page}'; }}
    }}
}}
"""


class Nginx:
    """nginx on a free loopback port, in its own temp dir; stopped (and the dir removed) on exit."""

    def __enter__(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            sys.exit("nginx is missing: run scripts/setup --with-nginx (make bench does)")
        self.dir = Path(tempfile.mkdtemp(prefix="inndx-nginx-"))
        self.port = free_port()
        conf = self.dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=self.dir, port=self.port, page=PAGE))
        self.proc = subprocess.Popen(
            [binary, "-p", str(self.dir), "-c", str(conf), "-e", str(self.dir / "error.log")],
            stdin=subprocess.DEVNULL,
        )
        wait_for(self._up, 10, what="nginx")
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/page"

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            sys.exit(f"nginx exited: {(self.dir / 'error.log').read_text()}")
        try:
            return httpx.get(self.url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def pct(samples: list[float], p: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


HEALTH_PROBE = """
import http.client, json, sys, threading, time
host, port = sys.argv[1], int(sys.argv[2])
took, errors, stop = [], 0, threading.Event()
ready, statuses = [], {}
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
def get(path):
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
    except OSError:
        status = 0
    return (time.perf_counter() - started) * 1000, status
while not stop.wait(0.25):
    ms, status = get("/healthz")
    took.append(ms)
    errors += status != 200
    ms, status = get("/readyz")  # 200 ready, 503 at a capacity bound: both are answers
    ready.append(ms)
    statuses[str(status)] = statuses.get(str(status), 0) + 1
print(json.dumps({"took": took, "errors": errors, "ready": ready, "statuses": statuses}))
"""


class Monitor:
    """/healthz latency every 0.25 s from a process of its own (so that this process's client
    threads do not slow the probe), and the worker's peak RSS and threads."""

    def __init__(self, service: Service):
        self.service = service
        self.workers = psutil.Process(service.pid).children()
        self.health: list[float] = []
        self.health_errors = 0
        self.ready: list[float] = []
        self.ready_statuses: dict[str, int] = {}
        self.peak_rss = 0
        self.peak_threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Monitor:
        self._probe = subprocess.Popen(
            [sys.executable, "-c", HEALTH_PROBE, self.service.host, str(self.service.health_port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            try:
                rss, threads = self.sample()
            except psutil.Error:
                continue
            self.peak_rss, self.peak_threads = max(self.peak_rss, rss), max(self.peak_threads, threads)

    def sample(self) -> tuple[int, int]:
        """(RSS, threads) of the workers together."""
        return (
            sum(worker.memory_info().rss for worker in self.workers),
            sum(worker.num_threads() for worker in self.workers),
        )

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)
        out, _ = self._probe.communicate("", timeout=30)
        result = json.loads(out)
        self.health, self.health_errors = result["took"], result["errors"]
        self.ready, self.ready_statuses = result["ready"], result["statuses"]


def run_threads(n: int, target) -> float:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def service_side(service: Service, url: str, n: int, gotos: int) -> dict:
    opens: list[float] = []
    latencies: list[float] = []
    firsts: list[float] = []  # each session's first goto (it connects to the page's server)
    errors: list[str] = []
    all_open = threading.Barrier(n + 1)
    go = threading.Event()
    lock = threading.Lock()

    def one(i: int) -> None:
        session = None
        try:
            started = time.perf_counter()
            # the client checks the schema of a sample (each session's open and first goto
            # reply), not of every frame: that check costs more CPU than the service's work
            session = connect(service.ws_url, tenant=f"t{i % 10}", timeout=120, checked=False)
            reply = session.request({"max_retries": 0}, timeout=120)
            validate_frame(reply)
            assert "session_id" in reply, f"open was refused: {reply}"
            with lock:
                opens.append((time.perf_counter() - started) * 1000)
        except Exception as exc:  # noqa: BLE001 - counted, reported
            with lock:
                errors.append(f"open: {type(exc).__name__}: {exc}"[:200])
        try:
            all_open.wait(300)
        except threading.BrokenBarrierError:
            pass
        go.wait(300)
        if session is None:
            return
        try:
            for number in range(gotos):
                started = time.perf_counter()
                reply = session.request({"action": "goto", "url": url}, timeout=120)
                took = (time.perf_counter() - started) * 1000
                if number == 0:
                    validate_frame(reply)
                with lock:
                    if reply.get("status_code") == 200:
                        latencies.append(took)
                        if number == 0:
                            firsts.append(took)
                    else:
                        errors.append(f"goto: {reply}"[:200])
            session.request({"action": "close"}, timeout=60)
        except Exception as exc:  # noqa: BLE001
            with lock:
                errors.append(f"goto: {type(exc).__name__}: {exc}"[:200])
        finally:
            session.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    with Monitor(service) as monitor:
        for thread in threads:
            thread.start()
        all_open.wait(300)
        open_rss, open_threads = monitor.sample()
        started = time.perf_counter()
        go.set()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        handled = handled_within(service)
    return {
        "opens": opens, "latencies": latencies, "errors": errors, "elapsed": elapsed,
        "health": monitor.health, "health_errors": monitor.health_errors,
        "ready": monitor.ready, "ready_statuses": monitor.ready_statuses,
        "peak_rss": max(monitor.peak_rss, open_rss), "peak_threads": max(monitor.peak_threads, open_threads),
        "handled": handled, "firsts": firsts,
    }


def handled_within(service: Service) -> list[tuple[str, int]]:
    """The service's own goto durations (from taking the frame off the session's queue to the
    reply written), from its /metrics histogram: [(bucket bound, gotos at most that long)]."""
    body = httpx.get(f"{service.url}/metrics", timeout=30).text
    found = re.findall(r'^inndx_action_duration_seconds_bucket\{action="goto",le="([^"]+)"\} (\S+)$', body, re.M)
    return [(bound, int(float(count))) for bound, count in found]


def raw_side(url: str, n: int, gotos: int) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    clients = [httpx.Client(timeout=120) for _ in range(n)]
    go = threading.Barrier(n)

    def one(i: int) -> None:
        go.wait(300)
        for _ in range(gotos):
            started = time.perf_counter()
            try:
                ok = clients[i].get(url).status_code == 200
            except httpx.HTTPError as exc:
                ok = False
                with lock:
                    errors.append(type(exc).__name__)
            took = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(took) if ok else None

    elapsed = run_threads(n, one)
    for client in clients:
        client.close()
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="100,300,1000")
    parser.add_argument("--gotos", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1, help="INNDX_WORKERS (figures are for all of them)")
    args = parser.parse_args()
    sizes = [int(part) for part in args.sessions.split(",")]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 16384)), hard))
    threading.stack_size(512 * 1024)  # this process's own N client threads
    load = psutil.getloadavg()
    print(f"machine: {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.1f} GiB, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the start (shared machine)")
    validate_frame({"action": "closed"})  # the client's schemas compile once, before any timing
    with Nginx() as nginx:
        for n in sizes:
            env = {
                # each worker may carry all N: the kernel does not spread connections evenly
                # across workers, and a worker over its share would refuse (503) what another
                # worker had room for
                "INNDX_MAX_SESSIONS": str(n * args.workers), "INNDX_WORKERS": str(args.workers),
                "INNDX_DEFAULT_MAX_SESSIONS": str(n), "INNDX_LOG_LEVEL": "warning",
            }
            with Service(env=env, ready_timeout=60) as service:
                ours = service_side(service, nginx.url, n, args.gotos)
            raw = raw_side(nginx.url, n, args.gotos)
            ours_rate = len(ours["latencies"]) / ours["elapsed"]
            raw_rate = len(raw["latencies"]) / raw["elapsed"]
            health = ours["health"]
            print(f"\nN={n} sessions x {args.gotos} gotos, {args.workers} worker(s)")
            print(f"  open ms        p50 {pct(ours['opens'], 50):7.1f}  p95 {pct(ours['opens'], 95):7.1f}")
            print(f"  goto ms        p50 {pct(ours['latencies'], 50):7.1f}  p95 {pct(ours['latencies'], 95):7.1f}"
                  f"  p99 {pct(ours['latencies'], 99):7.1f}")
            print(f"  first goto ms  p50 {pct(ours['firsts'], 50):7.1f}  p95 {pct(ours['firsts'], 95):7.1f}"
                  f"  p99 {pct(ours['firsts'], 99):7.1f}  (each session's first: it connects to the server)")
            print(f"  raw GET ms     p50 {pct(raw['latencies'], 50):7.1f}  p95 {pct(raw['latencies'], 95):7.1f}"
                  f"  p99 {pct(raw['latencies'], 99):7.1f}")
            print(f"  throughput/s   service {ours_rate:7.0f}  raw {raw_rate:7.0f}  ratio {ours_rate / raw_rate:.2f}")
            print(f"  errors         service {len(ours['errors'])}  raw {len(raw['errors'])}"
                  f"  healthz {ours['health_errors']}")
            for error in sorted(set(ours["errors"]))[:5]:
                print(f"    {error}")
            handled = ours["handled"]
            if handled:
                total = handled[-1][1] or 1
                shown = ("0.01", "0.05", "0.25", "1.0", "5.0")
                print("  in the service " + "  ".join(
                    f"<={bound}s {100 * count / total:.1f}%" for bound, count in handled if bound in shown
                ) + "  (share of gotos handled within, queueing before excluded)")
            print(f"  workers' peak  RSS {ours['peak_rss'] / 2**20:.0f} MiB  threads {ours['peak_threads']}")
            if health:
                print(f"  /healthz ms    p50 {statistics.median(health):.1f}  p99 {pct(health, 99):.1f}"
                      f"  max {max(health):.1f}  ({len(health)} checks)")
            ready = ours["ready"]
            if ready:
                print(f"  /readyz ms     p50 {statistics.median(ready):.1f}  p99 {pct(ready, 99):.1f}"
                      f"  max {max(ready):.1f}  statuses {ours['ready_statuses']}")


if __name__ == "__main__":
    main()
