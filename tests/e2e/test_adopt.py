"""Sessions outlive their instance (issue 18, across instances): two or three instances share a
real redis-server on loopback (``INNDX_REDIS_URL``). SIGTERM hands a standard session over
(fatal 503 ``resumable``, close 1012) and another instance adopts it with its cookie jar; after a
SIGKILL, once the dead owner's claim has lapsed (``INNDX_QUOTA_TTL``); of two instances racing
to adopt, exactly one wins; a wrong token is 403 there; a live owner's session is 421 elsewhere.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import threading
import uuid

import inndx
import pytest

from tests.e2e.test_resume import close_quietly, drop, resume, sample
from tests.support.ports import free_port, scaled, wait_for
from tests.support.redis_server import RedisServer
from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import Session, connect

pytestmark = pytest.mark.clientless

TTL = 3.0  # seconds: INNDX_QUOTA_TTL (the owner's claim on its records lapses this long after a SIGKILL)


@pytest.fixture(scope="module")
def redis_server(logs):
    with RedisServer(log_dir=logs) as server:
        yield server


@pytest.fixture
def instances(start_service, redis_server):
    env = {"INNDX_REDIS_URL": redis_server.url, "INNDX_QUOTA_TTL": f"{TTL:g}s", "INNDX_RESUME_WINDOW": "60s"}
    return lambda n: [start_service(**env) for _ in range(n)]


def opened_with_a_cookie(service: Service, site: Site) -> tuple[Session, str]:
    """A standard session on ``service`` whose jar holds a cookie a goto set; (it, the value)."""
    first = connect(service.ws_url)
    first.open(client="standard")
    value = uuid.uuid4().hex
    goto = first.request({"action": "goto", "url": site.url(f"/cookies/set?name=kept&value={value}"), "id": 1}, timeout=30)
    assert goto["status_code"] == 200, goto
    return first, value


def echoed_cookie(session: Session, site: Site, frame_id: int) -> str | None:
    echo = session.request({"action": "goto", "url": site.url("/cookies/echo"), "id": frame_id}, timeout=30)
    assert echo["id"] == frame_id and echo["status_code"] == 200, echo
    return json.loads(base64.b64decode(echo["body"]))["cookies"].get("kept")


def sigterm(service: Service) -> threading.Thread:
    """SIGTERM the instance; its stop (bounded) runs in a thread the caller joins."""
    stopper = threading.Thread(target=service.stop, kwargs={"sig": signal.SIGTERM, "timeout": 30})
    stopper.start()
    return stopper


def expect_handed_over(session: Session) -> None:
    frame = session.recv(timeout=30)
    assert frame["type"] == "fatal" and frame["code"] == 503 and frame["resumable"] is True, frame
    assert session.expect_close(timeout=10)[0] == 1012


# ---------------------------------------------------------------------------------- SIGTERM


def test_sigterm_hands_a_standard_session_over_and_another_instance_adopts_it_with_its_jar(instances, site: Site):
    a, b = instances(2)
    first, value = opened_with_a_cookie(a, site)
    stopper = sigterm(a)
    expect_handed_over(first)
    again, reply = resume(b, first.session_id, first.resume_token, last_id=1)
    try:
        assert reply["resumed"] is True and reply["session_id"] == first.session_id, reply
        assert reply["last_received"] == 1 and reply["resume_token"] != first.resume_token, reply
        assert echoed_cookie(again, site, 2) == value
        assert sample(b, 'inndx_session_resumes_total{outcome="adopted"}') == 1
        cookies = again.request({"action": "cookies", "id": 3})
        assert [c["value"] for c in cookies["cookies"] if c["name"] == "kept"] == [value], cookies
        # the adopted session resumes on its new instance as any session does
        drop(again)
        third, reply = resume(b, first.session_id, again.resume_token, last_id=3)
        assert reply["resumed"] is True and reply["last_received"] == 3, reply
        assert echoed_cookie(third, site, 4) == value
        close_quietly(third)
    finally:
        close_quietly(again)
        stopper.join(scaled(40))
    assert not stopper.is_alive() and a.returncode == 0 and not a.leftovers


def test_the_token_an_adoption_replaced_stays_good_until_a_frame_is_read(instances, site: Site):
    """An adoption's resume reply lost with its socket does not strand the client (as a resume)."""
    a, b = instances(2)
    first, value = opened_with_a_cookie(a, site)
    stopper = sigterm(a)
    expect_handed_over(first)
    lost, reply = resume(b, first.session_id, first.resume_token, last_id=1)
    assert reply["resumed"] is True, reply
    drop(lost)  # its new token never reached the client
    again, reply = resume(b, first.session_id, first.resume_token, last_id=1)
    try:
        assert reply["resumed"] is True and reply["last_received"] == 1, reply
        assert echoed_cookie(again, site, 2) == value  # a frame read: the old token is spent now
        drop(again)
        spent, reply = resume(b, first.session_id, first.resume_token)
        assert reply["type"] == "fatal" and reply["code"] == 403, reply
        spent.close()
        again, reply = resume(b, first.session_id, again.resume_token, last_id=2)
        assert reply["resumed"] is True, reply
    finally:
        close_quietly(again)
        stopper.join(scaled(40))


