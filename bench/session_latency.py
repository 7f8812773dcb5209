"""Latency of sessions through the service, next to the same calls made directly with Selenium.

Starts the real service (gunicorn, the project's config) and the test site on loopback, then for
each client kind prints: session open time, and the median goto / content / evaluate /
screenshot latency through the WebSocket; for chrome and firefox also the same calls made
directly with Selenium (BiDi navigate, page source, execute_script, screenshot) on a browser
started the same way, and the ratio service / direct.

    .venv/bin/python bench/session_latency.py [--rounds 20] [--clients standard,chrome,firefox]
    INNDX_SELENIUM_REMOTE_URL=http://127.0.0.1:4444 ... to measure through a Selenium Grid

Warm starts (issue 10):

    --opens N    open latency p50/p95 over N opens, cold (no pool) against warm (a pool), one at
                 a time and 8 at once (waiting between rounds for the pool to refill: the figure
                 is the open itself)
    --layers     goto through the service, through our client in this process, and bare, in turn:
                 what the service adds, and what the goto's BiDi work adds
    --units N    the two candidate units: (a) a whole browser per session, (b) a user context and
                 a window per session in one shared browser: open latency, memory per session
                 (PSS of the browser's processes, N sessions each on a page), CPU per goto with N
                 sessions going at once
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.clients import browser_settings  # noqa: E402
from service.clients.browser_process import tree_cpu_seconds  # noqa: E402
from service.config import Settings  # noqa: E402
from tests.support.service import Service  # noqa: E402
from tests.support.site import Site  # noqa: E402
from tests.support.wsclient import _validators, connect, http_get  # noqa: E402

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


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def pool_idle(service: Service, kind: str) -> int:
    _, _, body = http_get(f"{service.url}/metrics")
    found = re.search(rf'^inndx_pool_idle\{{client="{kind}"\}} (\S+)$', body.decode(), re.M)
    return int(float(found.group(1))) if found else 0


def wait_pool(service: Service, kind: str, count: int, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while pool_idle(service, kind) < count:
        if time.monotonic() > end:
            raise SystemExit(f"the pool did not reach {count} {kind} in {timeout:g}s")
        time.sleep(0.1)


def one_open(ws_url: str, kind: str, out: list[float], errors: list[str]) -> None:
    try:
        started = time.perf_counter()
        session = connect(ws_url, timeout=60)
        session.open(client=kind, recv_timeout=60)
        out.append((time.perf_counter() - started) * 1000)
        session.request({"action": "close"}, timeout=30)
        session.close()
    except Exception as exc:  # noqa: BLE001 - counted and printed
        errors.append(repr(exc)[:200])


def opens(kind: str, warm: bool, at_once: int, rounds: int) -> tuple[list[float], list[str]]:
    """``rounds`` rounds of ``at_once`` concurrent opens (each closed at once)."""
    size = str(at_once if warm else 0)
    env = {
        "INNDX_POOL_CHROME": size if kind == "chrome" else "0",
        "INNDX_POOL_FIREFOX": size if kind == "firefox" else "0",
        "INNDX_POOL_LAUNCHES": "2",
        "INNDX_MAX_BROWSERS": str(max(at_once * 2, 4)),
    }
    samples: list[float] = []
    errors: list[str] = []
    with Service(env=env) as service:
        for _ in range(rounds):
            if warm:
                wait_pool(service, kind, at_once)
            threads = [
                threading.Thread(target=one_open, args=(service.ws_url, kind, samples, errors)) for _ in range(at_once)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
    return samples, errors


def print_opens(kinds: list[str], rounds: int, warm_only: bool = False) -> None:
    print(f"\nopen latency, ms ({rounds} opens per row; p50 / p95; errors)")
    for kind in kinds:
        for at_once in (1, 8):
            per_round = max(1, rounds // at_once)
            for warm in (True,) if warm_only else (False, True):
                samples, errors = opens(kind, warm, at_once, per_round)
                label = f"{kind} {'warm' if warm else 'cold'} x{at_once}"
                if samples:
                    print(f"  {label:<22}{pct(samples, 0.5):>9.1f}{pct(samples, 0.95):>9.1f}   errors {len(errors)}")
                else:
                    print(f"  {label:<22} no open succeeded: {errors[:2]}")


def tree_pss(root: psutil.Process) -> int:
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_full_info().pss
    return total


def units(kind: str, count: int, url: str) -> None:
    """Both candidate units side by side, measured the same way."""
    from selenium.webdriver.common.proxy import Proxy, ProxyType  # noqa: PLC0415

    from service.clients.browser_launch import launch  # noqa: PLC0415
    from service.deadline import Deadline  # noqa: PLC0415
    from service.egress import Gateway  # noqa: PLC0415
    from service.model import ClientOptions  # noqa: PLC0415
    from service.policy import Policy  # noqa: PLC0415

    settings = browser_settings(Settings.from_env())
    policy = Policy(allow_private=True)
    gateway = Gateway(policy)
    me = psutil.Process()

    def gotos(calls) -> tuple[float, float]:
        """Wall ms of ``calls`` run at once, and CPU seconds the browsers spent, per goto."""
        before = tree_cpu_seconds(me)
        started = time.perf_counter()
        threads = [threading.Thread(target=call) for call in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        return (time.perf_counter() - started) * 1000, (tree_cpu_seconds(me) - before) * 1000 / len(calls)

    # (a) a whole browser per session
    listeners = [gateway.open(f"bench-a-{i}", kind) for i in range(count)]
    baseline = tree_pss(me)
    browsers, open_ms = [], []
    for listener in listeners:
        started = time.perf_counter()
        browsers.append(launch(kind, ClientOptions(policy=policy, egress=listener), settings, Deadline(60)))
        open_ms.append((time.perf_counter() - started) * 1000)
    for launched in browsers:
        launched.driver.browsing_context.navigate(context=launched.context, url=url, wait="complete")
    memory_a = (tree_pss(me) - baseline) / count / 2**20
    wall_a, cpu_a = gotos(
        [lambda b=b: b.driver.browsing_context.navigate(context=b.context, url=url, wait="complete") for b in browsers]
    )
    for launched in browsers:
        launched.shutdown()
    for listener in listeners:
        listener.close()
    print(f"  {kind} (a) browser/session: open p50 {pct(open_ms, 0.5):7.1f} ms  memory {memory_a:6.1f} MiB/session"
          f"  {count} gotos at once: wall {wall_a:7.1f} ms, CPU {cpu_a:6.1f} ms/goto")

    # (b) a user context + window per session, each with its own proxy (its own listener)
    listener = gateway.open("bench-b-shared", kind)
    shared = launch(kind, ClientOptions(policy=policy, egress=listener), settings, Deadline(60))
    driver = shared.driver
    shared.driver.browsing_context.navigate(context=shared.context, url=url, wait="complete")
    baseline = tree_pss(me)
    contexts, open_ms, own = [], [], []
    for i in range(count):
        mine = gateway.open(f"bench-b-{i}", kind)
        own.append(mine)
        host_port = mine.proxy_url.split("//", 1)[1]
        raw = {"proxyType": ProxyType.MANUAL, "httpProxy": host_port, "sslProxy": host_port}
        if kind == "chrome":
            raw["noProxy"] = ["<-loopback>"]
        started = time.perf_counter()
        user_context = driver.browser.create_user_context(proxy=Proxy(raw))
        context = driver.browsing_context.create(type="window", user_context=user_context)
        open_ms.append((time.perf_counter() - started) * 1000)
        contexts.append((user_context, context))
    for _, context in contexts:
        driver.browsing_context.navigate(context=context, url=url, wait="complete")
    memory_b = (tree_pss(me) - baseline) / count / 2**20
    wall_b, cpu_b = gotos(
        [lambda c=c: driver.browsing_context.navigate(context=c, url=url, wait="complete") for _, c in contexts]
    )
    through = sum(1 for listener in own if listener.bytes_in > 0)
    shared.shutdown()
    for each in [listener, *own]:
        each.close()
    print(f"  {kind} (b) context/session: open p50 {pct(open_ms, 0.5):7.1f} ms  memory {memory_b:6.1f} MiB/session"
          f"  {count} gotos at once: wall {wall_b:7.1f} ms, CPU {cpu_b:6.1f} ms/goto"
          f"  ({through}/{count} contexts used their own proxy)")
    gateway.stop()


def interleaved(ws_url: str, kind: str, url: str, rounds: int) -> None:
    """Service and direct, call by call in alternation, so that a loaded machine weighs on both
    alike. The direct browser has the service's flags and its own listener on an egress gateway
    (the same proxy hop); its goto is a bare ``browsingContext.navigate`` (wait complete) over
    our BiDi channel, its content and evaluate a bare ``script.callFunction``, its screenshot a
    bare ``captureScreenshot``."""
    from service.clients.base import ClientOptions  # noqa: PLC0415 - main has no service.model
    from service.clients.browser_launch import launch  # noqa: PLC0415
    from service.clients.page_scripts import CONTENT  # noqa: PLC0415
    from service.deadline import Deadline  # noqa: PLC0415
    from service.egress import Gateway  # noqa: PLC0415
    from service.policy import Policy  # noqa: PLC0415

    policy = Policy(allow_private=True)
    gateway = Gateway(policy)
    listener = gateway.open("bench-direct", kind)
    launched = launch(kind, ClientOptions(policy=policy, egress=listener), browser_settings(Settings.from_env()), Deadline(60))
    bidi, context = launched.bidi, launched.context

    def call(function: str):
        params = {"functionDeclaration": function, "target": {"context": context}, "awaitPromise": True}
        return lambda: bidi.command("script.callFunction", params, 30)

    direct = {
        "goto": lambda: bidi.command("browsingContext.navigate", {"context": context, "url": url, "wait": "complete"}, 30),
        "content": call(CONTENT),
        "evaluate": call("function() { return document.title; }"),
        "screenshot": lambda: bidi.command(
            "browsingContext.captureScreenshot", {"context": context, "origin": "viewport"}, 30
        ),
    }
    session = connect(ws_url, timeout=60)
    session.open(client=kind, recv_timeout=60)
    samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in CALLS}
    try:
        for name in CALLS:
            session.request(CALLS[name](url), timeout=30)
            direct[name]()
            mine, theirs = samples[name]
            frame = CALLS[name](url)
            through = [lambda frame=frame: session.request(frame, timeout=30), direct[name]]
            for number in range(rounds):
                order = (0, 1) if number % 2 else (1, 0)
                for which in order:
                    (mine, theirs)[which].append(timed(through[which]))
    finally:
        session.request({"action": "close"}, timeout=30)
        session.close()
        launched.shutdown()
        listener.close()
        gateway.stop()
    print(f"{kind:<10}" + "".join(
        f"{name:>10} {pct(a, 0.5):6.1f}/{pct(b, 0.5):6.1f}={pct(a, 0.5) / pct(b, 0.5):4.2f}" for name, (a, b) in samples.items()
    ))


def layers(ws_url: str, kind: str, url: str, rounds: int) -> None:
    """Where a goto's extra time goes, three ways in turn, call by call: through the service (a
    WebSocket frame to a session's thread in the worker), our ``BrowserClient.goto`` in this
    process (the same navigation code, no service), and a bare ``browsingContext.navigate`` on that
    second browser. Service - in-process is the service's own cost (frames, threads, the worker
    sharing its interpreter with the egress gateway); in-process - bare is the goto's BiDi work."""
    from service.clients.browser import BrowserClient  # noqa: PLC0415
    from service.deadline import Deadline  # noqa: PLC0415
    from service.egress import Gateway  # noqa: PLC0415
    from service.model import ClientOptions, GotoRequest  # noqa: PLC0415
    from service.policy import Policy  # noqa: PLC0415

    policy = Policy(allow_private=True)
    gateway = Gateway(policy)
    listener = gateway.open("bench-layers", kind)
    client = BrowserClient(kind, ClientOptions(policy=policy, egress=listener), browser_settings(Settings.from_env()))
    client.start(Deadline(60))
    launched = client._launched  # noqa: SLF001 - the bare navigate needs the same browser
    session = connect(ws_url, timeout=60)
    session.open(client=kind, recv_timeout=60)
    calls = {
        "service": lambda: session.request({"action": "goto", "url": url}, timeout=30),
        "in-process": lambda: client.goto(GotoRequest(url), Deadline(30)),
        "bare": lambda: launched.bidi.command(
            "browsingContext.navigate", {"context": launched.context, "url": url, "wait": "complete"}, 30
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    try:
        for number in range(rounds + 3):
            for name in names[number % 3:] + names[: number % 3]:
                took = timed(calls[name])
                if number >= 3:  # warm-up rounds
                    samples[name].append(took)
    finally:
        session.request({"action": "close"}, timeout=30)
        session.close()
        client.close()
        listener.close()
        gateway.stop()
    bare = pct(samples["bare"], 0.5)
    print(f"{kind:<10}" + "".join(
        f"{name:>12} {pct(v, 0.5):6.1f} ({pct(v, 0.5) / bare:4.2f})" for name, v in samples.items()
    ))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", default="standard,chrome,firefox")
    parser.add_argument("--opens", type=int, default=0, help="open latency over this many opens, warm and cold")
    parser.add_argument("--units", type=int, default=0, help="compare the two units with this many sessions")
    parser.add_argument("--no-actions", action="store_true", help="skip the per-action table")
    parser.add_argument("--warm-only", action="store_true", help="with --opens: skip the cold rows")
    parser.add_argument("--interleave", action="store_true", help="service and bare BiDi, call by call in turn")
    parser.add_argument("--layers", action="store_true", help="goto: service, in-process client and bare, in turn")
    args = parser.parse_args()
    # Our test client checks every frame it receives against the schemas; it builds those
    # validators on its first frame (a few hundred ms). Built here, before any timing: the first
    # burst of 8 opens used to include it, and looked like a stall of the service.
    _validators()
    kinds = [kind for kind in args.clients.split(",") if kind]
    browsers = [kind for kind in kinds if kind != "standard"]
    if args.units:
        print(f"candidate units, {args.units} sessions each (one run; the machine is shared)")
        with Site() as site:
            for kind in browsers:
                units(kind, args.units, site.url("/html"))
    if args.opens:
        print_opens(browsers, args.opens, args.warm_only)
    if args.interleave:
        print(f"\nservice / bare BiDi, interleaved, p50 ms of {args.rounds} rounds (service/bare=ratio)")
        with Site() as site, Service(env={"INNDX_POOL_CHROME": "0", "INNDX_POOL_FIREFOX": "0"}) as service:
            for kind in browsers:
                interleaved(service.ws_url, kind, site.url("/html"), args.rounds)
    if args.layers:
        print(f"\ngoto, p50 ms of {args.rounds} rounds (÷ bare): service, our client in-process, bare navigate")
        with Site() as site, Service(env={"INNDX_POOL_CHROME": "0", "INNDX_POOL_FIREFOX": "0"}) as service:
            for kind in browsers:
                layers(service.ws_url, kind, site.url("/html"), args.rounds)
    if args.no_actions:
        return
    remote = os.environ.get("INNDX_SELENIUM_REMOTE_URL")
    print(f"median of {args.rounds} rounds, milliseconds; browsers {'on ' + remote if remote else 'local'}")
    with Site() as site, Service(env={"INNDX_POOL_CHROME": "0", "INNDX_POOL_FIREFOX": "0"}) as service:
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
