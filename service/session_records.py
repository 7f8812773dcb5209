"""Session records in Redis (``INNDX_REDIS_URL``): what another instance needs to adopt a session
whose owner is gone (``service.handover``).

One Redis hash per session, ``inndx:session:<id>``:

- ``record``: the JSON below, written on open, after each action of a standard session (its jar
  and the id of the last frame it handled), on every resume (a new token hash) and at a handover;
- ``owner``: the process (``<uuid>``, one per worker) that holds the session, or "" once it let
  the session go (SIGTERM: released for adoption);
- ``seen``: when the owner last said it lives (milliseconds of the Redis server's clock), renewed
  every third of ``INNDX_QUOTA_TTL`` as the quota claims are; ``released``: when it let go.

The owner is alive while ``now - seen < INNDX_QUOTA_TTL``. A session nobody holds can be adopted
within ``INNDX_RESUME_WINDOW`` of its release, or (SIGKILL) of its owner's last sign of life plus
the TTL; after that a resume is 410. ``ADOPT`` re-checks all of it and takes the session in one
atomic step (a Lua script): of two instances racing, exactly one wins. The hash expires on its own
(``keep``) when nobody renews it, and is deleted when the session ends.

The record (``Record``; never the token, never the API key)::

    {"v": 1, "tenant": "...", "key": "<sha256 of the API key, hex, or ''>",
     "token": "<sha256 of tenant, key and token, hex: resume.Credentials>",
     "client": "standard", "last_received": <id or null>,
     "open": {<an open frame as the protocol spells it, with the jar as its storage_state>}}

A record read back is untrusted input: ``parse`` checks every field, and the adopting instance
parses ``open`` with the protocol's own open-frame validation.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service import protocol

logger = logging.getLogger(__name__)

VERSION = 1
MAX_RECORD_BYTES = 4 * 1024 * 1024  # a jar of 3000 cookies of 4 KiB values fits; more is not ours
ID_RANGE = protocol.ID_RANGE
KINDS = ("standard", "chrome", "firefox")
_FIELDS = {"v", "tenant", "key", "token", "client", "last_received", "open"}


class RecordError(ValueError):
    """A record that is not one we wrote: treated as no record at all."""


@dataclass(frozen=True)
class Record:
    tenant: str
    key: str  # sha256 of the API key (hex), "" when the tenant has none
    token: bytes  # resume.Credentials.digest
    client: str
    open: Mapping[str, Any]  # the open frame, the protocol's spelling
    last_received: str | int | None = None

    def encode(self) -> str:
        return json.dumps({
            "v": VERSION, "tenant": self.tenant, "key": self.key, "token": self.token.hex(),
            "client": self.client, "last_received": self.last_received, "open": dict(self.open),
        }, separators=(",", ":"))


def _hex(value: Any, length: int, what: str) -> str:
    if not isinstance(value, str) or len(value) != length or any(c not in "0123456789abcdef" for c in value):
        raise RecordError(f"{what} is not {length} lowercase hex digits")
    return value


def parse(raw: str | bytes) -> Record:
    """A record as ``Record.encode`` wrote it; ``RecordError`` for anything else."""
    if not isinstance(raw, (str, bytes)) or len(raw) > MAX_RECORD_BYTES:
        raise RecordError("not a record, or too large")
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise RecordError("not JSON") from exc
    if not isinstance(data, dict) or set(data) != _FIELDS:
        raise RecordError("not the record's fields")
    if data["v"] != VERSION or type(data["v"]) is not int:
        raise RecordError("another version")
    tenant, client, open_frame = data["tenant"], data["client"], data["open"]
    if not isinstance(tenant, str) or not 0 < len(tenant) <= 256:
        raise RecordError("bad tenant")
    if client not in KINDS:
        raise RecordError("bad client kind")
    key = data["key"] if data["key"] == "" else _hex(data["key"], 64, "key")
    token = bytes.fromhex(_hex(data["token"], 64, "token"))
    last = data["last_received"]
    if not (last is None or (isinstance(last, str) and len(last) <= 128)
            or (type(last) is int and last in ID_RANGE)):
        raise RecordError("bad last_received")
    if not isinstance(open_frame, dict) or open_frame.get("client") != client:
        raise RecordError("bad open frame")
    return Record(tenant, key, token, client, open_frame, last)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# KEYS[1] the hash; ARGV: owner, record, keep ms. Written by its owner (never over another's).
_WRITE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= '' and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[2], 'owner', ARGV[1], 'seen', now, 'released', '')
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
# KEYS[1] the hash; ARGV: owner, record, keep ms. The owner lets the session go (a handover).
_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[2], 'owner', '', 'released', now)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
# Shared by LOOK and ADOPT: h = record, owner, seen, released; ARGV[1] ttl ms, ARGV[2] window ms.
_STATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'record', 'owner', 'seen', 'released')
local state = 'none'
if h[1] then
  local owner = h[2] or ''
  local seen = tonumber(h[3]) or 0
  local since = tonumber(h[4])
  if owner ~= '' and now - seen < tonumber(ARGV[1]) then state = 'owned:' .. owner
  else
    if owner ~= '' or not since then since = seen + tonumber(ARGV[1]) end
    if now > since + tonumber(ARGV[2]) then state = 'expired' else state = 'free' end
  end
end
"""
_LOOK = _STATE + "return {state, h[1] or ''}"
# ARGV[3] the adopter, ARGV[4] the record it read and checked: taken only if still free and unchanged.
_ADOPT = _STATE + """
if state ~= 'free' or h[1] ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[3], 'seen', now, 'released', '')
return 1
"""
# KEYS: the hashes this process holds; ARGV: owner, keep ms.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do
  if redis.call('HGET', KEYS[i], 'owner') == ARGV[1] then
    redis.call('HSET', KEYS[i], 'seen', now)
    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2]))
  end
