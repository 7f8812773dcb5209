"""Who may open sessions: the operator's tenants file, checked before the WebSocket upgrade.

The file (``INNDX_TENANTS_FILE``) is JSON::

    {"tenants": {"acme": {"api_keys": ["s3cret"], "max_sessions": 5, "max_browsers": 2}}}

``max_browsers`` (browser sessions at once, local or on the Grid) is unbounded for the tenant
when absent: only the instance's capacity holds it then.

Without a file (development) any well-formed tenant id is accepted with the default quota.
A tenant with ``api_keys`` must send ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from service import secret_files
from service.errors import BadRequest, Forbidden, Unauthenticated

TENANT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class Tenant:
    id: str
    max_sessions: int
    api_keys: tuple[str, ...] = ()
    max_browsers: int | None = None


def _optional_count(value: object, tenant_id: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"tenants file: {tenant_id!r}: max_browsers must be a whole number >= 0")
    return value


class Tenants:
    def __init__(self, tenants: dict[str, Tenant] | None, default_max_sessions: int):
        self._tenants = tenants  # None: no file, everyone is welcome
        self._default_max_sessions = default_max_sessions

    @classmethod
    def load(cls, path: str | None, default_max_sessions: int) -> Tenants:
        if not path:
            return cls(None, default_max_sessions)
        document = secret_files.read_json(path, "tenants")
        tenants = {}
        for tenant_id, entry in document.get("tenants", {}).items():
            if not TENANT_ID.fullmatch(tenant_id):
                raise ValueError(f"tenants file: {tenant_id!r} is not a valid tenant id")
            tenants[tenant_id] = Tenant(
                id=tenant_id,
                max_sessions=int(entry.get("max_sessions", default_max_sessions)),
                api_keys=tuple(entry.get("api_keys", ())),
                max_browsers=_optional_count(entry.get("max_browsers"), tenant_id),
            )
        return cls(tenants, default_max_sessions)

    def authenticate(self, tenant_id: str | None, authorization: str | None) -> Tenant:
        """The tenant for these request headers, or the error that refuses the upgrade."""
        if tenant_id is None:
            raise BadRequest("the X-Tenant-Id header is required")
        if not TENANT_ID.fullmatch(tenant_id):
            raise BadRequest("X-Tenant-Id must be 1-64 characters of A-Z a-z 0-9 . _ -")
        if self._tenants is None:
            return Tenant(tenant_id, self._default_max_sessions)
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            raise Forbidden(f"unknown tenant {tenant_id!r}")
        if tenant.api_keys:
            scheme, _, key = (authorization or "").partition(" ")
            if scheme.lower() != "bearer" or not any(
                hmac.compare_digest(key.strip().encode(), known.encode()) for known in tenant.api_keys
            ):
                raise Unauthenticated("this tenant needs 'Authorization: Bearer <api key>' with a valid key")
        return tenant
