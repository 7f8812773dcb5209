"""Who may hold what, asked by the hub before it admits anything; the hub never counts itself.

Two layers, always checked in this order, so that one tenant's excess is its own answer:

1. **The tenant's quota** (``max_sessions``, ``max_browsers`` from the tenants file): 429.
   In memory (one process) by default; with ``INNDX_REDIS_URL`` shared by every worker of
   every instance, so that a quota is not multiplied by the number of processes.
2. **The instance's capacity**: live sessions (``INNDX_MAX_SESSIONS``, this worker's share),
   local browsers (``INNDX_MAX_BROWSERS``) or Grid sessions (``INNDX_MAX_GRID_SESSIONS``): 503
   with ``Retry-After``. Always in memory: it is this process's threads and browsers.

Redis layout: one sorted set per tenant and resource, ``inndx:quota:<resource>:<tenant>``,
whose members are claims (``<instance uuid>:<n>``) scored by their expiry in milliseconds of
the Redis server's clock. A Lua script drops expired members, counts and adds in one atomic
step. A heartbeat thread renews this process's claims every third of ``INNDX_QUOTA_TTL``; a
process that dies (SIGKILL, out of memory, a lost machine) stops renewing, and its claims are
gone at most ``INNDX_QUOTA_TTL`` (default 15 s) after its last renewal. Without Redis reachable
a tenant-quota claim fails closed: 503.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Callable

from service.config import Settings
from service.errors import TooManyRequests, Unavailable
from service.metrics import Metrics
from service.tenants import Tenant

logger = logging.getLogger(__name__)

INSTANCE_RESOURCES = ("sessions", "local_browsers", "grid_sessions")


class Claim:
    """One unit of a quota held; ``release`` is idempotent and thread-safe."""

    def __init__(self, release: Callable[[], None] | None = None):
        self._release = release
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            release, self._release = self._release, None
        if release is not None:
            release()


class MemoryStore:
    """Tenant counts in this process's memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}

    def claim(self, resource: str, tenant_id: str, limit: int) -> Claim | None:
        key = (resource, tenant_id)
        with self._lock:
            count = self._counts.get(key, 0)
            if count >= limit:
                return None
            self._counts[key] = count + 1
        return Claim(lambda: self._drop(key))

    def _drop(self, key: tuple[str, str]) -> None:
        with self._lock:
            left = self._counts[key] - 1
            if left:
                self._counts[key] = left
            else:
                del self._counts[key]

    def count(self, resource: str, tenant_id: str) -> int:
        with self._lock:
            return self._counts.get((resource, tenant_id), 0)

    def close(self) -> None:
        pass


# KEYS[1] the set; ARGV: limit, ttl in ms, member. 1 when claimed, 0 when the tenant is full.
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""
# KEYS[1] the set; ARGV: ttl in ms, members. Renews those still there (never revives one).
_RENEW = """
local t = redis.call('TIME')
local until_ = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', until_, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
"""
_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""


class RedisStore:
    """Tenant counts in Redis, shared by every process that points at the same server."""

    def __init__(self, url: str, ttl: float):
        import redis  # only when configured: `make run` needs no Redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._error = redis.RedisError
        self._claim_script = self._redis.register_script(_CLAIM)
        self._renew_script = self._redis.register_script(_RENEW)
        self._count_script = self._redis.register_script(_COUNT)
        self._ttl_ms = int(ttl * 1000)
        self._instance = uuid.uuid4().hex
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._held: dict[str, set[str]] = {}  # key -> members this process holds
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._renew_loop, args=(ttl / 3,), name="quota-heartbeat", daemon=True)
        self._heartbeat.start()

    @staticmethod
    def _key(resource: str, tenant_id: str) -> str:
        return f"inndx:quota:{resource}:{tenant_id}"

    def claim(self, resource: str, tenant_id: str, limit: int) -> Claim | None:
        key, member = self._key(resource, tenant_id), f"{self._instance}:{next(self._numbers)}"
        with self._lock:  # held before it exists in Redis, so the heartbeat never misses it
            self._held.setdefault(key, set()).add(member)
        try:
            claimed = self._claim_script(keys=[key], args=[limit, self._ttl_ms, member])
        except self._error as exc:
            self._forget(key, member)
            logger.warning("quota store unreachable: %s", type(exc).__name__)
            raise Unavailable("the quota store is unreachable; try again shortly", retry_after=5) from exc
        if not claimed:
            self._forget(key, member)
            return None
        return Claim(lambda: self._drop(key, member))

    def _forget(self, key: str, member: str) -> None:
        with self._lock:
            members = self._held.get(key)
            if members is not None:
                members.discard(member)
                if not members:
                    del self._held[key]

    def _drop(self, key: str, member: str) -> None:
        self._forget(key, member)
        try:
            self._redis.zrem(key, member)
        except self._error as exc:  # it expires on its own within the TTL
            logger.warning("could not release a quota claim: %s", type(exc).__name__)

    def count(self, resource: str, tenant_id: str) -> int:
        return int(self._count_script(keys=[self._key(resource, tenant_id)]))

    def _renew_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            with self._lock:
                held = {key: sorted(members) for key, members in self._held.items()}
            try:
                for key, members in held.items():
                    self._renew_script(keys=[key], args=[self._ttl_ms, *members])
            except self._error as exc:
                logger.warning("could not renew quota claims: %s", type(exc).__name__)

    def close(self) -> None:
        self._stop.set()
        self._heartbeat.join(5)
        self._redis.close()


