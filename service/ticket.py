"""What a connecting client holds: its tenant's claims (``service.quotas``), from before the
upgrade until its session has ended (``service.hub``)."""

from __future__ import annotations

from service.quotas import Claim
from service.tenants import Tenant


class Ticket:
    """One tenant's claims (a session slot, taken before the upgrade, and a browser once it has
    one); ``release`` frees them all and is idempotent. ``key`` is the API key the client gave
    (its tenant has keys) or "": a session is resumed only with the same tenant and key."""

    def __init__(self, tenant: Tenant, claim: Claim, key: str = "", resuming: str | None = None):
        self.tenant = tenant
        self.key = key
        self.resuming = resuming  # the session this socket came to resume, holding no claim of its own
        self.proposed: str | None = None  # the ?session= of a socket that holds no such session: an open's id
        self._claims = [claim]

    def add(self, claim: Claim) -> None:
        self._claims.append(claim)

    def release(self) -> None:
        for claim in self._claims:
            claim.release()

    def hand_over(self) -> Ticket:
        """A ticket with this one's claims (this one is left with none): an adopted session's."""
        taken = Ticket(self.tenant, Claim(), self.key)
        for claim in self._claims:
            taken.add(claim)
        self._claims = []
        return taken
