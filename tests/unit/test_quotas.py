"""service/quotas.py in memory: the tenant layer before the instance layer, claims released once."""

from __future__ import annotations

import json

import pytest

from service.config import Settings, SettingsError
from service.errors import TooManyRequests, Unavailable
from service.metrics import Metrics
from service.quotas import Quotas
from service.tenants import Tenant, Tenants


def quotas(**settings) -> Quotas:
    return Quotas(Settings(**settings), Metrics())


def refusals(q: Quotas, resource: str, code: int) -> float:
    return q.metrics.admission_refusals.labels(resource, str(code))._value.get()


def test_the_tenant_over_its_quota_hears_429_before_the_full_instance_503():
    q = quotas(max_sessions=2)
    solo = Tenant("solo", max_sessions=1)
    held = [q.admit_session(solo), q.admit_session(Tenant("other", max_sessions=5))]
    with pytest.raises(TooManyRequests) as over:
        q.admit_session(solo)
    assert over.value.retry_after == 5
    with pytest.raises(Unavailable) as full:
        q.admit_session(Tenant("third", max_sessions=5))
    assert full.value.retry_after == 5 and "2 sessions" in full.value.message
    assert q.store.count("sessions", "third") == 0  # the instance's refusal gave the tenant's claim back
    assert (refusals(q, "quota_sessions", 429), refusals(q, "sessions", 503)) == (1, 1)
    held[0].release()
    held[0].release()  # idempotent: frees one slot, once
    assert q.in_use("sessions") == 1 and q.store.count("sessions", "solo") == 0
    q.admit_session(solo)


def test_browsers_are_local_or_grid_and_the_tenant_max_browsers_holds_for_both():
    tenant = Tenant("t", max_sessions=9, max_browsers=1)
    local = quotas(max_browsers=3)
    claim = local.admit_browser(tenant)
    assert (local.in_use("local_browsers"), local.in_use("grid_sessions")) == (1, 0)
    with pytest.raises(TooManyRequests):
        local.admit_browser(tenant)
    claim.release()
    grid = quotas(max_browsers=1, max_grid_sessions=2, selenium_remote_url="http://127.0.0.1:4444")
    free = Tenant("free", max_sessions=9)  # no max_browsers: only the instance bounds it
    claims = [grid.admit_browser(free), grid.admit_browser(free)]
    assert (grid.in_use("grid_sessions"), grid.in_use("local_browsers")) == (2, 0)
    with pytest.raises(Unavailable, match="2 Grid sessions"):
        grid.admit_browser(free)
    for claim in claims:
        claim.release()
    assert grid.in_use("grid_sessions") == 0


def test_tenants_file_max_browsers(tmp_path):
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps({"tenants": {"a": {"max_browsers": 2}, "b": {}}}))
    tenants = Tenants.load(str(path), 20)
    assert tenants.authenticate("a", None).max_browsers == 2
    assert tenants.authenticate("b", None).max_browsers is None
    for bad in (-1, "2", True, 1.5):
        path.write_text(json.dumps({"tenants": {"a": {"max_browsers": bad}}}))
        with pytest.raises(ValueError, match="max_browsers"):
            Tenants.load(str(path), 20)


def test_capacity_settings():
    settings = Settings.from_env({"INNDX_MAX_SESSIONS": "1000", "INNDX_WORKERS": "3", "INNDX_QUOTA_TTL": "10s"})
    assert settings.worker_max_sessions == 334 and settings.quota_ttl == 10.0
    assert Settings().max_sessions == 1000 and Settings().redis_url is None
    for env in ({"INNDX_MAX_SESSIONS": "0"}, {"INNDX_QUOTA_TTL": "1s"}, {"INNDX_MAX_GRID_SESSIONS": "0"}):
        with pytest.raises(SettingsError):
            Settings.from_env(env)


def test_a_slot_reserved_without_a_tenant_then_claimed_by_one():
    q = quotas(max_browsers=1)
    slot = q.reserve_browser_slot()
    assert slot is not None and q.reserve_browser_slot() is None and q.in_use("local_browsers") == 1
    tenant = Tenant("t", max_sessions=9, max_browsers=1)
    share = q.claim_tenant_browser(tenant)
    with pytest.raises(TooManyRequests):
        q.claim_tenant_browser(tenant)
    share.release()
    slot.release()
    assert q.in_use("local_browsers") == 0 and q.store.count("browsers", "t") == 0