def test_the_python_client_follows_its_session_through_a_rolling_restart(instances, site: Site):
    a, b = instances(2)
    with Front(a.port) as front:
        session = inndx.connect(front.ws_url, "acme", client="standard", resume=True,
                                connect_timeout=scaled(30), reply_timeout=scaled(60))
        with session:
            value = uuid.uuid4().hex
            assert session.goto(site.url(f"/cookies/set?name=kept&value={value}")).status_code == 200
            front.target = b.port  # the load balancer sends new connections to the new instance
            stopper = sigterm(a)
            echo = session.goto(site.url("/cookies/echo"))  # whenever it lands, it runs once, on b
            stopper.join(scaled(40))
            assert json.loads(echo.body)["cookies"].get("kept") == value
            assert session.resumes == 1 and session.closed is None
            again = session.goto(site.url("/cookies/echo"))
            assert json.loads(again.body)["cookies"].get("kept") == value
    assert a.returncode == 0


# ---------------------------------------------------------------------------------- SIGKILL


def test_after_a_sigkill_the_session_is_adopted_once_its_owners_claim_lapses(instances, site: Site):
    a, b = instances(2)
    first, value = opened_with_a_cookie(a, site)
    os.killpg(os.getpgid(a.pid), signal.SIGKILL)
    outcomes: list[int] = []

    def adopted() -> tuple[Session, dict] | None:
        again, reply = resume(b, first.session_id, first.resume_token)
        if reply.get("resumed"):
            return again, reply
        outcomes.append(reply["code"])  # the owner may still look alive: 421 until its claim lapses
        assert reply["type"] == "fatal" and reply["code"] == 421, reply
        again.close()
        return None

    again, reply = wait_for(adopted, scaled(TTL + 15), interval=0.2, what="the session to be adopted")
    try:
        assert reply["last_received"] == 1, reply
        assert echoed_cookie(again, site, 2) == value
    finally:
        close_quietly(again)
        first.close()
        a.stop(sig=signal.SIGKILL, timeout=5)


# ---------------------------------------------------------------------------------- one winner, refusals


