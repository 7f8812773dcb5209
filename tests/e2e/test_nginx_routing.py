"""A real nginx in front of two instances routes every resume to its session's owner (issue 18,
routing while the owner lives).

Two instances share a real redis-server on loopback (``INNDX_REDIS_URL``, as in
``test_adopt.py``); Debian's nginx runs in front of them with the configuration
``docs/protocol.md`` documents, read from the doc itself (``tests/support/nginx.py``):
``hash $arg_session consistent``, the WebSocket upgrade headers, long read timeouts. Every
socket here goes through nginx. Which instance holds a session is read from the instances'
own ``/metrics`` (where the open was counted), and where nginx sent each socket from nginx's
own access log (``$arg_session $upstream_addr $status``).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import uuid
from collections.abc import Iterator

import inndx
import pytest

from tests.e2e.test_resume import close_quietly, drop, resume, sample
from tests.support.nginx import Balancer
from tests.support.ports import scaled, wait_for
from tests.support.redis_server import RedisServer
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import Session, connect

pytestmark = pytest.mark.clientless

SESSIONS = 16  # all on one instance by chance: about 2 in 2**15 (the tenant's quota is 20)
OPENED = 'inndx_sessions_opened_total{client="standard"}'
RESUMED = 'inndx_session_resumes_total{outcome="resumed"}'
ADOPTED = 'inndx_session_resumes_total{outcome="adopted"}'
MISROUTED = 'inndx_session_resumes_total{outcome="421"}'


@pytest.fixture(scope="module")
def redis_server(logs):
    with RedisServer(log_dir=logs) as server:
        yield server


@pytest.fixture
def behind_nginx(start_service, redis_server, logs) -> Iterator[tuple[Service, Service, Balancer]]:
    """Two fresh instances sharing the Redis, and nginx in front of them: (a, b, nginx)."""
    a, b = (start_service(INNDX_REDIS_URL=redis_server.url) for _ in range(2))
    with Balancer([a.port, b.port], log_dir=logs) as nginx:
        yield a, b, nginx


def owner_of_the_next_open(instances: tuple[Service, ...], open_one) -> Service:
    """Run ``open_one()`` and return the one instance whose count of opened sessions went up by one."""
    before = [sample(service, OPENED) for service in instances]
    open_one()
    after = [sample(service, OPENED) for service in instances]
    grew = [service for service, was, now in zip(instances, before, after, strict=True) if now == was + 1]
    assert len(grew) == 1 and sum(after) == sum(before) + 1, (before, after)
    return grew[0]


def set_cookie(session: Session, site: Site, value: str, frame_id: int) -> None:
    goto = session.request({"action": "goto", "url": site.url(f"/cookies/set?name=kept&value={value}"),
                            "id": frame_id}, timeout=30)
    assert goto["id"] == frame_id and goto["status_code"] == 200, goto


def echoed_cookie(session: Session, site: Site, frame_id: int) -> str | None:
    echo = session.request({"action": "goto", "url": site.url("/cookies/echo"), "id": frame_id}, timeout=30)
    assert echo["id"] == frame_id and echo["status_code"] == 200, echo
    return json.loads(base64.b64decode(echo["body"]))["cookies"].get("kept")


def parked(service: Service, count: int) -> bool:
    return sample(service, "inndx_sessions_parked") == count


def routed(nginx: Balancer, session_id: str, sockets: int) -> list[int | None]:
    """Where nginx sent the session's sockets, once it logged ``sockets`` of them (they ended)."""
    ports = [route.upstream_port for route in nginx.routes() if route.session == session_id]
    return ports if len(ports) >= sockets else []


