"""A long session's memory: one browser session doing many gotos, and its browser tree's memory.

Starts the real service (gunicorn, the project's config, one worker, no pool) and a loopback
site, opens one session per browser kind and runs ``--gotos`` gotos of the issue's mix: a 1 KB
page and a 2 MB page alternating, with a ``content`` and an ``evaluate`` every 10th. Every
``--every`` gotos it sums the PSS and USS of the session's processes (the driver, the browser and
every helper: all that carry our owner marker, and all in their process session), and at the
end prints the start, the end and the least-squares slope in MiB per goto, and the goto's
median time.

    .venv/bin/python bench/soak.py [--gotos 500] [--every 25] [--clients chrome,firefox]
        [--by-process] [--pages mix|small|big] [--idle S]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.clients.browser_process import OWNER_ENV, owned_by  # noqa: E402
from tests.support.service import Service  # noqa: E402
from tests.support.site import Site  # noqa: E402
from tests.support.wsclient import connect  # noqa: E402

MIB = 1024 * 1024


def label(proc: psutil.Process) -> str:
    """A process's name and, for a browser helper, its kind (Chrome's --type, Firefox's -isForBrowser ...)."""
    try:
        args = proc.cmdline()
    except psutil.Error:
        return "?"
    kind = next((a.split("=", 1)[1] for a in args if a.startswith("--type=")), "")
    kind = kind or next((a for a in args if a in ("tab", "socket", "rdd", "utility", "gpu")), "")
    return f"{Path(args[0]).name if args else '?'}[{proc.pid}]{':' + kind if kind else ''}"


def tree_memory(service: Service, by_process: bool = False) -> tuple[float, float, int]:
    """(PSS, USS) in MiB of every process the service's worker owns, and how many there are."""
    pss = uss = 0
    workers = {f"{child.pid}." for child in psutil.Process(service.pid).children()}
    procs = owned_by(lambda env: any(env.get(OWNER_ENV, "").startswith(w) for w in workers))
    rows = []
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        pss += info.pss
        uss += info.uss
        rows.append((info.pss / MIB, label(proc)))
    if by_process:
        print("    " + ", ".join(f"{name} {size:.0f}" for size, name in sorted(rows, reverse=True)[:6]))
    return pss / MIB, uss / MIB, len(procs)


def slope(points: list[tuple[int, float]]) -> float:
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def soak(
    service: Service, site: Site, client: str, gotos: int, every: int, by_process: bool = False, pages: str = "mix", idle: int = 0
) -> None:
    session = connect(service.ws_url)
    session.open(client=client, timeout="60s", recv_timeout=120)
    small, big = site.url("/html"), site.url(f"/big?bytes={2 * MIB}")
    pss_points: list[tuple[int, float]] = []
    uss_points: list[tuple[int, float]] = []
    times: list[float] = []
    try:
        for i in range(gotos + 1):
            if i % every == 0:
                pss, uss, count = tree_memory(service, by_process)
                pss_points.append((i, pss))
                uss_points.append((i, uss))
                print(f"  {client} after {i:4d} gotos: PSS {pss:7.1f} MiB, USS {uss:7.1f} MiB, {count} processes", flush=True)
            if i == gotos:
                break
            started = time.monotonic()
            url = {"small": small, "big": big}.get(pages) or (big if i % 2 else small)
            reply = session.request({"action": "goto", "url": url}, timeout=60)
            times.append(time.monotonic() - started)
            assert reply.get("status_code") == 200, reply
            if i % 10 == 9:
                session.request({"action": "content"}, timeout=60)
                session.request({"action": "evaluate", "script": "return document.title"}, timeout=60)
        for waited in range(idle):
            time.sleep(1)
            if (waited + 1) % 10 == 0 or waited + 1 == idle:
                pss, uss, count = tree_memory(service, by_process)
                print(f"  {client} after {waited + 1:3d} s idle: PSS {pss:7.1f} MiB, USS {uss:7.1f} MiB", flush=True)
    finally:
        session.close()
    for name, points in (("PSS", pss_points), ("USS", uss_points)):
        print(
            f"{client}: {name} {points[0][1]:.1f} -> {points[-1][1]:.1f} MiB over {gotos} gotos, "
            f"slope {slope(points):+.3f} MiB per goto"
        )
    print(f"{client}: goto median {statistics.median(times) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gotos", type=int, default=500)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--clients", default="chrome,firefox")
    parser.add_argument(
        "--pages",
        choices=("mix", "small", "big"),
        default="mix",
        help="the issue's mix (default), or only the 1 KB page, or only the 2 MB one",
    )
    parser.add_argument("--idle", type=int, default=0, help="seconds to stay idle at the end, sampling (is it given back?)")
    parser.add_argument("--by-process", action="store_true", help="print the six largest processes at each sample")
    args = parser.parse_args()
    with Site() as site, Service() as service:
        for client in args.clients.split(","):
            soak(service, site, client, args.gotos, args.every, args.by_process, args.pages, args.idle)


if __name__ == "__main__":
    main()
