"""Settings: one frozen object, read once from the environment.

This is the only module that reads ``os.environ``. Tests build ``Settings(...)`` directly or
call ``Settings.from_env(environ)`` with a dict of their own. Durations are Go-style strings
(``500ms``, ``30s``, ``1m30s``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import durationpy

from service.policy import Policy, parse_rules


class SettingsError(ValueError):
    """A setting has a value the service cannot use."""


def parse_duration(text: str) -> float:
    """A Go-style duration string in seconds; ``ValueError`` when it is not one."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a duration is a string such as '500ms', '30s' or '1m30s'")
    try:
        return durationpy.from_str(text.strip()).total_seconds()
    except Exception as exc:  # durationpy raises plain Exception on bad input
        raise ValueError(f"{text!r} is not a duration such as '500ms', '30s' or '1m30s'") from exc


SHARED_GECKODRIVER = "/usr/local/lib/inndx/geckodriver"  # scripts/setup's copy as root: the browser user reaches it


def _default_geckodriver() -> str:
    if os.access(SHARED_GECKODRIVER, os.X_OK):
        return SHARED_GECKODRIVER
    beside_python = Path(sys.executable).parent / "geckodriver"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("geckodriver") or str(beside_python)


@dataclass(frozen=True)
class Settings:
    """Every knob of the service, with its environment variable in the comment."""

    host: str = "127.0.0.1"  # INNDX_HOST
    port: int = 8022  # PORT
    allow_private_networks: bool = False  # INNDX_ALLOW_PRIVATE_NETWORKS=1
    tenants_file: str | None = None  # INNDX_TENANTS_FILE
    proxies_file: str | None = None  # INNDX_PROXIES_FILE
    default_timeout: float = 30.0  # INNDX_DEFAULT_TIMEOUT
    max_timeout: float = 300.0  # INNDX_MAX_TIMEOUT
    open_timeout: float = 10.0  # INNDX_OPEN_TIMEOUT: the open frame must come within this
    idle_timeout: float = 900.0  # INNDX_IDLE_TIMEOUT: no frame for this long -> fatal 410
    max_lifetime: float = 4 * 3600.0  # INNDX_MAX_LIFETIME: session age limit -> fatal 410
    max_pending: int = 16  # INNDX_MAX_PENDING: queued actions per session; beyond -> 429
    max_pending_bytes: int = 32 * 1024 * 1024  # INNDX_MAX_PENDING_BYTES: their frames' bytes; beyond -> 429
    max_frame_bytes: int = 16 * 1024 * 1024  # INNDX_MAX_FRAME_BYTES: incoming frame limit -> 413
    max_body_bytes: int = 64 * 1024 * 1024  # INNDX_MAX_BODY_BYTES: goto body limit -> 413
    max_download_bytes: int = 64 * 1024 * 1024  # INNDX_MAX_DOWNLOAD_BYTES: a browser session's downloads on disk
    har_body_bytes: int = 0  # INNDX_HAR_BODY_BYTES: bytes of each body the har action gives (0: none)
    max_upload_bytes: int = 16 * 1024 * 1024  # INNDX_MAX_UPLOAD_BYTES: one upload action's files, all together -> 413
    downloads_tmpfs: bool = True  # INNDX_DOWNLOADS_TMPFS=0: no tmpfs under the bound (as root), the watcher alone
    grid_downloads: bool = True  # INNDX_GRID_DOWNLOADS=0: a Grid browser's downloads denied (no managed downloads)
    max_reply_bytes: int = 32 * 1024 * 1024  # INNDX_MAX_REPLY_BYTES: evaluate result, content, screenshot -> 413
    default_max_sessions: int = 20  # INNDX_DEFAULT_MAX_SESSIONS: per tenant, unless tenants file says
    max_sessions: int = 1000  # INNDX_MAX_SESSIONS: live sessions per instance (sets gunicorn's threads)
    workers: int = 1  # INNDX_WORKERS: gunicorn workers; each carries its share of max_sessions
    max_browsers: int = 4  # INNDX_MAX_BROWSERS: local browsers per instance; beyond -> fatal 503
    max_grid_sessions: int = 16  # INNDX_MAX_GRID_SESSIONS: Grid sessions per instance; beyond -> fatal 503
    redis_url: str | None = None  # INNDX_REDIS_URL: tenant quotas shared by every worker and instance
    quota_ttl: float = 15.0  # INNDX_QUOTA_TTL: a claim not renewed within this is gone (a crashed instance)
    retry_after: int = 5  # INNDX_RETRY_AFTER: seconds, in the Retry-After of a 429 or 503 upgrade refusal
    pool_chrome: int = 2  # INNDX_POOL_CHROME: ready Chrome browsers kept warm (0 = no pool)
    pool_firefox: int = 1  # INNDX_POOL_FIREFOX: ready Firefox browsers kept warm (0 = no pool)
    pool_launches: int = 1  # INNDX_POOL_LAUNCHES: browsers the pool starts at once
    chrome_binary: str = "/usr/bin/chromium"  # INNDX_CHROME_BINARY
    chromedriver: str = "/usr/bin/chromedriver"  # INNDX_CHROMEDRIVER
    firefox_binary: str = "/usr/bin/firefox-esr"  # INNDX_FIREFOX_BINARY
    geckodriver: str = dataclasses.field(default_factory=_default_geckodriver)  # INNDX_GECKODRIVER
    browser_user: str = ""  # INNDX_BROWSER_USER: local browsers run as this user (root service: inndx-browser)
    selenium_remote_url: str | None = None  # INNDX_SELENIUM_REMOTE_URL: a Selenium Grid
    new_session_timeout: float = 30.0  # INNDX_NEW_SESSION_TIMEOUT: bound on getting a browser
    client_redirect_settle: float = 0.4  # INNDX_CLIENT_REDIRECT_SETTLE: wait for meta refresh
    shutdown_timeout: float = 10.0  # INNDX_SHUTDOWN_TIMEOUT: sessions get this long to end
    tab_gotos: int = 25  # INNDX_TAB_GOTOS: a browser session moves to a fresh tab every this many gotos (0: never)
    browser_memory_mib: int = 1536  # INNDX_BROWSER_MEMORY_MIB: a local browser past this (PSS) -> a fresh browser (0: never)
    browser_memory_check: float = 10.0  # INNDX_BROWSER_MEMORY_CHECK: at most this often, before an action
    unresponsive_limit: float = 60.0  # INNDX_UNRESPONSIVE_LIMIT: a browser answering nothing this long -> fatal 503
    network_allow: str = ""  # INNDX_NETWORK_ALLOW: rules (CIDR, address, host, with :port) let through
    network_deny: str = ""  # INNDX_NETWORK_DENY: rules refused first, whatever else says
    egress_host: str = "127.0.0.1"  # INNDX_EGRESS_HOST: where the egress gateway listens
    egress_advertise_host: str = ""  # INNDX_EGRESS_ADVERTISE_HOST: how browsers reach it (Grid nodes)
    tenant_query: bool = False  # INNDX_TENANT_QUERY=1: accept ?tenant=&api_key= (browsers, the playground)
    write_timeout: float = 30.0  # INNDX_WRITE_TIMEOUT: a client must take each frame within this
    health_port: int = 0  # INNDX_HEALTH_PORT: the master's /healthz and /readyz (0: PORT + 1)
    liveness_timeout: float = 30.0  # INNDX_LIVENESS_TIMEOUT: a worker without a heartbeat this long: not alive
    ping_interval: float = 20.0  # INNDX_PING_INTERVAL: a ping every this; no pong by the next one ends the connection
    live_fps: float = 4.0  # INNDX_LIVE_FPS: the live view's frames per second, at most (service.live)
    live_viewers: int = 2  # INNDX_LIVE_VIEWERS: live viewers of one session at once; beyond -> 429
    live_max_viewers: int = 16  # INNDX_LIVE_MAX_VIEWERS: live viewers per worker (each holds a thread); beyond -> 503
    resume_window: float = 60.0  # INNDX_RESUME_WINDOW: a session whose socket dropped waits this long for a resume (0: off)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            name = "PORT" if field.name == "port" else f"INNDX_{field.name.upper()}"
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            try:
                values[field.name] = _convert(field.name, raw)
            except ValueError as exc:
                raise SettingsError(f"{name}={raw!r}: {exc}") from exc
        return cls(**values)

    def __post_init__(self) -> None:
        if self.resume_window < 0:
            raise SettingsError("the resume window must be 0 (off) or more")
        if self.write_timeout <= 0:
            raise SettingsError("the write timeout must be > 0")
        if self.ping_interval < 0.1:
            raise SettingsError("the ping interval must be at least 100ms")
        if not 0 < self.default_timeout <= self.max_timeout:
            raise SettingsError("the default timeout must be > 0 and at most the maximum timeout")
        try:
            self.policy  # noqa: B018 - parse the rules now, so a bad one stops the start
        except ValueError as exc:
            raise SettingsError(f"network policy: {exc}") from exc
        if self.egress_host in ("0.0.0.0", "::") and not self.egress_advertise_host:
            raise SettingsError("INNDX_EGRESS_HOST is a wildcard: set INNDX_EGRESS_ADVERTISE_HOST")
        if self.quota_ttl < 3:
            raise SettingsError("the quota TTL must be at least 3s (claims are renewed every third of it)")
        for name in _COUNTS:
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1")
        for name in ("pool_chrome", "pool_firefox", "har_body_bytes"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must be 0 or more")
        if self.pool_launches < 1:
            raise SettingsError("pool_launches must be at least 1")
        if not 0 < self.live_fps <= 30:
            raise SettingsError("the live view's frame rate must be > 0 and at most 30")

    @functools.cached_property
    def policy(self) -> Policy:
        """The network policy these settings describe (built once)."""
        return Policy(parse_rules(self.network_allow), parse_rules(self.network_deny), self.allow_private_networks)

    @property
    def worker_max_sessions(self) -> int:
        """The sessions one worker process carries: its share of ``max_sessions``."""
        return -(-self.max_sessions // self.workers)

    @property
    def health_address(self) -> tuple[str, int]:
        """Where the gunicorn master answers /healthz and /readyz (``service.health``)."""
        return self.host, self.health_port or self.port + 1

    @property
    def egress_address(self) -> str:
        """The host browsers use to reach the egress gateway."""
        return self.egress_advertise_host or self.egress_host


_DURATIONS = {
    "default_timeout",
    "max_timeout",
    "open_timeout",
    "idle_timeout",
    "max_lifetime",
    "new_session_timeout",
    "client_redirect_settle",
    "shutdown_timeout",
    "unresponsive_limit",
    "browser_memory_check",
    "write_timeout",
    "ping_interval",
    "resume_window",
    "liveness_timeout",
    "quota_ttl",
}
_COUNTS = (
    "max_pending",
    "max_pending_bytes",
    "max_frame_bytes",
    "max_body_bytes",
    "max_download_bytes",
    "max_upload_bytes",
    "max_reply_bytes",
    "default_max_sessions",
    "max_sessions",
    "workers",
    "max_browsers",
    "max_grid_sessions",
    "retry_after",
    "live_viewers",
    "live_max_viewers",
)
_INTEGERS = {
    "port", "health_port", *_COUNTS, "pool_chrome", "pool_firefox", "pool_launches", "tab_gotos", "har_body_bytes",
    "browser_memory_mib",
}
_FLOATS = {"live_fps"}
_BOOLEANS = {"allow_private_networks", "tenant_query", "downloads_tmpfs", "grid_downloads"}


def _convert(name: str, raw: str) -> object:
    if name in _DURATIONS:
        return parse_duration(raw)
    if name in _FLOATS:
        return float(raw)
    if name in _INTEGERS:
        return int(raw)
    if name in _BOOLEANS:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected 1 or 0")
    return raw
