"""Fuzz the live service: frames made from our own schemas and mutated (tests/support/fuzz.py),
pipelined in batches over a real WebSocket to the real service (gunicorn), for each client kind.

Prints, per client kind: frames sent, frames per second, the reply codes seen, and the
violations (a reply that does not validate against our schemas, a fatal frame or a 500 for a
client's mistake, a reply out of turn, a traceback in the service log, /healthz not green).
The violations must be 0; the exit status is 1 otherwise.

    .venv/bin/python bench/fuzz.py [--frames 100000] [--clients standard,chrome,firefox]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.support.fuzz import Frame, Fuzzer, frames  # noqa: E402
from tests.support.service import Service  # noqa: E402
from tests.support.site import Site  # noqa: E402

MAX_FRAME_BYTES = 65536
BATCH = 20


def fuzz(service: Service, site: Site, client: str, count: int) -> Fuzzer:
    fuzzer = Fuzzer(service.ws_url, client)
    strategy = st.lists(frames(site.url("/"), MAX_FRAME_BYTES), min_size=1, max_size=BATCH)
    health_failures = 0

    @settings(max_examples=50, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(batch: list[Frame]) -> None:
        nonlocal health_failures
        if fuzzer.frames_sent >= count:
            return
        fuzzer.batch(batch)
        if fuzzer.frames_sent // 500 != (fuzzer.frames_sent - len(batch)) // 500 and not service.healthz()["ok"]:
            health_failures += 1

    try:
        while fuzzer.frames_sent < count:  # 50 batches a round, each of 1-20 frames
            run()
    finally:
        fuzzer.close()
    if health_failures:
        fuzzer.violations.append(f"{client}: /healthz not green {health_failures} times")
    return fuzzer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100_000, help="frames per client kind")
    parser.add_argument("--clients", default="standard,chrome,firefox")
    args = parser.parse_args()
    total_violations = 0
    logs = Path(tempfile.mkdtemp(prefix="inndx-fuzz-"))
    env = {"INNDX_MAX_FRAME_BYTES": str(MAX_FRAME_BYTES), "INNDX_MAX_BROWSERS": "2"}
    with Site() as site, Service(env=env, log_dir=logs) as service:
        for client in [kind.strip() for kind in args.clients.split(",") if kind.strip()]:
            started = time.perf_counter()
            fuzzer = fuzz(service, site, client, args.frames)
            seconds = time.perf_counter() - started
            log = service.log_text()
            if "Traceback" in log:
                fuzzer.violations.append(f"{client}: a traceback in the service log ({service.log_path})")
            codes = ", ".join(f"{code}: {n}" for code, n in sorted(fuzzer.codes.items(), key=lambda kv: str(kv[0])))
            print(f"{client:9} {fuzzer.frames_sent:7d} frames in {seconds:7.1f}s = {fuzzer.frames_sent / seconds:7.1f} "
                  f"frames/s, sessions {fuzzer.sessions_opened}, violations {len(fuzzer.violations)}")
            print(f"          replies: {codes}")
            for violation in fuzzer.violations[:20]:
                print(f"          VIOLATION {violation}")
            total_violations += len(fuzzer.violations)
    print(f"violations: {total_violations}")
    return 1 if total_violations else 0


if __name__ == "__main__":
    sys.exit(main())
