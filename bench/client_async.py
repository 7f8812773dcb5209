"""The asyncio client against the sync client in threads: N standard sessions going at once.

Starts the real service (gunicorn, the project's config, one worker) and the test site (in a
process of its own, so it never shares this process's interpreter with the clients), then runs
the same load twice, in turn, ``--repeats`` times:

- async: one asyncio program (one thread) with N tasks, ``inndx.aio``;
- threads: N threads of the sync client, ``inndx.connect``;

each of the N workers doing ``--each`` sessions one after the other: open, one goto of a small
page, close. It prints sessions per second (open + goto + close, over the whole run), goto p50 and
p95, open and close p50, the CPU time this process spent (the clients' own cost) and errors.
Figures, not assertions.

    .venv/bin/python bench/client_async.py [--sessions 100] [--each 5] [--repeats 2]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "sdk" / "python" / "src")]  # this checkout's client

import inndx  # noqa: E402
import inndx.aio  # noqa: E402

from tests.support.service import Service  # noqa: E402

SITE = """
import sys
from tests.support.site import Site
with Site() as site:
    print(site.url("/html"), flush=True)
    sys.stdin.read()  # until the bench closes our stdin
"""
TENANT = "bench"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else float("nan")


class Figures:
    def __init__(self) -> None:
        self.opens: list[float] = []
        self.gotos: list[float] = []
        self.closes: list[float] = []
        self.errors: list[str] = []
        self.elapsed = 0.0
        self.cpu = 0.0


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


async def async_run(url: str, page: str, n: int, each: int) -> Figures:
    figures = Figures()

    async def worker() -> None:
        for _ in range(each):
            try:
                started = time.perf_counter()
                session = await inndx.aio.connect(url, TENANT, connect_timeout=60, reply_timeout=60)
                figures.opens.append(ms_since(started))
                started = time.perf_counter()
                reply = await session.goto(page)
                figures.gotos.append(ms_since(started))
                if reply.status_code != 200:
                    figures.errors.append(f"goto {reply.status_code}")
                started = time.perf_counter()
                await session.close()
                figures.closes.append(ms_since(started))
            except inndx.Error as exc:
                figures.errors.append(f"{type(exc).__name__} {exc}")

    await asyncio.gather(*(worker() for _ in range(n)))
    return figures


def thread_run(url: str, page: str, n: int, each: int) -> Figures:
    figures = Figures()
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(each):
            try:
                started = time.perf_counter()
                session = inndx.connect(url, TENANT, connect_timeout=60, reply_timeout=60)
                opened = ms_since(started)
                started = time.perf_counter()
                reply = session.goto(page)
                went = ms_since(started)
                started = time.perf_counter()
                session.close()
                closed = ms_since(started)
                with lock:
                    figures.opens.append(opened)
                    figures.gotos.append(went)
                    figures.closes.append(closed)
                    if reply.status_code != 200:
                        figures.errors.append(f"goto {reply.status_code}")
            except inndx.Error as exc:
                with lock:
                    figures.errors.append(f"{type(exc).__name__} {exc}")

    threads = [threading.Thread(target=worker, name=f"bench-{i}") for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    return figures


def timed(run) -> Figures:
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    figures = run()
    figures.elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    figures.cpu = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    return figures


def report(name: str, figures: Figures, total: int) -> None:
    done = len(figures.closes)
    print(f"  {name:8} sessions/s {done / figures.elapsed:7.1f}  ({done}/{total} in {figures.elapsed:5.1f} s)"
          f"  goto ms p50 {pct(figures.gotos, 50):6.1f} p95 {pct(figures.gotos, 95):6.1f}"
          f"  open p50 {pct(figures.opens, 50):6.1f}  close p50 {pct(figures.closes, 50):6.1f}"
          f"  client CPU {figures.cpu:5.1f} s  errors {len(figures.errors)}")
    for error in sorted(set(figures.errors))[:3]:
        print(f"    {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100, help="sessions going at once (tasks, or threads)")
    parser.add_argument("--each", type=int, default=5, help="sessions each task or thread opens in turn")
    parser.add_argument("--repeats", type=int, default=2, help="async, then threads, this many times")
    args = parser.parse_args()
    n, each = args.sessions, args.each
    load = psutil.getloadavg()
    print(f"machine: {psutil.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
          f"at the start (shared machine)")
    site = subprocess.Popen([sys.executable, "-c", SITE], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        page = site.stdout.readline().strip()
        env = {"INNDX_MAX_SESSIONS": str(2 * n + 10), "INNDX_DEFAULT_MAX_SESSIONS": "100000",
               "INNDX_LOG_LEVEL": "warning"}
        with Service(env=env, ready_timeout=60) as service:
            url = service.ws_url
            asyncio.run(async_run(url, page, 4, 1))  # warm up: imports, the first sessions
            thread_run(url, page, 4, 1)
            print(f"N={n} standard sessions at once, {each} each in turn (open, goto, close), {n * each} per run")
            summary: dict[str, list[Figures]] = {"async": [], "threads": []}
            for repeat in range(args.repeats):
                print(f"run {repeat + 1}")
                figures = timed(lambda: asyncio.run(async_run(url, page, n, each)))
                report("async", figures, n * each)
                summary["async"].append(figures)
                figures = timed(lambda: thread_run(url, page, n, each))
                report("threads", figures, n * each)
                summary["threads"].append(figures)
            print("median of runs")
            for name, runs in summary.items():
                rate = statistics.median(len(f.closes) / f.elapsed for f in runs)
                goto = statistics.median(pct(f.gotos, 50) for f in runs)
                cpu = statistics.median(f.cpu for f in runs)
                print(f"  {name:8} sessions/s {rate:7.1f}  goto p50 {goto:6.1f} ms  client CPU {cpu:5.1f} s")
    finally:
        site.stdin.close()
        try:
            site.wait(10)
        except subprocess.TimeoutExpired:
            site.kill()
            site.wait(10)


if __name__ == "__main__":
    main()