def test_of_two_instances_racing_to_adopt_exactly_one_wins(instances, site: Site):
    a, b, c = instances(3)
    first, value = opened_with_a_cookie(a, site)
    stopper = sigterm(a)
    expect_handed_over(first)
    barrier = threading.Barrier(2)
    results: list[tuple[Session, dict]] = []

    def race(service: Service) -> None:
        again = connect(service.ws_url + f"?session={first.session_id}")
        barrier.wait(scaled(10))
        results.append((again, again.request({"resume": first.session_id, "resume_token": first.resume_token}, timeout=30)))

    threads = [threading.Thread(target=race, args=(service,)) for service in (b, c)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(scaled(40))
    try:
        assert len(results) == 2
        won = [(s, r) for s, r in results if r.get("resumed")]
        lost = [(s, r) for s, r in results if not r.get("resumed")]
        assert len(won) == 1 and len(lost) == 1, results
        frame = lost[0][1]  # lost the claim (410), or came after it and found a live owner (421)
        assert frame["type"] == "fatal" and frame["code"] in (410, 421), frame
        winner = won[0][0]
        winner.resume_token = won[0][1]["resume_token"]
        assert echoed_cookie(winner, site, 2) == value
    finally:
        for session, _ in results:
            close_quietly(session)
        stopper.join(scaled(40))


def test_a_wrong_token_is_403_on_the_other_instance_and_claims_nothing(instances, site: Site):
    a, b = instances(2)
    first, value = opened_with_a_cookie(a, site)
    stopper = sigterm(a)
    expect_handed_over(first)
    try:
        for token, tenant in (("x" * 43, "acme"), (first.resume_token, "other")):
            wrong, reply = resume(b, first.session_id, token, tenant=tenant)
            assert reply["type"] == "fatal" and reply["code"] == 403, reply
            unknown, unknown_reply = resume(b, str(uuid.uuid4()), token, tenant=tenant)
            assert unknown_reply == reply  # indistinguishable from an unknown session
            assert wrong.expect_close(timeout=10)[0] == 1008
            wrong.close()
            unknown.close()
        again, reply = resume(b, first.session_id, first.resume_token)
        assert reply["resumed"] is True, reply
        assert echoed_cookie(again, site, 2) == value
        close_quietly(again)
    finally:
        stopper.join(scaled(40))


def test_a_resume_that_reaches_an_instance_while_the_owner_lives_is_421(instances, site: Site):
    a, b = instances(2)
    first, value = opened_with_a_cookie(a, site)
    drop(first)  # parked on a, which lives
    elsewhere, reply = resume(b, first.session_id, first.resume_token)
    assert reply["type"] == "fatal" and reply["code"] == 421, reply
    for internal in (str(a.port), str(b.port), "127.0.0.1", "redis", "worker", "instance"):
        assert internal not in reply["message"], reply
    assert elsewhere.expect_close(timeout=10)[0] == 1008
    elsewhere.close()
    again, reply = resume(a, first.session_id, first.resume_token, last_id=1)  # the owner still has it
    try:
        assert reply["resumed"] is True and reply["last_received"] == 1, reply
        assert echoed_cookie(again, site, 2) == value
    finally:
        close_quietly(again)


@pytest.mark.clients("chrome", "firefox")
def test_a_browser_session_is_not_handed_over_and_ends_as_before(instances, site: Site, client: str):
    """Browsers cannot move: at SIGTERM their sessions end (fatal 503, close 1001, no
    ``resumable``), their browser quit, their record gone: the other instance knows nothing."""
    a, b = instances(2)
    first = connect(a.ws_url)
    first.open(client=client)
    assert first.request({"action": "goto", "url": site.url("/html"), "id": 1}, timeout=60)["status_code"] == 200
    stopper = sigterm(a)
    frame = first.recv(timeout=60)
    assert frame["type"] == "fatal" and frame["code"] == 503 and "resumable" not in frame, frame
    assert first.expect_close(timeout=30)[0] == 1001
    stopper.join(scaled(60))
    assert not stopper.is_alive() and a.returncode == 0 and not a.leftovers, a.leftovers
    elsewhere, reply = resume(b, first.session_id, first.resume_token)
    assert reply["type"] == "fatal" and reply["code"] == 403, reply  # no record: as unknown there
    elsewhere.close()


# ---------------------------------------------------------------------------------- a front


class Front:
    """A TCP load balancer stand-in on loopback: each new connection goes to ``target`` (a port)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/sessions/ws"

    def __enter__(self) -> Front:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(5)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()  # nothing listening there (any more): the client tries again
                continue
            self._sockets += [client, upstream]
            self._spawn(self._pipe, client, upstream)
            self._spawn(self._pipe, upstream, client)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(None)
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)



def test_an_open_may_propose_its_session_id_so_that_a_balancer_can_hash_it(instances):
    a, b = instances(2)
    wanted = str(uuid.uuid4())
    first = connect(a.ws_url + f"?session={wanted}")
    try:
        assert first.open(client="standard") == wanted
        same = connect(a.ws_url + f"?session={wanted}")  # a live session's own instance: it came to resume
        refused = same.request({"client": "standard"})
        assert refused["type"] == "fatal" and refused["code"] == 400, refused
        same.close()
        for service, proposed in ((b, wanted), (b, wanted.upper()), (b, "x" * 36),
                                  (b, "0b0f3c4e-5d0b-1a52-9b8e-6cf3c3b0f8a1")):
            # in use here or in another instance's record, not canonical, not a UUID 4: a random id
            other = connect(service.ws_url + f"?session={proposed}")
            got = other.open(client="standard")
            assert got != proposed and str(uuid.UUID(got, version=4)) == got
            close_quietly(other)
    finally:
        close_quietly(first)
