"""The egress gateway: the one road out for every connection a browser makes.

``Gateway(policy, metrics, bind_host, advertise_host)`` runs an asyncio loop on a thread of its
own ("egress"), started on first use. ``open(session_id, client, upstream)`` gives a session its own
``Listener``: a forward proxy on a port of its own, so every connection that arrives there belongs
to that session (the tie needs no token a page could read). The browser is started with that
listener as its only proxy; ``Listener.close()`` ends the listener and every connection of it.

For each connection the listener takes plain HTTP requests (absolute ``http://`` targets) and
``CONNECT`` tunnels (HTTPS, WebSockets). It resolves the target itself, checks every address with
the network policy, and connects only to an address it checked (no DNS-rebinding window). A refused
target gets ``403`` with a short text body; a target it cannot reach gets ``502``. With an upstream
proxy (the session's first proxy from the proxies file) the gateway still checks the target, then
chains to the upstream proxy and adds ``Proxy-Authorization`` itself: credentials never reach the
browser. Plain HTTP requests are sent with ``Connection: close`` both ways, so one browser
connection never carries a second request past the check.

Bytes are counted per session (``Listener.bytes_in`` / ``bytes_out``) and per client kind in
Prometheus; refusals by reason. What the gateway answered itself is remembered per session
(``Listener.answered(url)``), so that a goto can report it as an error instead of a page.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from service.egress import http
from service.egress.relay import Connection
from service.model import Proxy
from service.policy import Policy

logger = logging.getLogger(__name__)

REMEMBERED = 256  # the gateway's own answers kept per session
MAX_CONNECTIONS = 256  # open connections per session; beyond, 503 (a browser keeps far fewer)
RESOLVERS = 32  # threads resolving names for all sessions of the worker
RESOLVING_PER_SESSION = 4  # names one session may be resolving at once (slow DNS stays its problem)


class Gateway:
    def __init__(
        self,
        policy: Policy,
        metrics: Any = None,
        bind_host: str = "127.0.0.1",
        advertise_host: str | None = None,
        max_body_bytes: int = 64 * 1024 * 1024,
    ):
        self.max_body_bytes = max_body_bytes  # of one plain-HTTP response: beyond, the connection is cut
        self.policy = policy
        self.metrics = metrics
        self.bind_host = bind_host
        self.advertise_host = advertise_host or bind_host
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listeners: set[Listener] = set()

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                loop.set_default_executor(ThreadPoolExecutor(RESOLVERS, thread_name_prefix="egress-dns"))
                thread = threading.Thread(target=loop.run_forever, name="egress", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def open(self, session_id: str, client: str, upstream: Proxy | None = None) -> Listener:
        """A listener of the session's own, already listening."""
        listener = Listener(self, self._start(), session_id, client, upstream)
        listener.run(listener.listen())
        with self._lock:
            self._listeners.add(listener)
        return listener

    def forget(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.discard(listener)

    def stop(self) -> None:
        """Close every listener and stop the loop; idempotent."""
        with self._lock:
            listeners, self._listeners = list(self._listeners), set()
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None:
            return
        for listener in listeners:
            listener.close()
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5)
            if not thread.is_alive():  # run what other threads queued meanwhile (a late close)
                loop.run_until_complete(_drain())
                loop.close()

    # ----- accounting (called on the loop thread) -------------------------------------------
    def count(self, client: str, direction: str, size: int) -> None:
        if self.metrics is not None:
            self.metrics.egress_bytes(client, direction, size)

    def refused(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.egress_refused(reason)


class Listener:
    """One session's proxy port. Counters are updated on the gateway's loop and read anywhere."""

    def __init__(
        self, gateway: Gateway, loop: asyncio.AbstractEventLoop, session_id: str, client: str, upstream: Proxy | None
    ):
        self.gateway = gateway
        self.loop = loop
        self.session_id = session_id
        self.client = client
        self.upstream = upstream
        self.port = 0
        self.bytes_in = 0  # from servers to the browser
        self.bytes_out = 0  # from the browser to servers
        self.refusals = 0
        self._answers: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._answers_lock = threading.Lock()
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._resolving: asyncio.Semaphore | None = None
        self.max_connections = MAX_CONNECTIONS
        self._closed = False
        self.log = logging.LoggerAdapter(logger, {"session_id": session_id, "tenant": "-"})

    def bind(self, session_id: str, upstream: Proxy | None) -> None:
        """Hand a pooled listener to a new session: its id (logs, accounting) and its upstream
        proxy, which applies to every connection the browser opens from now on. A pooled browser
        has opened none (it never loaded a page), so nothing of before carries over."""
        self.session_id = session_id
        self.upstream = upstream
        self.bytes_in = self.bytes_out = self.refusals = 0
        with self._answers_lock:
            self._answers.clear()
        self.log = logging.LoggerAdapter(logger, {"session_id": session_id, "tenant": "-"})

    @property
    def proxy_url(self) -> str:
        """What the browser is given as its proxy."""
        return f"http://{http.authority(self.gateway.advertise_host, self.port)}"

    def answered(self, url: str) -> tuple[int, str] | None:
        """``(code, message)`` when the gateway itself answered a request for ``url`` (an http URL,
        or any URL whose host:port it refused to tunnel to)."""
        key_url = url.split("#", 1)[0]
        try:
            parts = urlsplit(key_url)
            key_authority = http.authority(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        except ValueError:
            return None
        with self._answers_lock:
            return self._answers.get(key_url) or self._answers.get(key_authority.lower())

    def forget_answer(self, key: str) -> None:
        """The relay: the request for ``key`` went through this time (an earlier answer is stale)."""
        with self._answers_lock:
            self._answers.pop(key, None)

    def remember_answer(self, key: str, code: int, message: str) -> None:
        """The relay: the gateway itself answered the request for ``key`` (a URL, or host:port)."""
        with self._answers_lock:
            self._answers[key] = (code, message)
            self._answers.move_to_end(key)
            while len(self._answers) > REMEMBERED:
                self._answers.popitem(last=False)

    def run(self, coroutine: Any, timeout: float = 10.0) -> Any:
        """Run ``coroutine`` on the gateway's loop from another thread and wait for its result."""
        try:
            future: Future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        except RuntimeError:  # the loop is closed
            coroutine.close()
            raise
        return future.result(timeout)

    async def listen(self) -> None:
        self._resolving = asyncio.Semaphore(RESOLVING_PER_SESSION)
        self._server = await asyncio.start_server(self._accept, self.gateway.bind_host, 0, limit=http.MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        """Stop listening and end every connection of this session; idempotent, any thread."""
        if self._closed:
            return
        self._closed = True
        self.gateway.forget(self)
        if not self.loop.is_closed():
            try:
                self.run(self._shutdown(), timeout=5)
            except Exception:  # noqa: BLE001 - the loop is stopping; its sockets die with it
                self.log.debug("closing the egress listener failed", exc_info=True)
        self.log.info(
            "egress: %d bytes out, %d bytes in, %d refused", self.bytes_out, self.bytes_in, self.refusals
        )

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)

    # ----- one connection -------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            full = len(self._tasks) > self.max_connections
            if full:
                self.log.warning("egress: over %d connections; refusing more", self.max_connections)
            await Connection(self, reader, writer, full=full).serve()
        except asyncio.CancelledError:
            pass
        except Exception:  # our bug: hostile input is handled inside Connection
            self.log.error("egress connection failed", exc_info=True)
        finally:
            self._tasks.discard(task)
            writer.transport.abort()

    @property
    def resolving(self) -> asyncio.Semaphore:
        assert self._resolving is not None, "not listening"
        return self._resolving

    def count(self, direction: str, size: int) -> None:
        if direction == "in":
            self.bytes_in += size
        else:
            self.bytes_out += size
        self.gateway.count(self.client, direction, size)


async def _drain() -> None:
    await asyncio.sleep(0)
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    if tasks:
        await asyncio.wait(tasks, timeout=2)
