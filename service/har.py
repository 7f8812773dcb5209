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

Extensions (HAR's ``_`` fields): ``_error`` (why an exchange failed), ``_refusal`` (the egress
gateway's or the policy's refusal, word for word), ``_truncated``.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MAX_ENTRIES = 5000
ENTRY_WEIGHT = 600  # the bytes an entry's fixed fields take in the reply, about
CREATOR = {"name": "inndx", "version": "1"}

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

    def weigh(self) -> int:
        texts = (self.method, self.url, self.status_text, self.mime_type, self.error or "", self.refusal or "")
        headers = self.request_headers + self.response_headers
        bodies = len(self.body or b"") + len(self.request_body or b"")
        return ENTRY_WEIGHT + 2 * sum(map(len, texts)) + sum(len(k) + len(v) + 30 for k, v in headers) + bodies * 4 // 3


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
            exchange.mime_type = mime_type or _header(exchange.response_headers, "content-type")
            if http_version:
                exchange.http_version = http_version
            self._reweigh(exchange)

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

    def take(self) -> dict[str, Any]:
        """The archive so far, as HAR 1.2 (``{"log": ...}``); the log starts again empty."""
        with self._lock:
            entries, dropped = list(self._entries.values()), self._dropped
            self._entries, self._dropped, self._weight = OrderedDict(), 0, 0
        log: dict[str, Any] = {
            "version": "1.2",
            "creator": dict(CREATOR),
            "pages": [],
            "entries": [_entry(exchange) for exchange in sorted(entries, key=lambda e: e.started)],
        }
        notes = [self.comment] if self.comment else []
        if dropped:
            notes.append(f"{dropped} older entries were dropped (at most {MAX_ENTRIES} entries and"
                         f" {self.max_bytes} bytes are kept between two har actions)")
        if notes:
            log["comment"] = "; ".join(notes)
        return {"log": log}

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
            self._dropped += 1


def _header(headers: list[tuple[str, str]], name: str) -> str:
    return next((value for key, value in headers if key.lower() == name), "")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cookies(headers: list[tuple[str, str]], response: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, value in headers:
        if response and name.lower() == "set-cookie":
            pair = value.split(";", 1)[0]
            cookie_name, _, cookie_value = pair.partition("=")
            out.append({"name": cookie_name.strip(), "value": cookie_value.strip()})
        elif not response and name.lower() == "cookie":
            for pair in value.split(";"):
                if pair.strip():
                    cookie_name, _, cookie_value = pair.partition("=")
                    out.append({"name": cookie_name.strip(), "value": cookie_value.strip()})
    return out


def _query(url: str) -> list[dict[str, str]]:
    try:
        query = urlsplit(url).query
    except ValueError:
        return []
    return [{"name": name, "value": value} for name, value in parse_qsl(query, keep_blank_values=True)]


def _headers(headers: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers]


def timings_of(timings: dict[str, float], total_ms: float) -> dict[str, float]:
    """HAR's timings from a fetch's timing facts (milliseconds on one clock; 0 or absent: not
    measured). ``send``, ``wait`` and ``receive`` are never negative; the phases that were not
    measured are -1, as HAR says."""

    def span(start: str, end: str) -> float:
        a, b = timings.get(start) or 0.0, timings.get(end) or 0.0
        return round(b - a, 3) if a > 0 and b >= a else -1.0

    out = {"blocked": -1.0, "dns": span("dnsStart", "dnsEnd"), "connect": span("connectStart", "connectEnd"),
           "ssl": span("tlsStart", "connectEnd") if timings.get("tlsStart") else -1.0, "send": 0.0}
    wait, receive = span("requestStart", "responseStart"), span("responseStart", "responseEnd")
    if wait < 0 and receive < 0:
        wait, receive = max(0.0, round(total_ms, 3)), 0.0
    out["wait"], out["receive"] = max(0.0, wait), max(0.0, receive)
    return out


def _entry(exchange: Exchange) -> dict[str, Any]:
    total_ms = max(0.0, ((exchange.ended or exchange.started) - exchange.started) * 1000)
    timings = timings_of(exchange.timings, total_ms)
    content: dict[str, Any] = {"size": max(exchange.size, 0), "mimeType": exchange.mime_type}
    if exchange.body is not None:
        content["text"], content["encoding"] = base64.b64encode(exchange.body).decode("ascii"), "base64"
        if exchange.truncated:
            content["_truncated"] = True
    request: dict[str, Any] = {
        "method": exchange.method,
        "url": exchange.url,
        "httpVersion": exchange.http_version,
        "cookies": _cookies(exchange.request_headers, response=False),
        "headers": _headers(exchange.request_headers),
        "queryString": _query(exchange.url),
        "headersSize": -1,
        "bodySize": -1 if exchange.request_body is None else len(exchange.request_body),
    }
    if exchange.request_body is not None:
        request["postData"] = {
            "mimeType": _header(exchange.request_headers, "content-type"),
            "text": base64.b64encode(exchange.request_body).decode("ascii"),
            "encoding": "base64",
        }
    entry: dict[str, Any] = {
        "startedDateTime": _iso(exchange.started),
        "time": round(sum(value for value in timings.values() if value > 0), 3),
        "request": request,
        "response": {
            "status": exchange.status,
            "statusText": exchange.status_text,
            "httpVersion": exchange.http_version,
            "cookies": _cookies(exchange.response_headers, response=True),
            "headers": _headers(exchange.response_headers),
            "content": content,
            "redirectURL": _header(exchange.response_headers, "location"),
            "headersSize": -1,
            "bodySize": exchange.transferred,
        },
        "cache": {},
        "timings": timings,
    }
    if exchange.error is not None or (exchange.status == 0 and exchange.ended is None):
        entry["_error"] = exchange.error or "no answer yet"
    if exchange.refusal is not None:
        entry["_refusal"] = exchange.refusal
    return entry
