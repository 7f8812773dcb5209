"""What one idle standard session costs the service: threads and resident memory.

Starts the real service (gunicorn, the project's config, one worker), opens a few sessions to
warm it up, then holds ``--sessions`` more standard sessions open and idle, and prints the
worker's thread count and RSS before and after, and the difference per session.

    .venv/bin/python bench/idle_session.py [--sessions 200]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.service import Service  # noqa: E402
from tests.support.wsclient import connect  # noqa: E402

WARM = 10


def worker(service: Service) -> psutil.Process:
    children = psutil.Process(service.pid).children()
    assert len(children) == 1, children
    return children[0]


def settle(proc: psutil.Process) -> tuple[int, float]:
    """(threads, RSS in MiB) once the thread count has stopped moving."""
    last = -1
    for _ in range(50):
        time.sleep(0.2)
        threads = proc.num_threads()
        if threads == last:
            break
        last = threads
    return proc.num_threads(), proc.memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    args = parser.parse_args()
    env = {"INNDX_MAX_SESSIONS": str(args.sessions + WARM + 10), "INNDX_DEFAULT_MAX_SESSIONS": "100000"}
    with Service(env=env) as service:
        proc = worker(service)
        warm = [connect(service.ws_url, tenant="warm") for _ in range(WARM)]
        for session in warm:
            session.open()
        threads_before, rss_before = settle(proc)
        held = []
        for _ in range(args.sessions):
            session = connect(service.ws_url, tenant="bench")
            session.open()
            held.append(session)
        gc.collect()
        threads_after, rss_after = settle(proc)
        per_threads = (threads_after - threads_before) / args.sessions
        per_rss_kib = (rss_after - rss_before) * 1024 / args.sessions
        print(f"idle standard sessions: {args.sessions} (after {WARM} to warm up)")
        print(f"worker threads: {threads_before} -> {threads_after}  ({per_threads:.2f} per session)")
        print(f"worker RSS: {rss_before:.1f} MiB -> {rss_after:.1f} MiB  ({per_rss_kib:.0f} KiB per session)")
        for session in held + warm:
            session.close()


if __name__ == "__main__":
    main()
