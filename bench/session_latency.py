"""Latency of sessions through the service, next to the same calls made directly with Selenium.

Starts the real service (gunicorn, the project's config) and the test site on loopback, then for
each client kind prints: session open time, and the median goto / content / evaluate /
screenshot latency through the WebSocket; for chrome and firefox also the same calls made
directly with Selenium (BiDi navigate, page source, execute_script, screenshot) on a browser
started the same way, and the ratio service / direct.

    .venv/bin/python bench/session_latency.py [--rounds 20] [--clients standard,chrome,firefox]
    INNDX_SELENIUM_REMOTE_URL=http://127.0.0.1:4444 ... to measure through a Selenium Grid
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.clients import browser_settings  # noqa: E402
from service.config import Settings  # noqa: E402
from tests.support.service import Service  # noqa: E402
from tests.support.site import Site  # noqa: E402
from tests.support.wsclient import connect  # noqa: E402

CALLS = {
    "goto": lambda url: {"action": "goto", "url": url},
    "content": lambda url: {"action": "content"},
    "evaluate": lambda url: {"action": "evaluate", "script": "return document.title"},
    "screenshot": lambda url: {"action": "screenshot"},
}


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples)


def through_service(ws_url: str, kind: str, url: str, rounds: int) -> dict[str, float]:
    figures = {}
    started = time.perf_counter()
    session = connect(ws_url, timeout=60)
    session.open(client=kind, recv_timeout=60)
    figures["open"] = (time.perf_counter() - started) * 1000
    for name, frame in CALLS.items():
        session.request(frame(url))  # warm up
        samples = [timed(lambda frame=frame: session.request(frame(url), timeout=30)) for _ in range(rounds)]
        figures[name] = median_ms(samples)
    started = time.perf_counter()
    session.request({"action": "close"}, timeout=30)
    figures["close"] = (time.perf_counter() - started) * 1000
    session.close()
    return figures


def direct_selenium(kind: str, url: str, rounds: int) -> dict[str, float]:
    """The same calls on a browser started exactly as the service starts it (same options, same
    BiDi polling interval), made with Selenium's own API: BiDi navigate, page source,
    execute_script, a screenshot."""
    from service.clients.base import ClientOptions  # noqa: PLC0415
    from service.clients.browser_launch import launch  # noqa: PLC0415
    from service.deadline import Deadline  # noqa: PLC0415
    from service.policy import Policy  # noqa: PLC0415

    settings = browser_settings(Settings.from_env())
    figures = {}
    started = time.perf_counter()
    launched = launch(kind, ClientOptions(policy=Policy(allow_private=True)), settings, Deadline(60))
    figures["open"] = (time.perf_counter() - started) * 1000
    driver, context = launched.driver, launched.context
    calls = {
        "goto": lambda: driver.browsing_context.navigate(context=context, url=url, wait="complete"),
        "content": lambda: driver.page_source,
        "evaluate": lambda: driver.execute_script("return document.title"),
        "screenshot": lambda: driver.get_screenshot_as_png(),
    }
    for name, call in calls.items():
        call()
        figures[name] = median_ms([timed(call) for _ in range(rounds)])
    started = time.perf_counter()
    launched.shutdown()
    figures["close"] = (time.perf_counter() - started) * 1000
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", default="standard,chrome,firefox")
    args = parser.parse_args()
    kinds = [kind for kind in args.clients.split(",") if kind]
    remote = os.environ.get("INNDX_SELENIUM_REMOTE_URL")
    print(f"median of {args.rounds} rounds, milliseconds; browsers {'on ' + remote if remote else 'local'}")
    with Site() as site, Service() as service:
        url = site.url("/html")
        header = f"{'client':<10}{'path':<9}" + "".join(f"{name:>12}" for name in ["open", *CALLS, "close"])
        print(header)
        for kind in kinds:
            rows = [("service", through_service(service.ws_url, kind, url, args.rounds))]
            if kind != "standard":
                rows.append(("direct", direct_selenium(kind, url, args.rounds)))
            for path, figures in rows:
                print(f"{kind:<10}{path:<9}" + "".join(f"{figures[name]:>12.1f}" for name in ["open", *CALLS, "close"]))
            if len(rows) == 2:
                service_figures, direct = rows[0][1], rows[1][1]
                print(f"{kind:<10}{'ratio':<9}" + "".join(
                    f"{service_figures[name] / direct[name]:>12.2f}" for name in ["open", *CALLS, "close"]))


if __name__ == "__main__":
    main()
