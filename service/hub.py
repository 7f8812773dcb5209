"""What one service instance shares: settings, validators, tenants, proxies, metrics, and the
live sessions with their quotas. Everything here is thread-safe; nothing here knows Flask.

Capacity is asked of ``service.quotas`` (the tenant's quota, then the instance's): a session
slot is held from the upgrade until the session's thread has ended (its browser quit), a
browser slot from the open frame until then too. Both are claims on the session's ``Ticket``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from service import protocol
from service.clients import make_client
from service.clients.base import ClientOptions
from service.config import Settings
from service.egress import Gateway, Listener
from service.errors import BadRequest, Unavailable
from service.metrics import Metrics
from service.proxies import Proxies
from service.quotas import Claim, Quotas
from service.session import Outbox, Session
from service.tenants import Tenant, Tenants

logger = logging.getLogger(__name__)


class Ticket:
    """One tenant's claims (a session slot, taken before the upgrade, and a browser once it has
    one); ``release`` frees them all and is idempotent."""

    def __init__(self, tenant: Tenant, claim: Claim):
        self.tenant = tenant
        self._claims = [claim]

    def add(self, claim: Claim) -> None:
        self._claims.append(claim)

    def release(self) -> None:
        for claim in self._claims:
            claim.release()


class Hub:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.protocol = protocol.Protocol(default_timeout=settings.default_timeout, max_timeout=settings.max_timeout)
        self.tenants = Tenants.load(settings.tenants_file, settings.default_max_sessions)
        self.proxies = Proxies.load(settings.proxies_file)
        self.metrics = Metrics()
        self.gateway = Gateway(
            settings.policy, self.metrics, bind_host=settings.egress_host, advertise_host=settings.egress_address
        )
        self._egress: dict[str, Listener] = {}  # browser sessions' listeners, by session id
        self.quotas = Quotas(settings, self.metrics)
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._shutting_down = False

    # ------------------------------------------------------------------------------ admission

    def admit(self, tenant_id: str | None, authorization: str | None) -> Ticket:
        """Check a connecting client before the upgrade: 400/401/403, then the tenant's quota
        (429), then the instance's capacity (503), as ServiceError."""
        tenant = self.tenants.authenticate(tenant_id, authorization)
        if self._shutting_down:
            raise Unavailable("the server is shutting down", retry_after=self.settings.retry_after)
        return Ticket(tenant, self.quotas.admit_session(tenant))

    # ------------------------------------------------------------------------------ sessions

    def open_session(self, ticket: Ticket, open_frame: protocol.OpenFrame, outbox: Outbox) -> Session:
        """Build and start the session for a valid open frame. Errors are fatal at open."""
        tenant = ticket.tenant.id
        proxies = self.proxies.resolve(open_frame.proxies, tenant)
        default_headers = []
        for middleware in open_frame.middleware:
            if middleware["type"] == "headers":
                default_headers.extend((name, value) for name, value in middleware["headers"])
            else:  # unreachable while the schema lists the types
                raise BadRequest(f"unknown middleware type {middleware['type']!r}", fatal=True)
        session_id = str(uuid.uuid4())
        egress = None
        if open_frame.client != "standard":  # the browser's one road out, tied to this session
            egress = self.gateway.open(session_id, open_frame.client, proxies[0] if proxies else None)
        options = ClientOptions(
            timeout=open_frame.timeout,
            max_redirects=open_frame.max_redirects,
            policy=self.settings.policy,
            proxies=proxies,
            viewport=open_frame.viewport,
            default_headers=tuple(default_headers),
            egress=egress,
        )
        session = Session(
            session_id,
            tenant,
            open_frame,
            options,
            lambda: make_client(open_frame.client, options, self.settings),
            outbox,
            max_pending=self.settings.max_pending,
            start_timeout=self.settings.new_session_timeout + 5,
            idle_timeout=self.settings.idle_timeout,
            max_lifetime=self.settings.max_lifetime,
            on_action=self.metrics.action,
            on_end=lambda: self._session_ended(session, ticket),
        )
        browser: Claim | None = None
        try:
            if session.kind != "standard":
                browser = self.quotas.admit_browser(ticket.tenant)
            with self._lock:  # one check and one registration: shutdown sees it, or it never starts
                if self._shutting_down:
                    raise Unavailable("the server is shutting down", close_code=1001)
                self._sessions[session_id] = session
                if egress is not None:
                    self._egress[session_id] = egress
        except BaseException:
            if browser is not None:
                browser.release()
            if egress is not None:
                egress.close()
            raise
        if browser is not None:  # freed with the ticket, when the session has ended
            ticket.add(browser)
        self.metrics.session_opened(open_frame.client)
        session.thread.start()
        return session

    def _session_ended(self, session: Session, ticket: Ticket) -> None:
        """The session's ``on_end``, called once by its own thread after its client closed:
        its browser slot, its egress listener and its tenant's ticket are freed here and nowhere
        else."""
        with self._lock:
            self._sessions.pop(session.id, None)
            egress = self._egress.pop(session.id, None)
        if egress is not None:
            egress.close()
        ticket.release()
        self.metrics.session_closed(session.kind)

    def active_sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    # ------------------------------------------------------------------------------ shutdown

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop admitting, end every session with fatal 503 and close 1001, and wait for their
        threads (and so their browsers) to end; idempotent. Sessions still busy at the deadline
        get their client closed from here (which kills its processes)."""
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        with self._lock:
            first = not self._shutting_down
            self._shutting_down = True
            sessions = list(self._sessions.values())
        if first:
            logger.info("shutting down: %d sessions to end", len(sessions))
        for session in sessions:
            session.fail(Unavailable("the server is shutting down", close_code=1001))
        end = time.monotonic() + timeout
        for session in sessions:
            session.thread.join(max(0.0, end - time.monotonic()))
        for session in sessions:
            if session.thread.is_alive():
                logger.warning("session %s still busy at shutdown: closing its client", session.id)
                session.force_close_client()
                session.thread.join(2.0)
        self.gateway.stop()
        self.quotas.close()