def test_nginx_sends_each_resume_to_the_instance_that_holds_the_session(behind_nginx, site: Site):
    a, b, nginx = behind_nginx
    opened: list[Session] = []
    resumed: list[Session] = []
    owners: dict[str, Service] = {}
    values: dict[str, str] = {}
    try:
        for _ in range(SESSIONS):
            proposed = str(uuid.uuid4())  # the routing key: nginx hashes ?session=
            session = connect(f"{nginx.ws_url}?session={proposed}")
            opened.append(session)
            owners[proposed] = owner_of_the_next_open((a, b), lambda s=session: s.open(client="standard"))
            assert session.session_id == proposed  # taken as the session's id
            values[proposed] = uuid.uuid4().hex
            set_cookie(session, site, values[proposed], 1)
        held = {service.port: sum(owner is service for owner in owners.values()) for service in (a, b)}
        assert all(held.values()), held  # the hash spread the sessions over both instances

        for session in opened:
            drop(session)  # the TCP connection to nginx ends; nginx ends its own to the instance
        for service in (a, b):
            wait_for(lambda s=service: parked(s, held[s.port]), 30, what=f"{held[service.port]} sessions parked")

        # one instance's sessions, then the other's: an order in which a round robin (or any
        # routing that ignores the session) sends some of them to the wrong instance
        for session in sorted(opened, key=lambda s: owners[s.session_id] is b):
            again, reply = resume(nginx, session.session_id, session.resume_token, last_id=1)  # ?session=<id>
            resumed.append(again)
            assert reply.get("resumed") is True, reply  # never a 421: nginx found the owner
            assert reply["session_id"] == session.session_id and reply["last_received"] == 1, reply
            assert echoed_cookie(again, site, 2) == values[session.session_id]  # the session's jar, and a frame after
        for service in (a, b):
            assert sample(service, RESUMED) == held[service.port]
            assert sample(service, MISROUTED) == 0 and sample(service, ADOPTED) == 0
            assert parked(service, 0)
        close_quietly(*resumed)

        for session_id, owner in owners.items():  # nginx's own account: the open and the resume, both to the owner
            ports = wait_for(lambda sid=session_id: routed(nginx, sid, 2), 10, what="nginx to log the sockets")
            assert ports == [owner.port, owner.port], (session_id, ports, owner.port)
        assert {route.status for route in nginx.routes()} == {101}
    finally:
        close_quietly(*resumed)
        for session in opened:
            session.close()


def test_the_python_client_through_nginx_survives_a_killed_tcp_connection(behind_nginx, site: Site):
    a, b, nginx = behind_nginx
    mark = uuid.uuid4().hex
    value = uuid.uuid4().hex
    results: list[inndx.GotoResult] = []
    failures: list[BaseException] = []
    with inndx.connect(nginx.ws_url, "acme", client="standard", resume=True,
                       connect_timeout=scaled(30), reply_timeout=scaled(60)) as session:
        (owner,) = [service for service in (a, b) if sample(service, OPENED) == 1]
        assert session.goto(site.url(f"/cookies/set?name=kept&value={value}")).status_code == 200

        def script() -> None:
            try:
                for n in range(4):
                    results.append(session.goto(site.url(f"/slow?seconds=0.5&mark={mark}&n={n}")))
            except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
                failures.append(exc)

        runner = threading.Thread(target=script)
        runner.start()
        wait_for(lambda: any(f"mark={mark}&n=1" in r["query"] for r in site.requests_to("/slow")), 30,
                 what="the second goto to start")
        session._ws.sock.shutdown(socket.SHUT_RDWR)  # the TCP connection to nginx dies under the script
        runner.join(scaled(90))
        assert not runner.is_alive() and not failures, failures
        assert session.resumes == 1 and session.closed is None
        for n in range(4):  # each goto ran once, its reply replayed if the drop took it
            assert len([r for r in site.requests_to("/slow") if f"mark={mark}&n={n}" in r["query"]]) == 1
        assert json.loads(session.goto(site.url("/cookies/echo")).body)["cookies"].get("kept") == value
        assert sample(owner, RESUMED) == 1
        assert all(sample(s, MISROUTED) == 0 and sample(s, ADOPTED) == 0 for s in (a, b))
        session_id = session.session_id
    ports = wait_for(lambda: routed(nginx, session_id, 2), 10, what="nginx to log the sockets")
    assert ports == [owner.port, owner.port], (ports, owner.port)
