"""How long a browser session's teardown holds its slot: from the client's close (a close frame,
or a dropped socket) until the instance's browser slot is free again, and how long a client that
reconnects at once waits for its open.

Starts the real service (gunicorn, the project's config, one worker, no pool), then for each
browser kind, ``--rounds`` times: open a session, goto a loopback page, end it (close frame and
drop alternately), and measure (a) until ``inndx_capacity_in_use{resource="local_browsers"}`` is
0 (the slot is free: every process of the session is gone), polled every 5 ms, and (b) with
``INNDX_MAX_BROWSERS=1``, the reconnect's open from the close to its ``session_id``.

    .venv/bin/python bench/teardown.py [--rounds 10] [--clients chrome,firefox]
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.service import Service  # noqa: E402
from tests.support.site import Site  # noqa: E402
from tests.support.wsclient import Session, connect, http_get  # noqa: E402


def in_use(service: Service) -> float:
    text = http_get(f"{service.url}/metrics")[2].decode()
    found = re.search(r'^inndx_capacity_in_use\{resource="local_browsers"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def end(session: Session, how: str) -> None:
    if how == "close":
        session.send({"action": "close"})
    else:
        session.ws.sock.shutdown(socket.SHUT_RDWR)


def figures(name: str, values: list[float]) -> str:
    values = sorted(values)
    return (
        f"{name}: median {statistics.median(values) * 1000:.0f} ms, "
        f"max {values[-1] * 1000:.0f} ms over {len(values)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--clients", default="chrome,firefox")
    args = parser.parse_args()
    with Site() as site, Service(env={"INNDX_MAX_BROWSERS": "1"}) as service:
        for client in args.clients.split(","):
            freed: list[float] = []
            reopened: list[float] = []
            session = connect(service.ws_url)
            session.open(client=client, recv_timeout=120)
            for i in range(args.rounds):
                session.request({"action": "goto", "url": site.url("/html")}, timeout=60)
                started = time.monotonic()
                end(session, "close" if i % 2 == 0 else "drop")
                session.close()
                session = connect(service.ws_url)
                session.open(client=client, recv_timeout=120)
                reopened.append(time.monotonic() - started)
            session.request({"action": "goto", "url": site.url("/html")}, timeout=60)
            for i in range(args.rounds):
                started = time.monotonic()
                end(session, "close" if i % 2 == 0 else "drop")
                session.close()
                while in_use(service) > 0 and time.monotonic() - started < 30:
                    time.sleep(0.005)
                freed.append(time.monotonic() - started)
                session = connect(service.ws_url)
                session.open(client=client, recv_timeout=120)
                session.request({"action": "goto", "url": site.url("/html")}, timeout=60)
            session.close()
            print(figures(f"{client} slot free after the client's close", freed))
            print(figures(f"{client} reconnect at once, open answered after", reopened))


if __name__ == "__main__":
    main()
