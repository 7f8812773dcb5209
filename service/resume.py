"""Sessions that outlive their socket: resume tokens, the replay buffer, and the ``Link``.

A session writes every frame through its ``Link``, never to a socket directly. The link holds
the current connection's ``Outbox``, or none while the session is **parked** (its socket dropped
without a ``close`` action: no close frame, a reset, a missed pong, a write deadline). Every
reply written or produced goes into the link's ``ReplayBuffer`` first (the last ``REPLAY_COUNT``
replies, at most ``REPLAY_BYTES``), so that a client resuming on a new socket gets, in order,
the replies after the last one it received (``last_id``) or, without one, those produced since
the drop.

Tokens: ``new_token()`` is 256 bits from ``secrets``, given to the client once; the server keeps
only its SHA-256 (``Credentials``), bound to the tenant and its API key, and checks a resume with
``hmac.compare_digest`` whatever the outcome, so that a wrong token, another tenant and an
unknown session take the same path and get the same 403. Each resume gives a new token; the one
it replaced stays good only until the client's first frame on the resumed socket (its resume
reply may have been lost with that socket).

The link's lock orders everything one session writes: a reply, the resume reply and its replay
never interleave. Only the session's thread writes replies; the resuming socket's thread writes
the resume reply and the replay, under the same lock.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from service import replies
from service.errors import Forbidden, SessionExpired

TOKEN_BYTES = 32  # 256 bits
REPLAY_COUNT = 64  # replies a session keeps for a resume
REPLAY_BYTES = 32 * 1024 * 1024  # and at most this many bytes of them (the newest reply always stays)
_NOBODY = hashlib.sha256(b"no session").digest()  # compared against when the session is unknown
REFUSED = "no session with this id and token for this tenant"  # one message for every refusal


def refused() -> Forbidden:
    """The one 403 for a resume: wrong token, another tenant or key, unknown session."""
    return Forbidden(REFUSED, fatal=True)


def gone(why: str = "the session is over") -> SessionExpired:
    return SessionExpired(f"the session cannot be resumed: {why}")


def new_token() -> str:
    """A fresh resume token: 256 random bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).digest()


@dataclass
class Credentials:
    """Who may resume a session: the hash of (tenant, API key, token). Never the token."""

    digest: bytes

    @classmethod
    def issue(cls, tenant: str, key: str) -> tuple[Credentials, str]:
        token = new_token()
        return cls(_digest(tenant, key, token)), token

    def matches(self, tenant: str, key: str, token: str) -> bool:
        return hmac.compare_digest(self.digest, _digest(tenant, key, token))


def check(credentials: Credentials | None, tenant: str, key: str, token: str) -> bool:
    """``credentials.matches(...)``, in the same time when there are none (an unknown session)."""
    if credentials is None:
        hmac.compare_digest(_NOBODY, _digest(tenant, key, token))
        return False
    return credentials.matches(tenant, key, token)


class ReplayBuffer:
    """The last replies of a session, numbered from 0 in the order they were produced."""

    def __init__(self, max_count: int = REPLAY_COUNT, max_bytes: int = REPLAY_BYTES):
        self._max_count = max_count
        self._max_bytes = max_bytes
        self._items: collections.deque[tuple[int, Any, str]] = collections.deque()  # (number, id, text)
        self._bytes = 0
        self.next = 0  # the number the next reply gets

    def add(self, action_id: Any, text: str) -> int:
        number, self.next = self.next, self.next + 1
        self._items.append((number, action_id, text))
        self._bytes += len(text)
        while len(self._items) > 1 and (len(self._items) > self._max_count or self._bytes > self._max_bytes):
            self._bytes -= len(self._items.popleft()[2])
        return number

    def after_id(self, last_id: Any) -> list[str]:
        """The replies after the newest one that carried ``last_id``; all of them when none
        still held did (it fell out of the buffer: everything held came after it)."""
        texts = [text for _, _, text in self._items]
        for index in range(len(self._items) - 1, -1, -1):
            action_id = self._items[index][1]
            if action_id == last_id and type(action_id) is type(last_id):
                return texts[index + 1 :]
        return texts

    def since(self, number: int) -> list[str]:
        return [text for n, _, text in self._items if n >= number]


