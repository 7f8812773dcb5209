"""A synchronous WebSocket client for the tests that checks every server frame against the schemas.

``connect(ws_url, tenant="acme", headers=None, timeout=10)`` returns a ``Session`` (context manager):

- ``send(frame)``: a dict is JSON-encoded, a str is sent verbatim as text, bytes as a binary frame.
- ``recv(timeout=None) -> dict``: the next frame, parsed and validated against ``schemas/``; an
  invalid frame, a binary frame or non-JSON text is an ``AssertionError``; the server closing
  instead raises ``ServerClosed`` (an AssertionError with ``.code`` and ``.reason``).
- ``recv_bytes(timeout=None) -> bytes``: the next frame, which must be binary (the live view).
- ``request(frame, timeout=None) -> dict``: send, then recv.
- ``open(frame=None, *, recv_timeout=None, **fields) -> session_id``: the handshake (the open
  reply's ``resume_token`` is kept in ``.resume_token``).
- ``expect_close(timeout=None) -> (code, reason)``: the server's close frame (1006 when the TCP
  connection ended without one); a data frame first is an ``AssertionError``.
- ``close()``: close our side (idempotent).

``connect(..., checked=False)`` skips the schema and UTF-8 checks of every frame (the load bench:
there the client's own checks would cost more CPU than the service's work; it checks a sample
with ``validate_frame``). ``validate_frame(frame)`` and ``schema_for(frame)`` expose the
validation on its own.
``http_get(url, headers=None) -> (status, [[name, value]], body)`` and
``raw_upgrade(ws_url, headers=None) -> (status, body)`` talk plain HTTP to the service, for the
answers it gives before (or instead of) the upgrade.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import struct
import threading
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import websocket
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from service.action_frames import REPLY_ACTION
from tests.support.ports import scaled

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
SCHEMA_BASE = "https://inndx.invalid/schemas/"
RESPONSE_SCHEMAS = {reply: f"{request}.response.json" for request, reply in REPLY_ACTION.items()}
ABNORMAL_CLOSURE = 1006
OPEN_BOUND = 60.0  # seconds for an open's reply (the browser's start), unless a test says

Headers = Mapping[str, str] | Iterable[tuple[str, str]] | None


def _header_pairs(headers: Headers) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(n), str(v)) for n, v in items]


# schemas -------------------------------------------------------------------------------------
_BUILDING = threading.Lock()


def _validators() -> dict[str, Draft202012Validator]:
    """Every schema file, checked, in one registry; built once per test run (by one thread: a
    burst of sessions receiving their first frame at once would otherwise each build them, and
    share the CPU doing it; that once passed for a stall of the service in the open bench)."""
    with _BUILDING:
        return _build_validators()


@cache
def _build_validators() -> dict[str, Draft202012Validator]:
    files = sorted([*SCHEMA_DIR.glob("*.json"), *SCHEMA_DIR.glob("middleware/*.json")])
    assert files, f"no schema files in {SCHEMA_DIR}"
    contents = {f.relative_to(SCHEMA_DIR).as_posix(): json.loads(f.read_text()) for f in files}
    registry: Registry = Registry().with_resources(
        (schema.get("$id", SCHEMA_BASE + name), Resource.from_contents(schema, default_specification=DRAFT202012))
        for name, schema in contents.items()
    )
    validators = {}
    for name, schema in contents.items():
        Draft202012Validator.check_schema(schema)
        validators[name] = Draft202012Validator(
            schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
    return validators


def schema_for(frame: Any) -> str:
    """The schema file a server frame must match (error, open response, or by action)."""
    assert isinstance(frame, dict), f"server frame is not a JSON object: {frame!r}"
    if "type" in frame:
        return "error.json"
    if "session_id" in frame:
        return "resume.response.json" if "resumed" in frame else "open.response.json"
    action = frame.get("action")
    assert action in RESPONSE_SCHEMAS, f"server frame has no known action ({action!r}): {frame!r}"
    return RESPONSE_SCHEMAS[action]


def validate_frame(frame: Any) -> None:
    """Raise AssertionError unless ``frame`` matches its schema."""
    name = schema_for(frame)
    validators = _validators()
    assert name in validators, f"schema {name} missing from {SCHEMA_DIR}"
    error = best_match(validators[name].iter_errors(frame))
    if error is not None:
        raise AssertionError(
            f"server frame does not match {name} at {error.json_path}: {error.message}\n"
            f"frame: {json.dumps(frame)[:2000]}"
        )


# the client ----------------------------------------------------------------------------------
class ServerClosed(AssertionError):
    """The server closed the socket while a frame was expected."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"server closed the socket: {code} {reason!r}")
        self.code, self.reason = code, reason


