"""One connection to a session's listener: plain HTTP requests (absolute ``http://`` targets,
passed on exactly as the server answered, the server connection kept for the next request to the
same origin) and ``CONNECT`` tunnels. Every target is resolved, checked and connected to here;
what the gateway answers itself (403, 502, 503) is remembered by the listener for the goto."""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from service.egress import http
from service.model import Proxy
from service.policy import Refused

if TYPE_CHECKING:
    from service.egress.gateway import Listener

CONNECT_TIMEOUT = 10.0  # seconds to open a connection to a target or the upstream proxy
HEAD_TIMEOUT = 30.0  # seconds a client or an upstream proxy may take to send a head
CHUNK = 64 * 1024


class _Cut(Exception):
    """The connection is cut where it stands (a response past the body limit)."""


class _Answered(Exception):
    """The gateway answers the request itself (``code``, ``text``) and ends the connection."""

    def __init__(self, code: int, text: str, reason: str | None = None):
        super().__init__(text)
        self.code, self.text, self.reason = code, text, reason


class Connection:
    def __init__(
        self, listener: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, full: bool = False
    ):
        self.full = full  # the session is at its connection cap: every request gets 503
        self.listener = listener
        self.gateway = listener.gateway
        self.reader, self.writer = reader, writer
        self.key = ""  # the request's target, for what the listener remembers
        self._origin: tuple[str, asyncio.StreamReader, asyncio.StreamWriter] | None = None  # kept alive

    async def serve(self) -> None:
        """Requests, one after another while both sides keep the connection; a tunnel ends it."""
        try:
            await self._serve()
        finally:
            self._drop_origin()

    async def _serve(self) -> None:
        keep = True
        while keep:
            try:
                head = await self._read_head(self.reader, response=False)
                if head is None:
                    return
                self.key = head.target
                if self.full:
                    raise _Answered(503, f"inndx egress gateway: over {self.listener.max_connections} open connections")
                if head.method == "CONNECT":
                    host, port = http.split_authority(head.target)
                    self.key = http.authority(host, port).lower()
                    await self._tunnel(host, port, head)
                    return
                host, port, path = http.split_url(head.target)
                self.key = head.target.split("#", 1)[0]
                keep = await self._forward(host, port, path, head)
            except _Answered as answer:
                if answer.reason is not None:
                    self.listener.refusals += 1
                    self.gateway.refused(answer.reason)
                    self.listener.log.info("egress refused: %s", answer.text)
                self.listener.remember_answer(self.key, answer.code, answer.text)
                await self._reply(http.answer(answer.code, answer.text))
                return
            except http.ProxyProtocolError as exc:
                await self._reply(http.answer(400, f"inndx egress gateway: {exc}"))
                return
            except _Cut as exc:
                self.listener.log.info("egress cut a connection: %s", exc)
                # a body cut short can look whole to the browser (one framed by the connection's
                # close): the goto asks, and answers 413 rather than a truncated page
                self.listener.remember_answer(self.key, 413, f"inndx egress gateway: {exc}")
                return
            except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return  # a side went away

    async def _reply(self, data: bytes) -> None:
        """Our own answer, then the end of the connection: what the client still sends (a body
        we refused) is read and dropped for a moment, so that closing does not reset the answer."""
        try:
            self.writer.write(data)
            await self.writer.drain()
            self.writer.write_eof()
            async with asyncio.timeout(1.0):
                while await self.reader.read(CHUNK):
                    pass
        except (ConnectionError, OSError, TimeoutError, RuntimeError):
            pass

    async def _read_answer(self, reader: asyncio.StreamReader, origin: str) -> http.Head | None:
        """A server's (or the upstream proxy's) response head; a malformed one is a 502 of ours."""
        try:
            return await self._read_head(reader, response=True)
        except http.ProxyProtocolError as exc:
            raise _Answered(502, f"inndx egress gateway: {origin[:200]} answered malformed HTTP: {exc}") from exc

    async def _read_head(self, reader: asyncio.StreamReader, response: bool) -> http.Head | None:
        try:
            async with asyncio.timeout(HEAD_TIMEOUT):
                data = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial and not response:
                return None
            raise http.ProxyProtocolError("the head ended early") from exc
        except asyncio.LimitOverrunError as exc:
            raise http.ProxyProtocolError(f"head over {http.MAX_HEAD} bytes") from exc
        return http.parse_head(data, response=response)

    # ----- checks and connections -----------------------------------------------------------
    async def _check(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` the policy allows (all of them, or _Answered)."""
        loop = asyncio.get_running_loop()
        shown = http.authority(host, port)
        try:
            async with self.listener.resolving:
                infos = await loop.getaddrinfo(host, port, proto=6)  # IPPROTO_TCP
        except (OSError, UnicodeError) as exc:
            raise _Answered(502, f"inndx egress gateway: cannot resolve {shown[:200]}: {exc}") from exc
        addresses = sorted({info[4][0] for info in infos})
        try:
            return self.gateway.policy.check(host, port, addresses)
        except Refused as exc:
            raise _Answered(403, f"inndx egress gateway: {exc.message}", exc.reason) from exc

    async def _open(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to a checked target, or to the upstream proxy when the session has one."""
        addresses = await self._check(host, port)
        upstream = self.listener.upstream
        if upstream is not None:
            opened = await self._open_upstream(upstream)
            self.listener.forget_answer(self.key)
            return opened
        error: Exception | None = None
        for address in addresses:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    opened = await asyncio.open_connection(address, port, limit=http.MAX_HEAD)
            except (OSError, TimeoutError) as exc:
                error = exc
                continue
            self.listener.forget_answer(self.key)
            return opened
        shown = http.authority(host, port)
        raise _Answered(502, f"inndx egress gateway: cannot connect to {shown[:200]}: {_why(error)}")

    async def _open_upstream(self, upstream: Proxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        parts = urlsplit(upstream.url)
        secure = parts.scheme == "https"
        context = ssl.create_default_context() if secure else None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                return await asyncio.open_connection(
                    parts.hostname, parts.port or (443 if secure else 8080), ssl=context, limit=http.MAX_HEAD
                )
        except (OSError, TimeoutError) as exc:
            raise _Answered(
                502, f"inndx egress gateway: the upstream proxy {upstream.id!r} is unreachable: {type(exc).__name__}"
            ) from exc

    def _upstream_headers(self) -> list[tuple[str, str]]:
        upstream = self.listener.upstream
        credentials = http.basic_credentials(upstream.url) if upstream is not None else None
        return [("Proxy-Authorization", credentials)] if credentials else []

    # ----- CONNECT --------------------------------------------------------------------------
    async def _tunnel(self, host: str, port: int, head: http.Head) -> None:
        target = http.authority(host, port)
        reader, writer = await self._open(host, port)
        try:
            upstream = self.listener.upstream
            if upstream is not None:
                writer.write(http.render(f"CONNECT {target} HTTP/1.1", [("Host", target), *self._upstream_headers()]))
                await writer.drain()
                answer = await self._read_answer(reader, f"the upstream proxy {upstream.id!r}")
                if answer is None or not 200 <= answer.status < 300:
                    status = "no answer" if answer is None else answer.status
                    why = "refused our credentials" if answer is not None and answer.status == 407 else "failed"
                    raise _Answered(
                        502, f"inndx egress gateway: the upstream proxy {upstream.id!r} {why} ({status}) for {target}"
                    )
            self.writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await self.writer.drain()
            await splice(self.reader, self.writer, reader, writer, self.listener.count)
        finally:
            writer.transport.abort()

    # ----- plain HTTP -----------------------------------------------------------------------
    async def _forward(self, host: str, port: int, path: str, head: http.Head) -> bool:
        """One plain HTTP request and its response, passed on exactly as the server sent it; True
        when the browser's connection may carry another request. A connection to the server is
        kept for the next request to the same host and port, as a browser would keep it."""
        request_body = http.body_framing(head, request=True)
        headers = http.end_to_end(head.headers)
        if not any(key.lower() == "host" for key, _ in headers):
            headers.insert(0, ("Host", http.authority(host, port) if port != 80 else host))
        chained = self.listener.upstream is not None
        request = http.render(
            f"{head.method} {head.target if chained else path} HTTP/1.1",
            [*headers, *(self._upstream_headers() if chained else []), ("Connection", "keep-alive")],
        )
        out = functools.partial(self.listener.count, "out")
        into = functools.partial(self.listener.count, "in")
        origin = http.authority(host, port)
        reused = self._origin is not None and self._origin[0] == origin
        if not reused:
            self._drop_origin()
            self._origin = (origin, *await self._open(host, port))
        _, reader, writer = self._origin  # type: ignore[misc]
        writer.write(request)
        out(len(request))
        await relay_body(self.reader, writer, request_body, out)
        answer = await self._read_answer(reader, origin)
        if answer is None and reused and request_body == 0:  # the server had closed the kept connection
            self._drop_origin()
            self._origin = (origin, *await self._open(host, port))
            _, reader, writer = self._origin
            writer.write(request)
            await writer.drain()
            answer = await self._read_answer(reader, origin)
        while True:
            if answer is None:
                raise _Answered(502, f"inndx egress gateway: no answer from {origin[:200]}")
            if chained and answer.status == 407:
                upstream = self.listener.upstream
                raise _Answered(502, f"inndx egress gateway: the upstream proxy {upstream.id!r} refused our credentials")
            await _write(self.writer, http.render(" ".join(answer.start).rstrip(), answer.headers), into)
            if not (100 <= answer.status < 200 and answer.status != 101):
                break
            answer = await self._read_answer(reader, origin)
        framing = http.body_framing(answer, request=False, method=head.method)
        seen = 0

        def body(size: int) -> None:
            nonlocal seen
            seen += size
            into(size)
            if seen > self.gateway.max_body_bytes:
                raise _Cut(f"a response body from {origin[:200]} passed {self.gateway.max_body_bytes} bytes")

        await relay_body(reader, self.writer, framing, body)
        if framing == "close" or http.wants_close(answer):
            self._drop_origin()
        return framing != "close" and not (http.wants_close(head) or http.wants_close(answer))

    def _drop_origin(self) -> None:
        if self._origin is not None:
            self._origin[2].transport.abort()
            self._origin = None


async def relay_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, framing: int | str, count: Callable[[int], None]
) -> None:
    """Copy one message body framed as ``framing``: a length, ``"chunked"`` or ``"close"``."""
    if framing == "close":
        await pump(reader, writer, count)
        return
    if framing == "chunked":
        while True:
            line = await reader.readuntil(b"\r\n")
            await _write(writer, line, count)
            size = http.chunk_size(line)
            if size == 0:
                while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                    await _write(writer, trailer, count)
                await _write(writer, trailer, count)
                return
            await relay_body(reader, writer, size + 2, count)
    left = int(framing)
    while left > 0:
        data = await reader.read(min(CHUNK, left))
        if not data:
            raise asyncio.IncompleteReadError(b"", left)
        await _write(writer, data, count)
        left -= len(data)


async def _write(writer: asyncio.StreamWriter, data: bytes, count: Callable[[int], None]) -> None:
    writer.write(data)
    count(len(data))
    await writer.drain()


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: Callable[[int], None]) -> None:
    """Copy ``reader`` to ``writer`` until end of stream, then half-close ``writer``."""
    while True:
        data = await reader.read(CHUNK)
        if not data:
            break
        writer.write(data)
        count(len(data))
        await writer.drain()
    if writer.can_write_eof() and not writer.is_closing():
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass


async def splice(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    server_reader: asyncio.StreamReader,
    server_writer: asyncio.StreamWriter,
    count: Callable[[str, int], None],
) -> None:
    """Both directions of a tunnel until both have ended (or one fails)."""
    up = asyncio.create_task(pump(client_reader, server_writer, lambda n: count("out", n)))
    down = asyncio.create_task(pump(server_reader, client_writer, lambda n: count("in", n)))
    try:
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in (up, down):
            task.cancel()
    for task in (up, down):
        if task.done() and not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, (ConnectionError, OSError)):
                raise exc  # type: ignore[misc]


def _why(error: BaseException | None) -> str:
    """Why a connection failed, without the address it went to: asyncio's message names it
    ("Connect call failed ('10.1.2.3', 80)"), and the host may be a name the client should not
    learn the address of (the page sees this text)."""
    if error is None:
        return "no address"
    if isinstance(error, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:g}s"
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno)
    return type(error).__name__
