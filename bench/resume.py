"""Resume latency, same instance and adopted: from a dropped socket to the first reply on a new one.

Starts the real service (gunicorn, the project's config) and the test site on loopback; for each
client kind opens one session, then ``--rounds`` times: a goto, the TCP connection ended under it
(no close frame), a new socket with the resume frame (``last_id``: the goto's). Prints the p50
and p95 of drop -> resume reply (the first reply on the new socket) and of drop -> the reply to
the first action sent after the resume (a screenshot: the session really goes on).

Adopted (``--adopted``, needs redis-server): two instances share a real redis-server; ``--rounds``
standard sessions open on the first, each with a goto; the first gets SIGTERM and hands them
over; for each session in turn, from the moment the client has read its close 1012 to the
resume reply from the second instance (which adopts it from its record), and to the reply of
the first action after it (a goto).

    .venv/bin/python bench/resume.py [--rounds 20] [--clients standard,chrome,firefox] [--adopted]
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.service import Service  # noqa: E402
from tests.support.site import Site  # noqa: E402
from tests.support.wsclient import connect  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def measure(service: Service, site: Site, kind: str, rounds: int) -> tuple[list[float], list[float]]:
    session = connect(service.ws_url, timeout=60)
    session.open(client=kind)
    token = session.resume_token
    to_reply, to_action = [], []
    try:
        for n in range(rounds):
            reply = session.request({"action": "goto", "url": site.url("/html"), "id": n}, timeout=60)
            assert reply.get("id") == n, reply
            started = time.perf_counter()
            with contextlib.suppress(OSError):
                session.ws.sock.shutdown(socket.SHUT_RDWR)
            session.close()
            again = connect(f"{service.ws_url}?session={session.session_id}", timeout=60)
            resumed = again.request({"resume": session.session_id, "resume_token": token, "last_id": n}, timeout=60)
            to_reply.append((time.perf_counter() - started) * 1000)
            assert resumed.get("resumed") is True, resumed
            shot = again.request({"action": "screenshot", "id": "s"}, timeout=60)
            to_action.append((time.perf_counter() - started) * 1000)
            assert shot.get("id") == "s", shot
            again.session_id, token, session = session.session_id, resumed["resume_token"], again
    finally:
        with contextlib.suppress(Exception):
            session.request({"action": "close"}, timeout=30)
        session.close()
    return to_reply, to_action


def measure_adopted(site: Site, rounds: int) -> tuple[list[float], list[float]]:
    to_reply, to_action = [], []
    with RedisServer() as redis:
        env = {"INNDX_POOL_CHROME": "0", "INNDX_POOL_FIREFOX": "0", "INNDX_REDIS_URL": redis.url}
        with Service(env=env) as first, Service(env=env) as second:
            sessions = []
            for _ in range(rounds):
                session = connect(first.ws_url, timeout=60)
                session.open(client="standard")
                assert session.request({"action": "goto", "url": site.url("/html"), "id": 1}, timeout=60)["id"] == 1
                sessions.append(session)
            first.proc.send_signal(signal.SIGTERM)
            for session in sessions:
                frame = session.recv(timeout=60)
                assert frame.get("resumable") is True, frame
                assert session.expect_close(timeout=30)[0] == 1012
                started = time.perf_counter()
                again = connect(f"{second.ws_url}?session={session.session_id}", timeout=60)
                resumed = again.request({"resume": session.session_id, "resume_token": session.resume_token,
                                         "last_id": 1}, timeout=60)
                to_reply.append((time.perf_counter() - started) * 1000)
                assert resumed.get("resumed") is True, resumed
                goto = again.request({"action": "goto", "url": site.url("/html"), "id": 2}, timeout=60)
                to_action.append((time.perf_counter() - started) * 1000)
                assert goto.get("id") == 2, goto
                again.request({"action": "close"}, timeout=30)
                again.close()
            first.stop()
    return to_reply, to_action


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", default="standard,chrome,firefox")
    parser.add_argument("--adopted", action="store_true", help="also: adopted by another instance after a SIGTERM")
    args = parser.parse_args()
    env = {"INNDX_POOL_CHROME": "0", "INNDX_POOL_FIREFOX": "0"}
    with Site() as site, Service(env=env) as service:
        print(f"resume latency, same instance, {args.rounds} drops per kind (ms)")
        print(f"{'client':<10} {'resume reply p50':>17} {'p95':>8} {'next action p50':>16} {'p95':>8}")
        for kind in [k.strip() for k in args.clients.split(",") if k.strip()]:
            to_reply, to_action = measure(service, site, kind, args.rounds)
            print(
                f"{kind:<10} {statistics.median(to_reply):>17.1f} {percentile(to_reply, 0.95):>8.1f}"
                f" {statistics.median(to_action):>16.1f} {percentile(to_action, 0.95):>8.1f}"
            )
        if args.adopted:
            to_reply, to_action = measure_adopted(site, args.rounds)
            print(f"resume latency, adopted by another instance after a SIGTERM, {args.rounds} sessions (ms)")
            print(f"{'standard':<10} {statistics.median(to_reply):>17.1f} {percentile(to_reply, 0.95):>8.1f}"
                  f" {statistics.median(to_action):>16.1f} {percentile(to_action, 0.95):>8.1f}")


if __name__ == "__main__":
    main()