end
return 1
"""
# KEYS[1]; ARGV[1] owner: the session ended here.
_DELETE = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


@dataclass(frozen=True)
class Lookup:
    state: str  # "none", "owned" (by a live process), "mine", "free" (adoptable), "expired"
    raw: bytes = b""  # the record as read (for ADOPT's compare)


class Records:
    """This process's session records; ``instance`` names it as an owner."""

    def __init__(self, url: str, ttl: float, window: float, instance: str):
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.error: type[Exception] = redis.RedisError
        self._scripts = {name: self._redis.register_script(text) for name, text in (
            ("write", _WRITE), ("release", _RELEASE), ("look", _LOOK), ("adopt", _ADOPT),
            ("renew", _RENEW), ("delete", _DELETE))}
        self.instance = instance
        self._ttl_ms, self._window_ms = int(ttl * 1000), int(window * 1000)
        self._keep_ms = self._ttl_ms + self._window_ms + 60_000  # a late resume is still told 410 a while
        self._lock = threading.Lock()
        self._held: set[str] = set()
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._renew_loop, args=(ttl / 3,), name="record-heartbeat", daemon=True)
        self._heartbeat.start()

    @staticmethod
    def key(session_id: str) -> str:
        return f"inndx:session:{session_id}"

    def write(self, session_id: str, record: Record) -> bool:
        """Write (or rewrite) the record of a session this process holds; False when another
        process holds it or Redis is unreachable (logged: the session goes on, unmovable)."""
        with self._lock:
            self._held.add(session_id)
        return self._run("write", session_id, [self.instance, record.encode(), self._keep_ms])

    def release(self, session_id: str, record: Record) -> bool:
        """Let the session go for another instance to adopt (its last record), within the window."""
        with self._lock:
            self._held.discard(session_id)
        return self._run("release", session_id, [self.instance, record.encode(), self._window_ms + 60_000])

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._held.discard(session_id)
        self._run("delete", session_id, [self.instance])

    def look(self, session_id: str) -> Lookup:
        state, raw = self._scripts["look"](keys=[self.key(session_id)], args=[self._ttl_ms, self._window_ms])
        state = state.decode() if isinstance(state, bytes) else str(state)
        if state.startswith("owned:"):
            state = "mine" if state == f"owned:{self.instance}" else "owned"
        return Lookup(state, raw if isinstance(raw, bytes) else str(raw).encode())

    def adopt(self, session_id: str, raw: bytes) -> bool:
        """Take a free session whose record is still ``raw``: exactly one of several racing wins."""
        taken = self._scripts["adopt"](keys=[self.key(session_id)], args=[self._ttl_ms, self._window_ms, self.instance, raw])
        if taken:
            with self._lock:
                self._held.add(session_id)
        return bool(taken)

    def _run(self, script: str, session_id: str, args: list[Any]) -> bool:
        try:
            return bool(self._scripts[script](keys=[self.key(session_id)], args=args))
        except self.error as exc:
            logger.warning("session record not %sd: %s", script.rstrip("e"), type(exc).__name__)
            return False

    def _renew_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            with self._lock:
                held = [self.key(session_id) for session_id in sorted(self._held)]
            if not held:
                continue
            try:
                self._scripts["renew"](keys=held, args=[self.instance, self._keep_ms])
            except self.error as exc:
                logger.warning("could not renew session records: %s", type(exc).__name__)

    def close(self) -> None:
        self._stop.set()
        self._heartbeat.join(5)
        self._redis.close()
