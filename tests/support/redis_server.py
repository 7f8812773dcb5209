"""A real redis-server (Debian's, installed by ``scripts/setup --with-redis``) on loopback.

``RedisServer(log_dir=None)`` picks a free port; ``start()`` runs ``redis-server`` with no
persistence, bound to 127.0.0.1 only, and waits until it answers PING; ``url`` is its
``redis://`` address; ``stop()`` ends it (idempotent). Context manager.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.support.ports import free_port, scaled, wait_for

REDIS_SERVER = "/usr/bin/redis-server"


class RedisServer:
    def __init__(self, log_dir: Path | str | None = None) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="inndx-redis-"))
        self.log = Path(log_dir or self.dir) / f"redis-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        if not Path(REDIS_SERVER).exists():
            raise RuntimeError(f"{REDIS_SERVER} is missing: run scripts/setup --with-redis (make test does)")
        command = [
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "yes",
            "--save", "", "--appendonly", "no", "--dir", str(self.dir), "--logfile", str(self.log),
        ]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        wait_for(self._pong, 10, interval=0.05, what="redis-server to answer PING")
        return self

    def _pong(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, f"redis-server exited: see {self.log}"
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(scaled(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
