"""Sessions that outlive their instance (issue 18, across instances; ``INNDX_REDIS_URL``).

- **Records.** Each session of this process has a record in Redis (``service.session_records``),
  kept by its ``Recorder``: written when its first reply goes out, after each frame a standard
  session handled (its cookie jar and the id of that frame), on every resume (the new token's
  hash), deleted when the session ends here.
- **Handover** (``shutdown``): on SIGTERM, a session whose state can move (a standard session
  that can be resumed) is released in Redis with its last jar, then its client gets fatal 503
  with ``"resumable": true`` and close 1012. Browser sessions end as before (fatal 503, 1001):
  their browser is on this machine (cross-instance Grid adoption is not built).
- **Adoption** (``adopt``): a resume for a session this process does not hold looks its record
  up. The token is checked first (constant time, the same 403 as for an unknown session); a
  record held by a live owner is 421 (the load balancer sent the resume to the wrong instance);
  one whose window passed is 410; a free one is claimed atomically (of two racing instances,
  exactly one wins; the other answers 410) and opened again here from its record, its jar
  restored. The replay buffer stays behind: no reply is sent again after an adoption, and
  ``last_received`` is the id of the last frame the session handled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from service import protocol, resume
from service.clients.base import FetchClient
from service.deadline import Deadline
from service.errors import BadRequest, HandedOver, Misdirected, ServiceError, Unavailable
from service.session_records import Record, RecordError, Records, parse

if TYPE_CHECKING:
    from service.hub import Hub, Ticket
    from service.session import Outbox, Session

logger = logging.getLogger(__name__)

MOVABLE = ("standard",)  # client kinds whose state a record carries
JAR_WAIT = 5.0  # seconds for reading the jar (the standard client's is in memory)
MISDIRECTED = "this session is held by another server: reconnect with ?session=<session_id> on the URL"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest() if key else ""


def open_spelling(frame: protocol.OpenFrame) -> dict[str, Any]:
    """The open frame as the protocol spells it (no storage state: the recorder adds the jar)."""
    client: Any = frame.client
    if frame.viewport is not None:
        client = {"kind": frame.client, "viewport": dataclasses.asdict(frame.viewport)}
    return {
        "client": client,
        "middleware": [dict(entry) for entry in frame.middleware],
        "proxies": list(frame.proxies),
        "timeout": f"{round(frame.timeout * 1000)}ms",
        "max_redirects": frame.max_redirects,
        "max_retries": frame.max_retries,
    }


class Recorder:
    """One session's record (its thread, and the socket thread of a resume)."""

    def __init__(self, records: Records, session_id: str, tenant: str, key: str, open_frame: protocol.OpenFrame,
                 credentials: Callable[[], resume.Credentials | None]):
        self._records = records
        self._id, self._tenant, self._key, self._kind = session_id, tenant, key_hash(key), open_frame.client
        self._credentials = credentials  # the session's current ones (its link's)
        self._open = open_spelling(open_frame)
        self._cookies: list[dict[str, Any]] = []
        if open_frame.storage_state is not None:
            self._cookies = [_cookie(c) for c in open_frame.storage_state.cookies]
        self._last: Any = None
        self._written = False

    def __call__(self, client: FetchClient | None, last_done: Any, released: bool) -> None:
        """The session's ``on_record``: its jar read on its own thread (Rule 1)."""
        kind = self._kind
        if kind not in MOVABLE and self._written and not released:
            return  # a browser's record says who may resume it (and the resumes' tokens); nothing else moves
        self._written = True
        if kind in MOVABLE and client is not None:
            try:
                self._cookies = [_cookie(c) for c in client.cookies(Deadline(JAR_WAIT))]
            except ServiceError as error:
                logger.warning("the jar could not be read for the record: %s", error.message)
        self._last = last_done
        if released:
            self._records.release(self._id, self.record())
        else:
            self._records.write(self._id, self.record())

    def record(self) -> Record:
        credentials = self._credentials()
        open_frame = dict(self._open)
        if self._cookies:
            open_frame["storage_state"] = {"cookies": self._cookies, "origins": []}
        return Record(
            tenant=self._tenant, key=self._key, token=credentials.digest if credentials else b"\0" * 32,
            client=self._kind, open=open_frame, last_received=self._last,
        )

    def resumed(self) -> None:
        """A resume gave a new token: the record says so (the socket's thread)."""
        self._records.write(self._id, self.record())

    def ended(self) -> None:
        self._records.delete(self._id)


