"""What the block middleware costs, and saves, a browser goto, through the real service.

Starts the test site and the service on loopback and, per browser kind, three sessions: no
middleware; a block rule that matches nothing on the page (the intercept's bare cost: every
request paused and continued); and a rule that blocks the page's image, font, media and
stylesheet. Gotos of the site's ``/resources`` page (six sub-resources) alternate between the
three; the script prints the median and p90 per session, and how many sub-resources reached the
site per goto.

    .venv/bin/python bench/middleware_block.py [--rounds 20] [--clients chrome,firefox]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.service import Service  # noqa: E402
from tests.support.site import Site  # noqa: E402
from tests.support.wsclient import connect  # noqa: E402

SETUPS = {
    "none": [],
    "block, no match": [{"type": "block", "url_patterns": ["*/never-there/*"]}],
    "block 4 of 6": [{"type": "block", "resource_types": ["image", "font", "media", "stylesheet"]}],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", default="chrome,firefox")
    args = parser.parse_args()
    with Site() as site, Service(env={"INNDX_MAX_BROWSERS": "4"}) as service:
        url = site.url("/resources?dir=free")
        for kind in args.clients.split(","):
            sessions = {}
            for name, chain in SETUPS.items():
                sessions[name] = connect(service.ws_url, timeout=60)
                sessions[name].open(client=kind, timeout="30s", max_retries=0, middleware=chain)
            samples: dict[str, list[float]] = {name: [] for name in SETUPS}
            arrivals: dict[str, list[int]] = {name: [] for name in SETUPS}
            for round_ in range(args.rounds + 1):
                for name, session in sessions.items():
                    site.clear()
                    started = time.perf_counter()
                    reply = session.request({"action": "goto", "url": url}, timeout=60)
                    elapsed = (time.perf_counter() - started) * 1000
                    assert reply.get("status_code") == 200, reply
                    if round_:  # the first round warms up
                        samples[name].append(elapsed)
                        arrivals[name].append(sum(1 for r in site.requests if r["path"].startswith("/free/")))
            for session in sessions.values():
                session.request({"action": "close"}, timeout=30)
                session.close()
            print(f"{kind}: goto of a page with 6 sub-resources, {args.rounds} rounds")
            for name in SETUPS:
                ordered = sorted(samples[name])
                p90 = ordered[int(0.9 * (len(ordered) - 1))]
                seen = statistics.median(arrivals[name])
                print(f"  {name:16s} median {statistics.median(ordered):7.1f} ms  p90 {p90:7.1f} ms"
                      f"  sub-resources at the site (median, by goto return) {seen:g}")


if __name__ == "__main__":
    main()
