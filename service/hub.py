"""What one service instance shares: settings, validators, tenants, proxies, metrics, and the
live sessions with their quotas. Everything here is thread-safe; nothing here knows Flask.

Capacity is asked of ``service.quotas`` (the tenant's quota, then the instance's): a session
slot is held from the upgrade until the session's thread has ended (its browser quit), a
browser slot from the open frame until then too. Both are claims on the session's ``Ticket``.
A claim refused while a session that holds one is ending (its client closed or dropped, its
browser being torn down), or starts to within ``DROP_GRACE``, waits for that session's end (at
most ``ENDING_WAIT``): a client that reconnects at once finds the slot it just gave up, not a
429 or 503. A refusal that stands is so decided after the grace.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid

from service import handover, middleware, protocol, replies, resume
from service.clients import make_client
from service.clients.base import ClientOptions
from service.config import Settings
from service.egress import Gateway, Listener
from service.errors import BadRequest, ServiceError, TooManyRequests, Unavailable
from service.grid_starts import ColdGridStarts, once
from service.metrics import Metrics
from service.pool import Pool, unit_maker
from service.proxies import Proxies
from service.quotas import Claim, Quotas
from service.session import Outbox, Session
from service.session_records import Records
from service.tenants import Tenants
from service.ticket import Ticket

logger = logging.getLogger(__name__)

ENDING_WAIT = 10.0  # seconds a refused claim may wait for an ending session to free its own
DROP_GRACE = 0.5  # seconds it waits for a session to start ending (a dropped socket not yet read)
ENDING_POLL = 0.02  # seconds between its looks meanwhile (a session starting to end notifies nothing)


GONE_KEPT = 10_000  # ended sessions remembered, so that a resume of one is told 410, not 403


class Hub:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.protocol = protocol.Protocol.for_settings(settings)
        self.tenants = Tenants.load(settings.tenants_file, settings.default_max_sessions)
        self.proxies = Proxies.load(settings.proxies_file)
        self.metrics = Metrics()
        self.gateway = Gateway(
            settings.policy,
            self.metrics,
            bind_host=settings.egress_host,
            advertise_host=settings.egress_address,
            max_body_bytes=settings.max_body_bytes,
        )
        self._egress: dict[str, Listener] = {}  # browser sessions' listeners, by session id
        self.quotas = Quotas(settings, self.metrics)
        self.records = (  # sessions' records, for another instance to adopt them (service.handover)
            Records(settings.redis_url, settings.quota_ttl, settings.resume_window, uuid.uuid4().hex)
            if settings.redis_url and settings.resume_window > 0 else None
        )
        self._recorders: dict[str, handover.Recorder] = {}
        self.metrics.parked(self.parked_sessions)
        self._lock = threading.Lock()
        self._ended = threading.Condition(self._lock)  # notified each time a session has ended
        self._sessions: dict[str, Session] = {}
        self._gone: collections.OrderedDict[str, resume.Credentials | None] = collections.OrderedDict()
        self._pool_slots: list[Claim] = []  # the pool's browser slots (ready or launching), interchangeable
        # cold opens on the Grid whose browser has not started yet (the pool leaves them room)
        self._grid = ColdGridStarts(settings.selenium_remote_url or "", lambda: self.pool.evict())
        self._shutting_down = False
        self.pool = Pool(
            {"chrome": settings.pool_chrome, "firefox": settings.pool_firefox},
            unit_maker(settings, self.gateway),
            self._reserve_browser,
            self._give_back_browser,
            settings.pool_launches,
            self.metrics,
            room=self._grid.room if settings.selenium_remote_url else None,
        )  # started by create_app (a Hub built alone, as in unit tests, starts no browser)

    # ------------------------------------------------------------------------------ admission

    def admit(self, tenant_id: str | None, authorization: str | None, resuming: str | None = None) -> Ticket:
        """Check a connecting client before the upgrade: 400/401/403, then the tenant's quota
        (429), then the instance's capacity (503), as ServiceError. A client that says it comes
        to resume (``?session=<id>``) a live session of its tenant here takes no new slot: that
        session holds its own (its socket must then resume it, or it is refused)."""
        tenant = self.tenants.authenticate(tenant_id, authorization)
        key = (authorization or "").partition(" ")[2].strip() if tenant.api_keys else ""
        if self._shutting_down:
            raise Unavailable("the server is shutting down", retry_after=self.settings.retry_after)
        if resuming is not None:
            with self._lock:
                session = self._sessions.get(resuming)
            if session is not None and session.tenant == tenant.id:
                return Ticket(tenant, Claim(), key, resuming)
        ticket = Ticket(tenant, self._after_endings(lambda: self.quotas.admit_session(tenant), tenant.id), key)
        ticket.proposed = resuming
        return ticket

    def resume_session(self, ticket: Ticket, frame: protocol.ResumeFrame, outbox: Outbox) -> Session:
        """``_resume``, counted in ``inndx_session_resumes_total{outcome}`` (``adopted``: from
        another process's record)."""
        here = self.find(frame.session_id) is not None
        try:
            session = self._resume(ticket, frame, outbox)
        except ServiceError as error:
            self.metrics.resume(str(error.code))
            raise
        self.metrics.resume("resumed" if here else "adopted")
        return session

    def _resume(self, ticket: Ticket, frame: protocol.ResumeFrame, outbox: Outbox) -> Session:
        """Hand a session over to a new socket: 403 (wrong token, another tenant or key, or no
        such session: one answer, one constant-time path), 410 (it has ended, or its window
        passed), else the session, resumed on ``outbox``."""
        who = (ticket.tenant.id, ticket.key, frame.token)
        with self._lock:
            session = self._sessions.get(frame.session_id)
            gone = self._gone.get(frame.session_id)
        if ticket.resuming not in (None, frame.session_id):
            resume.check(None, *who)
            raise resume.refused()
        if session is None and gone is None and self.records is not None:
            return handover.adopt(self, ticket, frame, outbox)  # held by another process, or nobody
        if session is None:
            known = resume.check(gone, *who)
            resume.check(None, *who)  # as many comparisons as for a live session (its token and the one before)
            if not known:
                raise resume.refused()
            raise resume.gone()
        session.resume(outbox, who, frame)
        with self._lock:
            recorder = self._recorders.get(session.id)
        if recorder is not None:
            recorder.resumed()
        return session

    # ------------------------------------------------------------------------------ sessions

    def open_session(self, ticket: Ticket, open_frame: protocol.OpenFrame, outbox: Outbox,
                     adopting: tuple[str, str | int | None, resume.Credentials | None] | None = None) -> Session:
        """Build and start the session for a valid open frame. Errors are fatal at open.
        ``adopting``: (its id, the id of the last frame it handled, the token it came with) of a
        session whose record another process left (``service.handover``): its first reply is
        then the resume reply, and that token stays good until a frame is read (as in a resume)."""
        tenant = ticket.tenant.id
        if ticket.resuming is not None:
            raise BadRequest("this socket came to resume a session (?session=): its first frame is a resume frame", fatal=True)
        proxies = self.proxies.resolve(open_frame.proxies, tenant)
        chain = middleware.build(open_frame.middleware, open_frame.client, self.metrics.blocked)
        session_id = handover.session_id_for(self, ticket.proposed) if adopting is None else adopting[0]
        credentials, token = resume.Credentials.issue(tenant, ticket.key)
        hello = None if adopting is None else replies.session_resumed(session_id, token, adopting[1])
        recorder = None if self.records is None else handover.Recorder(
            self.records, session_id, tenant, ticket.key, open_frame, lambda: session.link.credentials
        )
        egress = None
        unit = None  # a warm browser from the pool: its slot and its egress listener come with it
        cold_started = once(lambda: None)  # on a Grid, a cold start's end (see ColdGridStarts)
        browser: list[Claim] = []  # the tenant's browser quota, then the instance's slot
        if open_frame.client != "standard":  # the browser's one road out, tied to this session
            browser.append(  # 429 before any 503
                self._after_endings(lambda: self.quotas.claim_tenant_browser(ticket.tenant), tenant)
            )
            # Chrome's block rules are an extension given at launch: such a session starts cold
            warm = not (open_frame.client == "chrome" and chain.blocks)
            try:
                if warm:
                    unit = self.pool.take(open_frame.client, wait=self.settings.new_session_timeout)
                if unit is not None:
                    browser.append(self._pool_slot())
                    egress = unit.listener
                    egress.bind(session_id, proxies[0] if proxies else None)
                else:
                    browser.append(self._take_browser())  # a slot for a cold start, or 503
                    if self.settings.selenium_remote_url:
                        cold_started = self._grid.start(open_frame.client)
                    egress = self.gateway.open(session_id, open_frame.client, proxies[0] if proxies else None)
            except BaseException:
                cold_started()
                if unit is not None:
                    unit.end()
                for claim in browser:
                    claim.release()
                raise
        options = ClientOptions(
            timeout=open_frame.timeout,
            max_redirects=open_frame.max_redirects,
            policy=self.settings.policy,
            proxies=proxies,
            viewport=open_frame.viewport,
            middleware=chain,
            egress=egress,
            on_fresh_tab=self.metrics.fresh_tab,
            on_fresh_browser=self.metrics.fresh_browser,
            storage_state=open_frame.storage_state,
        )
        session = Session(
            session_id,
            tenant,
            open_frame,
            options,
            (lambda: make_client(open_frame.client, options, self.settings, unit.launched))
            if unit is not None
            else (lambda: make_client(open_frame.client, options, self.settings)),
            outbox,
            max_pending=self.settings.max_pending,
            max_pending_bytes=self.settings.max_pending_bytes,
            start_timeout=self.settings.new_session_timeout + 5,
            idle_timeout=self.settings.idle_timeout,
            max_lifetime=self.settings.max_lifetime,
            on_action=self.metrics.action,
            on_end=lambda: (cold_started(), self._session_ended(session, ticket)),
            on_started=cold_started,
            resume_window=self.settings.resume_window,
            credentials=credentials,
            resume_token=token,
            hello=hello,
            on_record=recorder,
        )
        if adopting is not None:
            session.link.last_received = session.last_done = adopting[1]
            session.link.previous = adopting[2]
        try:
            with self._lock:  # one check and one registration: shutdown sees it, or it never starts
                if self._shutting_down:
                    raise Unavailable("the server is shutting down", close_code=1001)
                self._sessions[session_id] = session
                if recorder is not None:
                    self._recorders[session_id] = recorder
                if egress is not None:
                    self._egress[session_id] = egress
        except BaseException:
            cold_started()
            if unit is not None:
                unit.end()
            elif egress is not None:
                egress.close()
            for claim in browser:
                claim.release()
            raise
        for claim in browser:  # freed with the ticket, when the session has ended
            ticket.add(claim)
        self.metrics.session_opened(open_frame.client)
        session.thread.start()
        return session

    def _take_browser(self) -> Claim:
        """An instance browser slot for a cold start (503 when there is none). Sessions come
        before the pool: an idle pooled browser (of another kind: one of this kind was taken
        first) is ended to free its slot, or a pool launch in flight that holds the last one is
        waited for (bounded by the new-session timeout) and then ended."""
        end = time.monotonic() + self.settings.new_session_timeout
        while (slot := self.quotas.reserve_browser_slot()) is None:
            if self.pool.evict():
                continue
            if self.pool.launching() and time.monotonic() < end and not self._shutting_down:
                self.pool.wait_launches(end - time.monotonic())
                continue
            if self._wait_for_an_ending(min(end, time.monotonic() + ENDING_WAIT)):
                continue
            raise self.quotas.browsers_full()
        return slot

    def _after_endings(self, claim, tenant: str) -> Claim:
        """``claim()``; refused while a session that may hold what it lacks is ending (one of
        ``tenant``'s for a 429, any for a 503), again once that one has ended (for at most
        ENDING_WAIT)."""
        end = time.monotonic() + ENDING_WAIT
        while True:
            try:
                return claim()
            except (TooManyRequests, Unavailable) as refused:
                whose = tenant if isinstance(refused, TooManyRequests) else None
                if not self._wait_for_an_ending(end, whose):
                    raise refused from None

    def _wait_for_an_ending(self, end: float, tenant: str | None = None) -> bool:
        """Wait until one of the sessions (of ``tenant``, or any) that is ending has ended, or
        ``end`` (monotonic). When none is ending yet, one may be about to: its client dropped the
        socket just before reconnecting, and the server has not read that yet; so first, for up
        to DROP_GRACE, wait for one to start ending. False when none ends in time, or at shutdown."""
        with self._ended:
            ids = {s.id for s in self._sessions.values() if tenant in (None, s.tenant)}

            def ended() -> bool:
                return self._shutting_down or any(i not in self._sessions for i in ids)

            def ending() -> bool:
                return any(self._sessions[i].ending for i in ids if i in self._sessions)

            grace = min(end, time.monotonic() + DROP_GRACE)
            while ids and not ended() and not ending() and time.monotonic() < grace:
                self._ended.wait(min(ENDING_POLL, max(0.0, grace - time.monotonic())))
            if not ids or self._shutting_down or not (ended() or ending()):
                return False
            return self._ended.wait_for(ended, max(0.0, end - time.monotonic())) and not self._shutting_down

    # The pool's slot accounting: a launch reserves an instance slot (no tenant yet); a unit
    # ended in the pool gives one back; a unit handed out takes one along to its session.

    def _reserve_browser(self) -> bool:
        slot = self.quotas.reserve_browser_slot()
        if slot is None:
            return False
        with self._lock:
            self._pool_slots.append(slot)
        return True

    def _give_back_browser(self) -> None:
        self._pool_slot().release()

    def _pool_slot(self) -> Claim:
        with self._lock:
            return self._pool_slots.pop()

    def _session_ended(self, session: Session, ticket: Ticket) -> None:
        """The session's ``on_end``, called once by its own thread after its client closed:
        its browser slot, its egress listener and its tenant's ticket are freed here and nowhere
        else."""
        with self._lock:
            egress = self._egress.pop(session.id, None)
            recorder = self._recorders.pop(session.id, None)
        if egress is not None:
            egress.close()
        if recorder is not None:
            recorder.ended()  # unless it was handed over (then another process may hold it)
        ticket.release()
        with self._ended:  # its claims are free: a claim waiting for an ending may go on
            self._sessions.pop(session.id, None)
            self._gone[session.id] = session.link.credentials  # a resume of it: 410
            while len(self._gone) > GONE_KEPT:
                self._gone.popitem(last=False)
            self._ended.notify_all()
        self.metrics.session_closed(session.kind)

    def find(self, session_id: str) -> Session | None:
        """The live session of that id in this worker (the live view's lookup), or None."""
        with self._lock:
            return self._sessions.get(session_id)

    def parked_sessions(self) -> int:
        with self._lock:
            return sum(1 for session in self._sessions.values() if session.link.parked)

    def active_sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def status(self) -> dict:
        """What the master's readiness probe reads (``service.health.StatusWriter``)."""
        capacity = {name: [self.quotas.in_use(name), limit] for name, limit in self.quotas.limits.items()}
        return {"active_sessions": self.active_sessions(), "shutting_down": self._shutting_down, "capacity": capacity}

    # ------------------------------------------------------------------------------ shutdown

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop admitting, end every session with fatal 503 and close 1001 (or hand it over:
        ``service.handover``), and wait for their threads (and so their browsers) to end;
        idempotent. Sessions still busy at the deadline get their client closed from here."""
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        with self._lock:
            first = not self._shutting_down
            self._shutting_down = True
            sessions = list(self._sessions.values())
            self._ended.notify_all()  # a claim waiting for an ending gives up now
        handover.shutdown(self, sessions, first, timeout)
