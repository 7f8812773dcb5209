"""Prometheus metrics of one service instance. Labels carry only fixed vocabularies (client
kind, action name, outcome code): never a URL or any string a tenant chose."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sessions_opened = Counter(
            "inndx_sessions_opened", "Sessions opened, by client kind", ["client"], registry=self.registry
        )
        self.sessions_closed = Counter(
            "inndx_sessions_closed", "Sessions ended, by client kind", ["client"], registry=self.registry
        )
        self.sessions_active = Gauge(
            "inndx_sessions_active", "Sessions now open, by client kind", ["client"], registry=self.registry
        )
        self.resumes = Counter(
            "inndx_session_resumes", "Resume frames, by outcome (resumed, 403, 410, or another error code)",
            ["outcome"], registry=self.registry,
        )
        self.sessions_parked = Gauge(
            "inndx_sessions_parked", "Sessions whose socket dropped, waiting for a resume", registry=self.registry
        )
        self.actions = Counter(
            "inndx_actions", "Actions handled, by action and outcome (ok or the error code)",
            ["action", "outcome"], registry=self.registry,
        )
        self.action_seconds = Histogram(
            "inndx_action_duration_seconds", "Time to handle an action, by action", ["action"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )

        self.egress_bytes_total = Counter(
            "inndx_egress_bytes", "Bytes through the egress gateway, by client kind and direction"
            " (out: from browsers to servers, in: back)", ["client", "direction"], registry=self.registry,
        )
        self.egress_refusals = Counter(
            "inndx_egress_refusals", "Connections the egress gateway refused, by network policy reason",
            ["reason"], registry=self.registry,
        )

        self.admission_refusals = Counter(
            "inndx_admission_refusals", "Sessions and browsers refused, by what was full (quota_sessions,"
            " quota_browsers: an account's quota, 429; sessions, local_browsers, grid_sessions:"
            " the instance, 503)",
            ["resource", "code"], registry=self.registry,
        )
        self.capacity_limit = Gauge(
            "inndx_capacity_limit", "What this process may hold, by resource", ["resource"], registry=self.registry
        )
        self.capacity_in_use = Gauge(
            "inndx_capacity_in_use", "What this process holds now, by resource", ["resource"], registry=self.registry
        )
        self.pool_idle = Gauge(
            "inndx_pool_idle", "Ready browsers waiting in the warm pool, by client kind", ["client"],
            registry=self.registry,
        )
        self.pool_events = Counter(
            "inndx_pool_events", "Warm pool hand-outs and discards (a dead idle browser), by client kind",
            ["client", "event"], registry=self.registry,
        )
        self.fresh_tabs = Counter(
            "inndx_fresh_tabs", "Browser sessions moved to a fresh tab (INNDX_TAB_GOTOS), by client kind",
            ["client"], registry=self.registry,
        )
        self.fresh_browsers = Counter(
            "inndx_fresh_browsers", "Browser sessions moved to a fresh browser (INNDX_BROWSER_MEMORY_MIB), by client kind",
            ["client"], registry=self.registry,
        )
        self.blocked_requests = Counter(
            "inndx_blocked_requests", "Sub-resource requests failed by the block middleware, by client kind",
            ["client"], registry=self.registry,
        )

    def fresh_tab(self, client: str) -> None:
        self.fresh_tabs.labels(client).inc()

    def fresh_browser(self, client: str) -> None:
        self.fresh_browsers.labels(client).inc()

    def capacity(self, resource: str, limit: int, in_use: Callable[[], float]) -> None:
        self.capacity_limit.labels(resource).set(limit)
        self.capacity_in_use.labels(resource).set_function(in_use)

    def resume(self, outcome: str) -> None:
        self.resumes.labels(outcome).inc()

    def parked(self, count: Callable[[], float]) -> None:
        self.sessions_parked.set_function(count)

    def refused(self, resource: str, code: int) -> None:
        self.admission_refusals.labels(resource, str(code)).inc()

    def blocked(self, client: str, count: int) -> None:
        self.blocked_requests.labels(client).inc(count)

    def egress_bytes(self, client: str, direction: str, size: int) -> None:
        self.egress_bytes_total.labels(client, direction).inc(size)

    def egress_refused(self, reason: str) -> None:
        self.egress_refusals.labels(reason).inc()

    def session_opened(self, client: str) -> None:
        self.sessions_opened.labels(client).inc()
        self.sessions_active.labels(client).inc()

    def session_closed(self, client: str) -> None:
        self.sessions_closed.labels(client).inc()
        self.sessions_active.labels(client).dec()

    def action(self, action: str, outcome: str, seconds: float) -> None:
        self.actions.labels(action, outcome).inc()
        self.action_seconds.labels(action).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
