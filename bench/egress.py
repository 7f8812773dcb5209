"""What the egress gateway costs a browser: the same navigation, through the gateway and direct.

Starts the test site on loopback and, for each browser kind, two browsers started exactly as the
service starts them (same options, same BiDi polling): one whose only proxy is a listener of an
in-process egress gateway, one talking to the site directly. Navigations (BiDi
``browsingContext.navigate``, wait=complete) alternate between the two so that both see the same
machine, and the script prints the median and p90 per page size and the ratio gateway / direct.

    .venv/bin/python bench/egress.py [--rounds 30] [--clients chrome,firefox] [--big-mb 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.clients import browser_settings  # noqa: E402
from service.clients.base import ClientOptions  # noqa: E402
from service.clients.browser_launch import launch  # noqa: E402
from service.config import Settings  # noqa: E402
from service.deadline import Deadline  # noqa: E402
from service.egress import Gateway  # noqa: E402
from service.metrics import Metrics  # noqa: E402
from service.policy import Policy, parse_rules  # noqa: E402
from tests.support.site import Site  # noqa: E402


def navigate_ms(launched, url: str) -> float:
    started = time.perf_counter()
    launched.bidi.command(
        "browsingContext.navigate", {"context": launched.context, "url": url, "wait": "complete"}, 60.0
    )
    return (time.perf_counter() - started) * 1000


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--clients", default="chrome,firefox")
    parser.add_argument("--big-mb", type=float, default=5.0)
    args = parser.parse_args()
    settings = browser_settings(Settings.from_env())
    with Site() as site:
        big = site.url(f"/big?bytes={int(args.big_mb * 2**20)}")
        pages = {"small page": site.url("/html"), f"{args.big_mb:g} MB page": big}
        gateway = Gateway(Policy(allow=parse_rules(f"127.0.0.1:{site.port}")), Metrics())
        columns = ("direct p50", "gateway p50", "ratio", "direct p90", "gateway p90")
        print(f"{'client':8} {'page':12} " + " ".join(f"{c:>12}" for c in columns))
        try:
            for kind in args.clients.split(","):
                listener = gateway.open(f"bench-{kind}", kind)
                via = launch(kind, ClientOptions(egress=listener), settings, Deadline(60))
                direct = launch(kind, ClientOptions(), settings, Deadline(60))
                try:
                    for name, url in pages.items():
                        navigate_ms(via, url), navigate_ms(direct, url)  # warm up both
                        times: dict[str, list[float]] = {"direct": [], "gateway": []}
                        for _ in range(args.rounds):
                            times["gateway"].append(navigate_ms(via, url))
                            times["direct"].append(navigate_ms(direct, url))
                        d50, g50 = statistics.median(times["direct"]), statistics.median(times["gateway"])
                        figures = (f"{d50:.1f}ms", f"{g50:.1f}ms", f"{g50 / d50:.2f}x",
                                   f"{quantile(times['direct'], 0.9):.1f}ms", f"{quantile(times['gateway'], 0.9):.1f}ms")
                        print(f"{kind:8} {name:12} " + " ".join(f"{f:>12}" for f in figures))
                finally:
                    via.shutdown()
                    direct.shutdown()
                    listener.close()
        finally:
            gateway.stop()


if __name__ == "__main__":
    main()