class Session:
    """One WebSocket to the service; every received frame is schema-checked (unless ``checked``
    is False)."""

    def __init__(self, ws: websocket.WebSocket, timeout: float, checked: bool = True) -> None:
        self.ws = ws
        self.timeout = timeout
        self.checked = checked
        self.session_id: str | None = None
        self.resume_token: str | None = None  # from the open reply (or the last resume reply)
        self.close_code: int | None = None
        self.close_reason: str | None = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, frame: dict[str, Any] | list[Any] | str | bytes) -> None:
        if isinstance(frame, bytes):
            self.ws.send_binary(frame)
        elif isinstance(frame, str):
            self.ws.send(frame)
        else:
            self.ws.send(json.dumps(frame))

    def _next(self, timeout: float | None) -> tuple[int, bytes]:
        """The next data or close frame as (opcode, payload); (close, b"") on a dropped TCP link."""
        ws, abnf = self.ws, websocket.ABNF
        if self.close_code is not None:
            return abnf.OPCODE_CLOSE, b""
        ws.settimeout(scaled(timeout) if timeout is not None else self.timeout)
        while True:
            try:
                frame = ws.recv_frame()
            except websocket.WebSocketTimeoutException:
                raise TimeoutError("no frame from the server in time") from None
            except (websocket.WebSocketConnectionClosedException, OSError):
                self._set_close(ABNORMAL_CLOSURE, "")
                ws.shutdown()
                return abnf.OPCODE_CLOSE, b""
            if frame.opcode in (abnf.OPCODE_TEXT, abnf.OPCODE_BINARY, abnf.OPCODE_CONT):
                ws.cont_frame.validate(frame)
                ws.cont_frame.add(frame)
                if ws.cont_frame.is_fire(frame):
                    opcode, whole = ws.cont_frame.extract(frame)
                    return opcode, whole.data
            elif frame.opcode == abnf.OPCODE_CLOSE:
                data = frame.data or b""
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                self._set_close(code, data[2:].decode("utf-8", "replace"))
                try:  # answer the close handshake; the server may already be gone
                    ws.send_close(code if code not in (1005, 1006) else 1000)
                except (websocket.WebSocketException, OSError):
                    pass
                ws.shutdown()
                return abnf.OPCODE_CLOSE, data
            elif frame.opcode == abnf.OPCODE_PING:
                try:
                    ws.pong(frame.data)
                except (websocket.WebSocketException, OSError):
                    pass

    def _set_close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason

    def recv(self, timeout: float | None = None) -> dict[str, Any]:
        """The next frame, JSON-parsed and schema-validated. ``timeout`` is scaled."""
        opcode, data = self._next(timeout)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise ServerClosed(self.close_code or ABNORMAL_CLOSURE, self.close_reason or "")
        assert opcode == websocket.ABNF.OPCODE_TEXT, f"server sent a non-text frame: {data[:200]!r}"
        try:
            frame = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise AssertionError(f"server frame is not JSON ({exc}): {data[:500]!r}") from None
        if self.checked:
            validate_frame(frame)
        return frame

    def recv_bytes(self, timeout: float | None = None) -> bytes:
        """The next frame, which must be binary (the live view's frames). ``timeout`` is scaled."""
        opcode, data = self._next(timeout)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise ServerClosed(self.close_code or ABNORMAL_CLOSURE, self.close_reason or "")
        assert opcode == websocket.ABNF.OPCODE_BINARY, f"server sent a non-binary frame: {data[:200]!r}"
        return data

    def request(self, frame: dict[str, Any] | str | bytes, timeout: float | None = None) -> dict[str, Any]:
        self.send(frame)
        return self.recv(timeout)

    def open(self, frame: dict[str, Any] | None = None, *, recv_timeout: float | None = None, **fields: Any) -> str:
        """Send the open frame (``frame`` merged with ``fields``); return the session id. The
        reply is waited for up to ``recv_timeout`` (default ``OPEN_BOUND``; scaled like every
        wait): a cold browser start on a loaded machine takes 20 s and more."""
        bound = recv_timeout if recv_timeout is not None else OPEN_BOUND
        reply = self.request({**(frame or {}), **fields}, bound)
        assert "session_id" in reply, f"open was refused: {reply!r}"
        self.session_id = reply["session_id"]
        self.resume_token = reply.get("resume_token")
        return reply["session_id"]

    def expect_close(self, timeout: float | None = None) -> tuple[int, str]:
        """Wait for the server's close frame; return (code, reason)."""
        if self.close_code is not None:
            return self.close_code, self.close_reason or ""
        opcode, data = self._next(timeout)
        if opcode != websocket.ABNF.OPCODE_CLOSE:
            raise AssertionError(f"expected the server to close, got a frame: {data[:500]!r}")
        return self.close_code or ABNORMAL_CLOSURE, self.close_reason or ""

    def close(self) -> None:
        """Close our side (bounded); idempotent."""
        if not self.ws.connected:
            self.ws.shutdown()
            return
        try:
            self.ws.close(timeout=scaled(2))
        except (OSError, websocket.WebSocketException):
            self.ws.shutdown()