class Link:
    """Where a session's frames go, across sockets (``service.session.Outbox`` for the session).

    ``send``/``close`` write to the attached connection; while parked, a reply is only kept.
    ``detach`` parks (the socket's thread, or a failed write), ``attach`` resumes (a new socket's
    thread), ``wait_attached`` is how the session's thread waits out a park."""

    def __init__(self, outbox: Any, window: float, credentials: Credentials | None = None):
        self.window = window
        self.credentials = credentials
        # the token a resume replaced, good until a frame arrives on the resumed socket: a client
        # whose resume reply was lost with its socket can resume again with the token it holds
        self.previous: Credentials | None = None
        self._outbox = outbox
        self._lock = threading.RLock()
        self._attached = threading.Condition(self._lock)
        self._replay = ReplayBuffer()
        self._dropped_at = 0  # the first reply number produced since the last drop
        self.parked_since: float | None = None  # monotonic time of the drop
        self.failure: str | None = None  # why the last connection was cut (for the log)
        self.last_received: Any = None  # the id of the last action frame read, from any socket
        self.ended = False  # the session writes nothing more: no resume
        self.shown = False  # the open reply went out: before that, the client cannot resume

    @property
    def resumable(self) -> bool:
        return self.window > 0 and self.shown and not self.ended

    # -- the session's side (its thread)

    def send(self, frame: dict[str, Any]) -> bool:
        """Keep the reply, then write it if a socket is attached. False only once the session
        can send nothing more (its socket dropped and resuming is off)."""
        text = replies.encode(frame)
        with self._lock:
            kept = frame.get("type") != "fatal" and "session_id" not in frame  # replies only
            number = self._replay.add(frame.get("id"), text) if kept else None
            outbox = self._outbox
            if outbox is None:
                return self.resumable
            if outbox.send(text):
                self.shown = self.shown or "session_id" in frame
                return True
            self._park(outbox, outbox.failure or "the client went away", number)
            return self.resumable

    def close(self, code: int, reason: str = "") -> bool:
        with self._lock:
            self.ended = True
            outbox, self._outbox = self._outbox, None
            self._attached.notify_all()
            return outbox.close(code, reason) if outbox is not None else False

    def end(self) -> None:
        """The session is over: nothing more is written, no resume is taken."""
        with self._lock:
            self.ended = True
            self._attached.notify_all()

    def wait_attached(self, until: float, stop: threading.Event) -> bool:
        """Wait while parked, until ``until`` (monotonic) or ``stop``; True once attached."""
        with self._attached:
            while self._outbox is None and not stop.is_set():
                left = until - time.monotonic()
                if left <= 0:
                    return False
                self._attached.wait(left)
            return self._outbox is not None

    @property
    def parked(self) -> bool:
        return self._outbox is None and self.resumable

    # -- the sockets' side

    def is_current(self, outbox: Any) -> bool:
        return self._outbox is outbox

    def received(self, action_id: Any) -> None:
        """A frame was read from the current socket (so its client has the latest token)."""
        with self._lock:
            self.previous = None
            if action_id is not None:
                self.last_received = action_id

    def detach(self, outbox: Any, reason: str) -> bool:
        """``outbox``'s connection dropped. True when the session is now parked (resuming is on
        and that was its connection); False when it must end (resuming off) or has moved on."""
        with self._lock:
            if self._outbox is not outbox:
                return self.resumable
            self._park(outbox, reason, self._replay.next)
            return self.resumable

    def _park(self, outbox: Any, reason: str, first_unsent: int | None) -> None:
        self.failure = reason
        self._outbox = None
        self.parked_since = time.monotonic()
        self._dropped_at = self._replay.next if first_unsent is None else first_unsent

    def attach(self, outbox: Any, who: tuple[str, str, str], session_id: str, last_id: Any, has_last_id: bool) -> Any:
        """Resume on ``outbox`` for ``who`` (tenant, key, token): 403 unless the credentials match
        (checked first, in constant time), 410 once the session is over. The token is replaced;
        the old connection, still attached (a takeover), is closed with 1008; then the resume
        reply and the replies the client missed go out, in order. Returns the old outbox or None."""
        with self._lock:
            current = check(self.credentials, *who)
            if not check(self.previous, *who) and not current:  # both compared, whatever the first said
                raise refused()
            if self.ended:
                raise gone()
            if self.window <= 0:
                raise gone("resuming is off on this server")
            if current:
                self.previous = self.credentials
            self.credentials, token = Credentials.issue(who[0], who[1])
            old, self._outbox = self._outbox, outbox
            missed = self._replay.after_id(last_id) if has_last_id else self._replay.since(self._dropped_at)
            if old is not None:
                old.close(1008, "the session was resumed on another connection")
            opened = replies.session_resumed(session_id, token, self.last_received)
            for text in [replies.encode(opened), *missed]:
                if not outbox.send(text):  # dropped again at once: still parked, the same replies owed
                    self._park(outbox, outbox.failure or "the client went away", self._dropped_at)
                    return old
            self.parked_since = None
            self.failure = None
            self._dropped_at = self._replay.next
            self._attached.notify_all()
            return old
