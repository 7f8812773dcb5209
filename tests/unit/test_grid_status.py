"""grid_status: what a Grid's /status says it has room for, and a hostile answer to it (garbage,
too big, too deep, too slow) read as "unknown", within the timeout."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from service.clients import grid_status


def node(availability: str = "UP", max_sessions: object = 2, sessions: tuple = (), idle: tuple = ()) -> dict:
    slots = [{"stereotype": {"browserName": b}, "session": {"sessionId": "s"}} for b in sessions]
    slots += [{"stereotype": {"browserName": b}, "session": None} for b in idle]
    return {"availability": availability, "maxSessions": max_sessions, "slots": slots}


def status(*nodes: dict) -> dict:
    return {"value": {"ready": True, "nodes": list(nodes)}}


def test_a_node_offers_its_free_slots_up_to_its_max_sessions():
    # Selenium's node: max-sessions 2, and 2 slots per browser: 4 slots but room for 2 sessions
    two = node(idle=("chrome", "chrome", "firefox", "firefox"))
    assert grid_status.count_free(status(two)) == {"chrome": 2, "firefox": 2}
    one_busy = node(sessions=("chrome",), idle=("chrome", "firefox", "firefox"))
    assert grid_status.count_free(status(one_busy)) == {"chrome": 1, "firefox": 1}
    full = node(sessions=("chrome", "chrome"), idle=("firefox", "firefox"))
    assert grid_status.count_free(status(full)) == {"chrome": 0, "firefox": 0}


def test_nodes_add_up_and_a_node_not_up_offers_nothing():
    up = node(idle=("chrome", "firefox"), max_sessions=1)
    down = node(availability="DOWN", idle=("chrome", "firefox"))
    draining = node(availability="DRAINING", idle=("chrome",))
    assert grid_status.count_free(status(up, down, draining, up)) == {"chrome": 2, "firefox": 2}


@pytest.mark.parametrize(
    "answer",
    [None, [], "x", {}, {"value": None}, {"value": {"nodes": "x"}}, {"value": []}],
)
def test_an_answer_not_of_the_shape_is_unknown(answer):
    assert grid_status.count_free(answer) is None


@pytest.mark.parametrize(
    "odd",
    [
        {"availability": "UP", "slots": "x"},
        {"availability": "UP", "maxSessions": True, "slots": [{"stereotype": {"browserName": "chrome"}}]},
        {"availability": "UP", "maxSessions": "2", "slots": [1, None, {"stereotype": "chrome"}]},
        "node",
    ],
)
def test_odd_nodes_never_raise(odd):
    free = grid_status.count_free(status(odd))
    assert free is not None and all(isinstance(n, int) and n >= 0 for n in free.values())


@pytest.fixture()
def server() -> Iterator[tuple[str, list]]:
    """A loopback server that answers each request with the next of ``answers``: bytes (sent as
    a 200's body), or None (read the request, answer nothing until the test ends)."""
    answers: list = []
    done = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                body = answers.pop(0) if answers else b""
                if body is None:
                    done.wait(10)
                    continue
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                try:
                    conn.sendall(head.encode() + body)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", answers
    done.set()
    thread.join(5)
    listener.close()


def test_free_slots_reads_a_grid(server):
    url, answers = server
    answers.append(json.dumps(status(node(idle=("chrome", "firefox")))).encode())
    assert grid_status.free_slots(url + "/") == {"chrome": 1, "firefox": 1}


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not a grid</html>",
        b"\xff\xfe" * 10,
        b"[" * 200_000 + b"]" * 200_000,  # deeper than the parser goes
        b'{"value": {"nodes": []}, "pad": "' + b"x" * (grid_status.MAX_STATUS_BYTES + 1) + b'"}',
    ],
    ids=["html", "binary", "deep", "too-big"],
)
def test_a_hostile_answer_is_unknown(server, body):
    url, answers = server
    answers.append(body)
    assert grid_status.free_slots(url) is None


def test_a_grid_that_never_answers_is_unknown_within_the_timeout(server):
    url, answers = server
    answers.append(None)
    started = time.monotonic()
    assert grid_status.free_slots(url, timeout=0.5) is None
    assert time.monotonic() - started < 5  # the timeout holds (generous for a loaded machine)


def test_an_unreachable_grid_is_unknown():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connection refused
        assert grid_status.free_slots(f"http://127.0.0.1:{port}") is None