def connect(
    ws_url: str, tenant: str | None = "acme", headers: Headers = None, timeout: float = 10.0, checked: bool = True
) -> Session:
    """Open a WebSocket with ``X-Tenant-Id: tenant`` (None: no header); ``timeout`` is scaled."""
    pairs = _header_pairs(headers)
    if tenant is not None:
        pairs.insert(0, ("X-Tenant-Id", tenant))
    ws = websocket.create_connection(
        ws_url, timeout=scaled(timeout), header=[f"{n}: {v}" for n, v in pairs],
        enable_multithread=True, skip_utf8_validation=not checked,
    )
    return Session(ws, scaled(timeout), checked)


# plain HTTP ----------------------------------------------------------------------------------
def close_all(sessions: Iterable[Session], timeout: float = 20) -> None:
    """A fixture's teardown: each session still open sends close (whatever it answers), then its
    socket goes."""
    for session in sessions:
        if session.close_code is None:
            with contextlib.suppress(AssertionError):
                session.request({"action": "close"}, timeout=timeout)
        session.close()


def http_get(url: str, headers: Headers = None, timeout: float = 10.0) -> tuple[int, list[list[str]], bytes]:
    """GET ``url`` (http or ws scheme); return (status, headers in order, body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=scaled(timeout))
    try:
        pairs = _header_pairs(headers)
        conn.putrequest("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                        skip_host=any(n.lower() == "host" for n, _ in pairs), skip_accept_encoding=True)
        for name, value in pairs:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, [[n, v] for n, v in resp.getheaders()], resp.read()
    finally:
        conn.close()


def raw_upgrade(ws_url: str, headers: Headers = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """Attempt a WebSocket upgrade by hand; return (status, body). 101 means it was accepted."""
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }
    status, _, body = http_get(ws_url, [*upgrade.items(), *_header_pairs(headers)], timeout)
    return status, body