def _cookie(cookie: Any) -> dict[str, Any]:
    return {name: value for name, value in dataclasses.asdict(cookie).items() if value is not None}


def adopt(hub: Hub, ticket: Ticket, frame: protocol.ResumeFrame, outbox: Outbox) -> Session:
    """A resume of a session this process does not hold (see the module's docstring)."""
    records = hub.records
    who = (ticket.tenant.id, ticket.key, frame.token)
    if records is None:
        resume.check(None, *who)
        raise resume.refused()
    try:
        look = records.look(frame.session_id)
    except records.error as exc:
        raise _unreachable(exc) from exc
    record = None
    if look.state != "none":
        try:
            record = parse(look.raw)
        except RecordError as error:
            logger.warning("a session record that is not ours was ignored: %s", error)
    credentials = None
    if record is not None and record.tenant == ticket.tenant.id and record.key == key_hash(ticket.key):
        credentials = resume.Credentials(record.token)
    known = resume.check(credentials, *who)
    resume.check(None, *who)  # as many comparisons as for a session held here
    if not known or record is None:
        raise resume.refused()
    if look.state == "owned":
        raise Misdirected(MISDIRECTED)
    if look.state != "free":
        raise resume.gone()
    if record.client not in MOVABLE:
        raise resume.gone("its browser did not outlive its server")
    try:
        open_frame = hub.protocol.parse_open(json.dumps(record.open))
    except (BadRequest, ValueError) as error:
        logger.warning("a session record's open frame was refused: %s", error)
        raise resume.gone("its state could not be carried") from None
    if not isinstance(open_frame, protocol.OpenFrame):
        raise resume.gone("its state could not be carried")
    try:
        if not records.adopt(frame.session_id, look.raw):
            raise resume.gone("it was resumed on another connection")
    except records.error as exc:
        raise _unreachable(exc) from exc
    started = time.monotonic()
    try:
        session = hub.open_session(ticket.hand_over(), open_frame, outbox,
                                   adopting=(frame.session_id, record.last_received, credentials))
    except BaseException:
        records.delete(frame.session_id)  # taken and not opened: nobody else could adopt it now
        raise
    logger.info("session adopted from a record in %.3fs", time.monotonic() - started)
    return session


def session_id_for(hub: Hub, proposed: str | None) -> str:
    """A new session's id: the one its socket proposed (``?session=<a fresh UUID>`` on the open's
    URL, so that a balancer hashing that argument sends its open and its resumes to one instance)
    when it is a canonical UUID 4 that no live session here, nor a record, has; else a random one."""
    if proposed is not None:
        try:
            wanted = str(uuid.UUID(proposed, version=4))
        except ValueError:
            wanted = None
        if wanted == proposed and hub.find(wanted) is None:
            try:
                if hub.records is None or hub.records.look(wanted).state == "none":
                    return wanted
            except hub.records.error as exc:
                logger.warning("session records unreachable: %s", type(exc).__name__)
    return str(uuid.uuid4())


def _unreachable(exc: Exception) -> Unavailable:
    logger.warning("session records unreachable: %s", type(exc).__name__)
    return Unavailable("the session store is unreachable; try again shortly", retry_after=5)


def shutdown(hub: Hub, sessions: list[Session], first: bool, timeout: float) -> None:
    """Hub.shutdown's work, once admission is closed: standard sessions that can be resumed are
    handed over (with records), the others end with fatal 503 and close 1001; then their
    threads (and so their browsers) end, bounded by ``timeout``."""
    moving = [s for s in sessions if hub.records is not None and s.kind in MOVABLE and s.link.resumable]
    if first:
        logger.info("shutting down: %d sessions to end, %d of them handed over", len(sessions), len(moving))
    for session in sessions:
        if session in moving:
            session.fail(HandedOver("the server is restarting: resume the session, on any instance"))
        else:
            session.fail(Unavailable("the server is shutting down", close_code=1001))
    end = time.monotonic() + timeout
    hub.pool.drain(timeout)  # idle browsers end now; a launch in flight ends when it returns
    for session in sessions:
        session.thread.join(max(0.0, end - time.monotonic()))
    for session in sessions:
        if session.thread.is_alive():
            logger.warning("session %s still busy at shutdown: closing its client", session.id)
            session.force_close_client()
            session.thread.join(2.0)
    hub.gateway.stop()
    hub.quotas.close()
    if hub.records is not None:
        hub.records.close()