class Quotas:
    """The tenant layer (a store) and the instance layer (counts here), checked in that order."""

    def __init__(self, settings: Settings, metrics: Metrics, store: MemoryStore | RedisStore | None = None):
        self.settings = settings
        self.metrics = metrics
        self.store = store or (
            RedisStore(settings.redis_url, settings.quota_ttl) if settings.redis_url else MemoryStore()
        )
        self._lock = threading.Lock()
        self._used = dict.fromkeys(INSTANCE_RESOURCES, 0)
        self.limits = {
            "sessions": settings.worker_max_sessions,
            "local_browsers": settings.max_browsers,
            "grid_sessions": settings.max_grid_sessions,
        }
        for resource in INSTANCE_RESOURCES:
            metrics.capacity(resource, self.limits[resource], lambda resource=resource: self.in_use(resource))

    def in_use(self, resource: str) -> int:
        with self._lock:
            return self._used[resource]

    def admit_session(self, tenant: Tenant) -> Claim:
        """A session slot for ``tenant``: 429 over its quota, then 503 with the instance full."""
        tenant_claim = self._tenant("sessions", tenant, tenant.max_sessions)
        return self._instance("sessions", tenant_claim, "this instance carries its maximum of {} sessions")

    def admit_browser(self, tenant: Tenant) -> Claim:
        """A browser for ``tenant``'s session: local, or on the Grid when one is configured; 429
        over the tenant's ``max_browsers``, then 503 with every slot taken."""
        tenant_claim = self.claim_tenant_browser(tenant)
        slot = self.reserve_browser_slot()
        if slot is None:
            tenant_claim.release()
            raise self.browsers_full()
        return Claim(lambda: (slot.release(), tenant_claim.release()))

    # The two halves of ``admit_browser``, for a browser whose slot is taken before its tenant is
    # known (the warm pool): the slot first, without a tenant; the tenant's claim when one takes it.

    def reserve_browser_slot(self) -> Claim | None:
        """An instance browser slot (local or Grid) with no tenant, or None when all are taken."""
        resource = self._browser_resource()
        with self._lock:
            if self._used[resource] >= self.limits[resource]:
                return None
            self._used[resource] += 1

        def release() -> None:
            with self._lock:
                self._used[resource] -= 1

        return Claim(release)

    def claim_tenant_browser(self, tenant: Tenant) -> Claim:
        """The tenant's share of a browser whose slot is already held: 429 over ``max_browsers``."""
        return self._tenant("browsers", tenant, tenant.max_browsers)

    def browsers_full(self) -> Unavailable:
        """The 503 for a browser slot not found (counted in the metrics), for the caller to raise."""
        resource = self._browser_resource()
        self.metrics.refused(resource, 503)
        what = "Grid sessions" if resource == "grid_sessions" else "browsers"
        return Unavailable(
            f"no browser capacity: all {self.limits[resource]} {what} are in use", retry_after=self.settings.retry_after
        )

    def _browser_resource(self) -> str:
        return "grid_sessions" if self.settings.selenium_remote_url else "local_browsers"

    def _tenant(self, resource: str, tenant: Tenant, limit: int | None) -> Claim:
        if limit is None:
            return Claim()
        claim = self.store.claim(resource, tenant.id, limit)
        if claim is None:
            self.metrics.refused(f"quota_{resource}", 429)
            raise TooManyRequests(
                f"tenant {tenant.id!r} already has {limit} {resource}, its maximum",
                retry_after=self.settings.retry_after,
            )
        return claim

    def _instance(self, resource: str, tenant_claim: Claim, message: str) -> Claim:
        limit = self.limits[resource]
        with self._lock:
            taken = self._used[resource] < limit
            if taken:
                self._used[resource] += 1
        if not taken:
            tenant_claim.release()
            self.metrics.refused(resource, 503)
            raise Unavailable(message.format(limit), retry_after=self.settings.retry_after)

        def release() -> None:
            with self._lock:
                self._used[resource] -= 1
            tenant_claim.release()

        return Claim(release)

    def close(self) -> None:
        self.store.close()

