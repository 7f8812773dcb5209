"""A session's HTTP archive (HAR 1.2), sans I/O: what a fetch client saw, built into the ``har``
action's reply. It knows nothing of Selenium, httpx or WebSockets; the clients feed it.

``HarLog`` keeps the exchanges of a session since its open or its last ``take()``: each one is
``begin`` (the request as sent), then ``respond`` (status, headers), then ``finish`` (the body,
its size) or ``fail`` (why no answer came: a refusal of the network policy, an error). A
request that never finished is in the archive all the same, with status 0 and its ``_error``
(or ``"no answer yet"``). Keys are the client's own (a BiDi request id and redirect count, or a
counter): a redirect is one entry per hop, as browsers' own HAR exports have it.

Bounds, so that a page that polls for hours (or a server that answers with huge headers) cannot
grow the worker nor the reply: at most ``MAX_ENTRIES`` entries, and at most ``max_bytes`` of
their text (URLs, headers, bodies as base64: what the reply will hold) are kept, the oldest
dropped first and counted in the log's ``comment``. A body is kept only when ``body_bytes`` > 0
(``INNDX_HAR_BODY_BYTES``), cut to that many bytes (``content._truncated``), and only while it
fits in ``max_bytes`` (else the entry has no ``text``).

A browser's bodies stay in the browser until the ``har`` action reads them: the client ``hold``s
a token of its own for an exchange's body (its data collector and request), and ``take(fill)``
hands the held bodies to ``fill`` to read, after their entries left the log (``detach`` and
``attach`` read some while their entries stay: a browser tab's, before the tab closes). Every token the log lets
go of otherwise (its entry dropped or replaced, or more than ``MAX_HELD`` tokens or
``MAX_HELD_BYTES`` of bodies held: the oldest go first) is queued for ``released()``, so that
the client frees that data in the browser.

Extensions (HAR's ``_`` fields): ``_error`` (why an exchange failed), ``_refusal`` (the egress
gateway's or the policy's refusal, word for word), ``_truncated``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from service.har_entries import entry_of, header_of, timings_of  # noqa: F401 - timings_of re-exported

MAX_ENTRIES = 5000
ENTRY_WEIGHT = 600  # the bytes an entry's fixed fields take in the reply, about
CREATOR = {"name": "inndx", "version": "1"}
MAX_HELD = 1000  # bodies a browser holds for the log at most (tokens)
MAX_HELD_BYTES = 64 * 1024 * 1024  # and their bytes together, as the browser reported their sizes

Headers = Iterable[tuple[str, str]]


@dataclass
class Exchange:
    started: float  # wall-clock seconds
    method: str
    url: str
    request_headers: list[tuple[str, str]]
    request_body: bytes | None = None
    http_version: str = "HTTP/1.1"
    status: int = 0
    status_text: str = ""
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    mime_type: str = ""
    body: bytes | None = None
    size: int = -1  # the decoded body's bytes, -1 unknown
    transferred: int = -1
    truncated: bool = False
    error: str | None = None
    refusal: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    ended: float | None = None  # wall-clock seconds of the answer's end
    weight: int = 0  # about the bytes this entry takes in the reply (HarLog's budget)
    key: Hashable = None  # its key in the log
    held: Any = None  # the client's token for a body it holds elsewhere (a browser's), read at take
    held_bytes: int = 0  # that body's size, as the client was told it

    def weigh(self) -> int:
        texts = (self.method, self.url, self.status_text, self.mime_type, self.error or "", self.refusal or "")
        headers = self.request_headers + self.response_headers
        bodies = len(self.body or b"") + len(self.request_body or b"")
        return ENTRY_WEIGHT + 2 * sum(map(len, texts)) + sum(len(k) + len(v) + 30 for k, v in headers) + bodies * 4 // 3


Held = tuple[Any, int, Exchange]  # a held body: the client's token, its size, its exchange
Keep = Callable[[Exchange, bytes], bool]  # gives an exchange its body; False once no room is left
Fill = Callable[[list[Held], Keep], None]


class HarLog:
    """The archive of one session. Its methods may be called from any thread (a browser's events
    arrive on the BiDi socket's)."""

    def __init__(self, body_bytes: int = 0, max_bytes: int = 16 * 1024 * 1024, comment: str = ""):
        self.body_bytes = max(0, body_bytes)
        self.max_bytes = max_bytes
        self.comment = comment
        self._lock = threading.Condition()  # notified when an exchange ends
        self._entries: OrderedDict[Hashable, Exchange] = OrderedDict()
        self._dropped = 0
        self._weight = 0  # the kept entries' weights together
        self._counter = 0
        self._held: OrderedDict[int, Exchange] = OrderedDict()  # by id(exchange), oldest first
        self._held_bytes = 0
        self._released: list[Any] = []  # tokens let go of, for ``released()``

    def key(self) -> int:
        """A fresh key for a client that has no ids of its own."""
        with self._lock:
            self._counter += 1
            return self._counter

    def begin(
        self,
        key: Hashable,
        method: str,
        url: str,
        headers: Headers,
        body: bytes | None = None,
        started: float | None = None,
        http_version: str = "HTTP/1.1",
    ) -> None:
        exchange = Exchange(
            started=time.time() if started is None else started,
            key=key,
            method=method,
            url=url,
            request_headers=list(headers),
            request_body=self._kept(body),
            http_version=http_version,
        )
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._weight -= old.weight
                self._unhold(old)
            self._entries[key] = exchange
            self._reweigh(exchange)

    def respond(
        self,
        key: Hashable,
        status: int,
        headers: Headers,
        status_text: str = "",
        http_version: str | None = None,
        mime_type: str = "",
    ) -> None:
        with self._lock:
            exchange = self._entries.get(key)
            if exchange is None:
                return
            exchange.status, exchange.status_text = status, status_text
            exchange.response_headers = list(headers)
            exchange.mime_type = mime_type or header_of(exchange.response_headers, "content-type")
            if http_version:
                exchange.http_version = http_version
            self._reweigh(exchange)
            self._lock.notify_all()  # an answer: what ``settle`` waits for

    def finish(
        self,
        key: Hashable,
        body: bytes | None = None,
        size: int | None = None,
        transferred: int | None = None,
        timings: dict[str, float] | None = None,
        ended: float | None = None,
    ) -> None:
        with self._lock:
            exchange = self._entries.get(key)
            if exchange is None:
                return
            exchange.ended = time.time() if ended is None else ended
            if size is not None:
                exchange.size = size
            elif body is not None:
                exchange.size = len(body)
            if transferred is not None:
                exchange.transferred = transferred
            if timings:
                exchange.timings = timings
            if body is not None and self.body_bytes:
                kept = body[: self.body_bytes]
                if self._weight + len(kept) * 4 // 3 <= self.max_bytes:
                    exchange.body, exchange.truncated = kept, len(body) > len(kept)
            self._reweigh(exchange)
            self._lock.notify_all()

    def fail(self, key: Hashable, error: str, refusal: str | None = None) -> None:
        with self._lock:
            exchange = self._entries.get(key)
            if exchange is None:
                return
            exchange.error = error
            exchange.refusal = refusal
            exchange.ended = time.time()
            self._lock.notify_all()

    def refuse(self, key: Hashable, refusal: str) -> None:
        """The exchange was answered, or never sent, by a refusal of ours (the gateway's page)."""
        with self._lock:
            exchange = self._entries.get(key)
            if exchange is not None:
                exchange.refusal = refusal

    def hold(self, key: Hashable, token: Any, size: int) -> bool:
        """The client holds the body of ``key``'s exchange elsewhere, as ``token``; False when the
        log has no such entry (the client lets go of it at once). Over ``MAX_HELD`` tokens or
        ``MAX_HELD_BYTES``, the oldest held bodies are let go of (their entries get none)."""
        with self._lock:
            exchange = self._entries.get(key)
            if exchange is None:
                return False
            self._unhold(exchange)
            exchange.held, exchange.held_bytes = token, max(0, size)
            self._held[id(exchange)] = exchange
            self._held_bytes += exchange.held_bytes
            while len(self._held) > MAX_HELD or (self._held_bytes > MAX_HELD_BYTES and len(self._held) > 1):
                self._unhold(next(iter(self._held.values())))
            return True

    def detach(self, which: Callable[[Any], bool]) -> list[Held]:
        """The held bodies whose token ``which`` picks, no longer held (their entries stay): the
        client reads them now and gives them with ``attach`` (a browser's tab about to close)."""
        with self._lock:
            picked = [exchange for exchange in self._held.values() if which(exchange.held)]
            out = [(exchange.held, exchange.held_bytes, exchange) for exchange in picked]
            for exchange in picked:
                self._held.pop(id(exchange))
                self._held_bytes -= exchange.held_bytes
                exchange.held, exchange.held_bytes = None, 0
        return out

    def attach(self, exchange: Exchange, body: bytes) -> bool:
        """Give a detached exchange its body (cut, while it fits, as ``finish`` does); False once
        the log has no room left for bodies."""
        with self._lock:
            exchange.size = max(exchange.size, len(body))
            kept = body[: self.body_bytes]
            if self._entries.get(exchange.key) is exchange and self._weight + len(kept) * 4 // 3 <= self.max_bytes:
                exchange.body, exchange.truncated = kept, len(body) > len(kept)
                self._reweigh(exchange)
            return self._weight < self.max_bytes

    def released(self) -> list[Any]:
        """The tokens let go of since the last call (the client frees what they hold)."""
        with self._lock:
            out, self._released = self._released, []
        return out

    def urls(self) -> list[tuple[Hashable, str]]:
        with self._lock:
            return [(key, exchange.url) for key, exchange in self._entries.items()]

    def settle(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for every exchange begun to have an answer (a script's fetch
        resolves in the page a moment before its events reach us); True when none is waiting."""
        end = time.monotonic() + seconds
        with self._lock:
            while any(exchange.ended is None and not exchange.status for exchange in self._entries.values()):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def take(self, fill: Fill | None = None) -> dict[str, Any]:
        """The archive so far, as HAR 1.2 (``{"log": ...}``); the log starts again empty. With
        ``fill``, the bodies held elsewhere are handed to it (their entries out of the log by
        then, oldest first) with a ``keep(exchange, body)`` that gives each its body, cut to
        ``body_bytes``, while the reply's budget lasts (False once it is spent)."""
        with self._lock:
            entries, dropped, weight = list(self._entries.values()), self._dropped, self._weight
            self._entries, self._dropped, self._weight = OrderedDict(), 0, 0
            held = [(exchange.held, exchange.held_bytes, exchange) for exchange in self._held.values()]
            self._held, self._held_bytes = OrderedDict(), 0
            if fill is None:  # no reader: the client lets go of them (``released()``)
                self._released.extend(token for token, _, _ in held)
        if fill is not None and held:
            fill(held, self._keeper(self.max_bytes - weight))
        log: dict[str, Any] = {
            "version": "1.2",
            "creator": dict(CREATOR),
            "pages": [],
            "entries": [entry_of(exchange) for exchange in sorted(entries, key=lambda e: e.started)],
        }
        notes = [self.comment] if self.comment else []
        if dropped:
            notes.append(f"{dropped} older entries were dropped (at most {MAX_ENTRIES} entries and"
                         f" {self.max_bytes} bytes are kept between two har actions)")
        if notes:
            log["comment"] = "; ".join(notes)
        return {"log": log}

    def _keeper(self, room: int) -> Keep:
        left = [room]

        def keep(exchange: Exchange, body: bytes) -> bool:
            exchange.size = max(exchange.size, len(body))  # the whole body (Firefox may say 0)
            kept = body[: self.body_bytes]
            cost = len(kept) * 4 // 3
            if self.body_bytes and cost <= left[0]:
                exchange.body, exchange.truncated = kept, len(body) > len(kept)
                left[0] -= cost
            return left[0] > 0

        return keep

    def _unhold(self, exchange: Exchange) -> None:
        """Let go of the exchange's held body, if any. Called with the lock held."""
        if exchange.held is None:
            return
        self._released.append(exchange.held)
        self._held.pop(id(exchange), None)
        self._held_bytes -= exchange.held_bytes
        exchange.held, exchange.held_bytes = None, 0

    def _kept(self, body: bytes | None) -> bytes | None:
        return None if body is None or not self.body_bytes else body[: self.body_bytes]

    def _reweigh(self, exchange: Exchange) -> None:
        """``exchange`` changed: the total follows, and the oldest entries go while over a bound
        (never the one just changed). Called with the lock held."""
        weight = exchange.weigh()
        self._weight += weight - exchange.weight
        exchange.weight = weight
        while len(self._entries) > 1 and (len(self._entries) > MAX_ENTRIES or self._weight > self.max_bytes):
            key, oldest = next(iter(self._entries.items()))
            if oldest is exchange:
                break
            del self._entries[key]
            self._weight -= oldest.weight
            self._unhold(oldest)
            self._dropped += 1
