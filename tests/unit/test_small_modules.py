"""Durations, settings, network policy, user agents, retries, tenants and proxies."""

import json

import pytest

from service import user_agents
from service.config import Settings, SettingsError, parse_duration
from service.errors import BadRequest, Forbidden, GatewayTimeout, NotFound, Unauthenticated, UpstreamError
from service.headers import media_type
from service.proxies import Proxies
from service.retries import with_retries
from service.tenants import Tenants


@pytest.mark.parametrize("text, seconds", [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1m30s", 90), ("1h", 3600)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "soon", "1x"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_settings_from_env():
    settings = Settings.from_env({"PORT": "9000", "INNDX_ALLOW_PRIVATE_NETWORKS": "1", "INNDX_MAX_TIMEOUT": "10m",
                                  "INNDX_SELENIUM_REMOTE_URL": "http://127.0.0.1:4444"})
    assert settings.port == 9000 and settings.allow_private_networks and settings.max_timeout == 600
    assert settings.selenium_remote_url == "http://127.0.0.1:4444"
    assert Settings.from_env({}).port == 8022
    with pytest.raises(SettingsError, match="INNDX_MAX_PENDING"):
        Settings.from_env({"INNDX_MAX_PENDING": "many"})
    with pytest.raises(SettingsError):
        Settings.from_env({"INNDX_DEFAULT_TIMEOUT": "10m"})


def test_user_agents():
    assert "inndx/" in user_agents.resolve("inndx")
    assert "Chrome/" in user_agents.resolve("chrome")
    assert "Firefox/" in user_agents.resolve("firefox")
    safari = user_agents.resolve("safari")
    assert "Safari/" in safari and "Chrome" not in safari
    assert user_agents.resolve("my-bot/1.0") == "my-bot/1.0"
    seen = {user_agents.resolve("random") for _ in range(40)}
    assert any("Firefox/" in ua for ua in seen) and any("Chrome/" in ua for ua in seen)


def test_media_type():
    assert media_type([("content-type", "Text/HTML; charset=utf-8")]) == "text/html"
    assert media_type([("X", "y")]) is None
    assert media_type([("Content-Type", "")]) is None


def test_retries_retry_only_transport_failures(monkeypatch):
    monkeypatch.setattr("service.retries.BACKOFF_FIRST", 0.001)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise UpstreamError("reset")
        return "ok"

    assert with_retries(flaky, 3) == "ok" and len(calls) == 3
    calls.clear()
    with pytest.raises(GatewayTimeout) as timed_out:
        with_retries(lambda: (calls.append(1), (_ for _ in ()).throw(GatewayTimeout("slow")))[1], 1)
    assert len(calls) == 2 and timed_out.value.message == "slow (after 2 attempts)"
    calls.clear()
    with pytest.raises(NotFound):
        with_retries(lambda: (calls.append(1), (_ for _ in ()).throw(NotFound("no")))[1], 3)
    assert len(calls) == 1


def test_tenants(tmp_path):
    assert Tenants.load(None, 5).authenticate("acme", None).max_sessions == 5
    for bad in (None, "", "a b", "x" * 65):
        with pytest.raises(BadRequest):
            Tenants.load(None, 5).authenticate(bad, None)
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps({"tenants": {"acme": {"api_keys": ["k1"], "max_sessions": 2}, "open": {}}}))
    tenants = Tenants.load(str(path), 5)
    assert tenants.authenticate("acme", "Bearer k1").max_sessions == 2
    assert tenants.authenticate("open", None).max_sessions == 5
    with pytest.raises(Forbidden):
        tenants.authenticate("other", None)
    for header in (None, "Bearer k2", "Basic k1"):
        with pytest.raises(Unauthenticated):
            tenants.authenticate("acme", header)


def test_proxies(tmp_path):
    path = tmp_path / "proxies.json"
    path.write_text(json.dumps({"proxies": {"p1": {"url": "http://127.0.0.1:3128"},
                                            "p2": {"url": "http://127.0.0.1:3129", "tenants": ["acme"]}}}))
    proxies = Proxies.load(str(path))
    assert [p.id for p in proxies.resolve(["p2", "p1"], "acme")] == ["p2", "p1"]
    with pytest.raises(Forbidden) as refused:
        proxies.resolve(["p2"], "other")
    assert refused.value.fatal
    with pytest.raises(BadRequest) as unknown:
        proxies.resolve(["p3"], "acme")
    assert unknown.value.fatal
