"""A real nginx (Debian's, installed by ``scripts/setup --with-nginx``; ``make test`` does) on
loopback, balancing WebSockets over service instances with the configuration that
``docs/protocol.md`` documents.

The balancer is the doc's own ``nginx`` block (under "Across instances"), read from the doc at
start, so the tested configuration and the documented one cannot drift apart: its ``server``
lines become the instances' loopback ports, its ``listen`` a free loopback port; nothing else of
it changes. It goes inside an ``http`` block whose pid file, lock file, error and access logs
and every temp path lie in a temp dir of its own (nothing under ``/var`` or ``/run``).

``Balancer(upstream_ports, log_dir=None)``; ``start()`` runs
``nginx -p <dir> -c <dir>/nginx.conf -e <dir>/error.log -g 'daemon off;'`` as a child (never a
daemon) and waits, bounded, until its port takes a connection, or raises ``RuntimeError`` with
its error log; ``ws_url`` is its sessions endpoint; ``routes()`` reads its access log: one
``Route(session, upstream_port, status)`` per socket nginx proxied, logged when the socket ends
(``read_routes(path)`` reads a kept log).
``stop()`` ends nginx (SIGTERM, bounded, then SIGKILL), raises ``RuntimeError`` if its master or a
worker (the holders of its listening socket) outlived that, copies its logs and config into
``log_dir`` (when given) and removes the dir; idempotent. Context manager.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.support.ports import free_port, scaled, wait_for

NGINX = "/usr/sbin/nginx"
PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
WS_PATH = "/v1/sessions/ws"

CONF = """\
worker_processes 1;
pid {dir}/nginx.pid;
lock_file {dir}/nginx.lock;
error_log {dir}/error.log info;
events {{ worker_connections 512; }}
http {{
    client_body_temp_path {dir}/temp/body;
    proxy_temp_path {dir}/temp/proxy;
    fastcgi_temp_path {dir}/temp/fastcgi;
    uwsgi_temp_path {dir}/temp/uwsgi;
    scgi_temp_path {dir}/temp/scgi;
    log_format routes '$arg_session $upstream_addr $status';
    access_log {dir}/access.log routes;

    # docs/protocol.md, "Across instances" (servers and listen pointed at loopback)
{balancer}
}}
"""

_SERVER_LINE = re.compile(r"(?P<indent>[ \t]*)server[ \t]+[^\s{;]+;.*")  # an upstream's server, not "server {"
_LISTEN_LINE = re.compile(r"(?P<indent>[ \t]*)listen[ \t]+[^;]+;.*")


def documented_block(doc: Path = PROTOCOL_DOC) -> str:
    """The one ```` ```nginx ```` block of ``doc``, as written there."""
    blocks = re.findall(r"^[ \t]*```nginx\n(.*?)^[ \t]*```", doc.read_text(), re.MULTILINE | re.DOTALL)
    if len(blocks) != 1:
        raise RuntimeError(f"{doc} holds {len(blocks)} nginx blocks: want exactly one")
    return blocks[0]


def balancer_conf(upstream_ports: Sequence[int], listen_port: int, doc: Path = PROTOCOL_DOC) -> str:
    """The documented block with its upstream's ``server`` lines replaced by one
    ``server 127.0.0.1:<port>;`` per instance, and its ``listen`` by ``127.0.0.1:<listen_port>``."""
    lines, servers, listens = [], 0, 0
    for line in documented_block(doc).splitlines():
        if server := _SERVER_LINE.fullmatch(line):
            if not servers:
                lines += [f"{server['indent']}server 127.0.0.1:{port};" for port in upstream_ports]
            servers += 1
        elif listen := _LISTEN_LINE.fullmatch(line):
            lines.append(f"{listen['indent']}listen 127.0.0.1:{listen_port};")
            listens += 1
        else:
            lines.append(line)
    if not servers or listens != 1:
        raise RuntimeError(f"the nginx block of {doc} changed shape: {servers} server lines, {listens} listen lines")
    return "\n".join(lines)


@dataclass(frozen=True)
class Route:
    """One proxied socket in the access log: its ``?session=`` (``""`` without), where it went."""

    session: str
    upstream_port: int | None  # None: nginx reached no instance
    status: int


class Balancer:
    """nginx on a free loopback port in front of the instances on ``upstream_ports``."""

    def __init__(self, upstream_ports: Sequence[int], log_dir: Path | str | None = None) -> None:
        self.upstream_ports = list(upstream_ports)
        self.port = free_port()
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.dir = Path(tempfile.mkdtemp(prefix="inndx-nginx-"))
        os.chmod(self.dir, 0o711)  # nginx's workers (nobody, when the master is root) reach their temp dirs
        self.conf = self.dir / "nginx.conf"
        self.error_log = self.dir / "error.log"
        self.access_log = self.dir / "access.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._processes: list[psutil.Process] = []

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{WS_PATH}"

    def start(self) -> Balancer:
        if not Path(NGINX).exists():
            raise RuntimeError(f"{NGINX} is missing: run scripts/setup --with-nginx (make test does)")
        (self.dir / "temp").mkdir()
        conf = CONF.format(dir=self.dir, balancer=balancer_conf(self.upstream_ports, self.port))
        self.conf.write_text(conf)
        command = [NGINX, "-p", f"{self.dir}/", "-c", str(self.conf), "-e", str(self.error_log), "-g", "daemon off;"]
        with open(self.dir / "stderr.log", "wb") as stderr:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            wait_for(self._listening, 10, interval=0.05, what=f"nginx to listen on 127.0.0.1:{self.port}")
            self._processes = [psutil.Process(self.proc.pid), *wait_for(self._workers, 10, what="nginx's worker")]
        except BaseException:
            self.stop()
            raise
        return self

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {self.proc.returncode}: {self._tail()}")
        return _accepts(self.port)

    def _workers(self) -> list[psutil.Process]:
        assert self.proc is not None
        return psutil.Process(self.proc.pid).children()

    def _tail(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-4000:] for path in (self.dir / "stderr.log", self.error_log) if path.exists()
        )

    def routes(self) -> list[Route]:
        """The sockets nginx proxied and ended so far, in the order they ended."""
        return read_routes(self.access_log)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        alive: list[psutil.Process] = []
        if proc is not None:
            processes = list(self._processes)
            if proc.poll() is None:
                with contextlib.suppress(psutil.Error):  # the workers now (nginx replaces one that dies)
                    processes += psutil.Process(proc.pid).children()
                proc.send_signal(signal.SIGTERM)  # nginx's fast shutdown: the master ends its workers, then itself
                try:
                    proc.wait(scaled(10))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            _, alive = psutil.wait_procs(processes, timeout=scaled(10))
            for survivor in alive:  # orphaned workers of a killed master: ended, and reported below
                with contextlib.suppress(psutil.NoSuchProcess):
                    survivor.kill()
            self._keep_logs()
        shutil.rmtree(self.dir, ignore_errors=True)
        if alive:  # its listening socket went with the last of them
            raise RuntimeError(f"nginx outlived its stop: processes {[p.pid for p in alive]} still ran")

    def _keep_logs(self) -> None:
        if self.log_dir is None:
            return
        for path in (self.error_log, self.access_log, self.conf):
            if path.exists():
                shutil.copyfile(path, self.log_dir / f"nginx-{self.port}-{path.name}")

    def __enter__(self) -> Balancer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_routes(access_log: Path) -> list[Route]:
    """The ``Route`` of each line of an access log written in the ``routes`` format."""
    routes = []
    for line in (access_log.read_text() if access_log.exists() else "").splitlines():
        session, upstream, status = line.split(" ")
        port = None if upstream == "-" else int(upstream.rsplit(":", 1)[1])
        routes.append(Route("" if session == "-" else session, port, int(status)))
    return routes


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=scaled(1)):
            return True
    except OSError:
        return False
