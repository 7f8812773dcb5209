"""Session open time and goto latency through the service: local browsers vs a Selenium Grid.

Starts the test site, a real Grid (hub + one node) and two services on loopback, one with local
browsers and one with ``INNDX_SELENIUM_REMOTE_URL`` pointing at the Grid, then prints for chrome
and firefox the median open time (of ``--opens``) and goto time (of ``--rounds``), in ms.

    .venv/bin/python bench/grid_vs_local.py [--opens 5] [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.grid import Grid  # noqa: E402
from tests.support.service import Service  # noqa: E402
from tests.support.site import Site  # noqa: E402
from tests.support.wsclient import connect  # noqa: E402


def measure(ws_url: str, kind: str, url: str, opens: int, rounds: int) -> tuple[float, float]:
    open_times, goto_times = [], []
    for _ in range(opens):
        started = time.perf_counter()
        session = connect(ws_url, timeout=60)
        session.open(client=kind, recv_timeout=60)
        open_times.append((time.perf_counter() - started) * 1000)
        session.request({"action": "goto", "url": url}, timeout=30)  # warm up
        for _ in range(rounds // opens or 1):
            started = time.perf_counter()
            session.request({"action": "goto", "url": url}, timeout=30)
            goto_times.append((time.perf_counter() - started) * 1000)
        session.request({"action": "close"}, timeout=30)
        session.close()
    return statistics.median(open_times), statistics.median(goto_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opens", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="inndx-bench-"))
    with Site() as site, Grid.start(mode="distributed", max_sessions=2, log_dir=logs) as grid:
        with Service(log_dir=logs) as local, Service(env={"INNDX_SELENIUM_REMOTE_URL": grid.url}, log_dir=logs) as remote:
            url = site.url("/html")
            print(f"medians in ms: open of {args.opens} sessions, goto of {args.rounds} gotos (tiny local page)")
            print(f"{'client':<10}{'where':<8}{'open':>10}{'goto':>10}")
            for kind in ("chrome", "firefox"):
                for where, service in (("local", local), ("grid", remote)):
                    opened, went = measure(service.ws_url, kind, url, args.opens, args.rounds)
                    print(f"{kind:<10}{where:<8}{opened:>10.1f}{went:>10.1f}")


if __name__ == "__main__":
    main()
