"""The standard client's transport: httpcore backends that connect only where the network
policy allows (checked on the address connected to) and never wait past the goto's deadline, and
the one TLS context of the process. ``install`` puts them under an httpx client (httpcore's pool
is reached through httpx's private attributes, here only)."""

from __future__ import annotations

import ssl
import threading
from typing import Any, Protocol

import httpcore
import httpx

from service.deadline import Deadline
from service.policy import Policy


class Owner(Protocol):
    """What holds the running goto's deadline (the StandardClient)."""

    _deadline: Deadline | None


def install(client: httpx.Client, policy: Policy | None, owner: Any) -> None:
    """``client``'s sockets: through ``policy`` (None: a proxy's, or an open policy: not
    checked here) and bounded by ``owner._deadline``."""
    pool = client._transport._pool  # type: ignore[attr-defined]
    if policy is not None and not policy.open:
        pool._network_backend = PolicyBackend(policy)
    pool._network_backend = DeadlineBackend(pool._network_backend, owner)


_tls_lock = threading.Lock()
_tls: ssl.SSLContext | None = None


def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every session of this process: building one loads the
    CA bundle (tens of milliseconds of CPU and about a megabyte each), which per session would
    dominate a short goto and an idle session's memory. A context holds no per-connection
    state a session could see of another's (client-side TLS sessions are never resumed here).
    Once made, it is read without the lock: under load, hundreds of sessions taking one lock
    in turn queued behind each other for the interpreter lock (first gotos waited seconds)."""
    global _tls
    if _tls is not None:
        return _tls
    with _tls_lock:
        if _tls is None:
            _tls = httpx.create_ssl_context()
        return _tls


class PolicyBackend(httpcore.SyncBackend):
    """Connects only to addresses the network policy allows, checked when connecting: the address
    checked is the one connected to, so a host cannot resolve to a public address for the check
    and to a private one for the connection (DNS rebinding)."""

    def __init__(self, policy: Policy):
        self.policy = policy

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = self.policy.allowed_addresses(host, port)
        error: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")


class DeadlineStream(httpcore.NetworkStream):
    """A stream whose reads and writes never wait past the goto's deadline. httpx's timeouts
    are per operation: a server dripping one header byte a second would otherwise hold a goto
    for as long as the header block may grow (100 KiB: a day)."""

    def __init__(self, inner: httpcore.NetworkStream, owner: Owner):
        self._inner = inner
        self._owner = owner

    def _bound(self, timeout: float | None) -> float:
        deadline = self._owner._deadline
        if deadline is None:
            return timeout  # type: ignore[return-value]
        left = deadline.remaining()
        if left <= 0:
            raise httpcore.ReadTimeout(f"the goto's {deadline.seconds:g}s are up")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._bound(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._bound(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._bound(timeout))
        return DeadlineStream(inner, self._owner)

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, owner: Owner):
        self._inner = inner
        self._owner = owner

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return DeadlineStream(stream, self._owner)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        return DeadlineStream(self._inner.connect_unix_socket(path, timeout, socket_options), self._owner)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
