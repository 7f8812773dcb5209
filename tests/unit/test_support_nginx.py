"""Self-tests of the nginx test support (``tests/support/nginx.py``), without the service: the
documented configuration it runs, and a start and stop that leave nothing behind."""

from __future__ import annotations

import http.client
import os
from pathlib import Path

import psutil
import pytest

from tests.support.nginx import Balancer, Route, balancer_conf, documented_block, read_routes
from tests.support.ports import free_port, scaled, wait_for


def test_the_balancer_is_the_documented_block_pointed_at_loopback():
    doc = documented_block()
    assert "hash $arg_session consistent;" in doc  # what the routing rests on
    conf = balancer_conf([1111, 2222], 3333)
    addresses = [line.strip() for line in conf.splitlines() if line.strip().startswith(("server 1", "listen "))]
    assert addresses == [
        "server 127.0.0.1:1111;", "server 127.0.0.1:2222;", "listen 127.0.0.1:3333;",
    ]
    kept = [line for line in doc.splitlines() if not line.strip().startswith(("server 10.", "listen "))]
    assert [line for line in conf.splitlines() if line in kept] == kept  # the rest as written, in order


@pytest.mark.parametrize("block", [
    "upstream u {\n    hash $arg_session consistent;\n}\nserver {\n    listen 80;\n}\n",  # no server line
    "upstream u {\n    server 10.0.0.1:8022;\n}\nserver {\n}\n",  # no listen
])
def test_a_doc_whose_block_changed_shape_is_refused(tmp_path: Path, block: str):
    doc = tmp_path / "protocol.md"
    doc.write_text(f"text\n\n  ```nginx\n{block}  ```\n")
    with pytest.raises(RuntimeError, match="changed shape"):
        balancer_conf([1111], 3333, doc)


def test_a_doc_with_two_blocks_is_refused(tmp_path: Path):
    doc = tmp_path / "protocol.md"
    doc.write_text("```nginx\nserver {}\n```\n\n```nginx\nserver {}\n```\n")
    with pytest.raises(RuntimeError, match="2 nginx blocks"):
        documented_block(doc)


def test_nginx_runs_as_a_child_in_its_own_dir_and_its_stop_leaves_nothing(tmp_path: Path):
    nobody_there = free_port()
    nginx = Balancer([nobody_there], log_dir=tmp_path).start()
    try:
        assert nginx.proc is not None
        master = psutil.Process(nginx.proc.pid)
        workers = master.children()
        assert master.ppid() == os.getpid() and workers  # not a daemon: our child, with its worker
        assert set(nginx.dir.iterdir()) >= {nginx.conf, nginx.error_log, nginx.dir / "nginx.pid"}
        conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=scaled(10))
        conn.request("GET", "/v1/sessions/ws?session=x")
        assert conn.getresponse().status == 502  # no instance behind it
        conn.close()
        assert wait_for(nginx.routes, 10, what="the access log") == [Route("x", nobody_there, 502)]
    finally:
        nginx.stop()
    assert not master.is_running() and not any(worker.is_running() for worker in workers)
    assert not nginx.dir.exists()
    assert read_routes(tmp_path / f"nginx-{nginx.port}-access.log") == [Route("x", nobody_there, 502)]
    assert {f"nginx-{nginx.port}-{name}" for name in ("nginx.conf", "error.log")} <= {p.name for p in tmp_path.iterdir()}
    nginx.stop()  # idempotent


def test_a_balancer_never_started_leaves_no_dir():
    nginx = Balancer([1])
    nginx.stop()
    assert not nginx.dir.exists()
