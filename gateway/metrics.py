"""Prometheus metrics, on the app's own registry (never the global one).

Label values are bounded: sources are the configured names (an unknown path segment is counted
as ``_unknown``), reasons come from the fixed error vocabulary, key ids from configuration.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from gateway import __version__
from gateway.request_stats import RequestStats

PREFIX = "webhook_gateway"
UNKNOWN_SOURCE = "_unknown"

# Buckets from 1 ms to 10 s: the benchmark target is a p99 of 10 ms at half load, the alert
# pages at 250 ms, and providers give up at 10-15 s.
_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


# From 10 s to 6 h: how late a terminal webhook of an expected job came (providers retry for
# minutes to hours; past poll_after_seconds the reconciler has usually polled already).
_LATENESS_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        # The families every request touches (requests, request duration, events published,
        # publish duration, key matches): plain counts, rendered at scrape time.
        self.stats = RequestStats(PREFIX, _LATENCY_BUCKETS)
        r.register(self.stats)
        self.verification_failures = Counter(
            f"{PREFIX}_verification_failures",
            "Deliveries refused as not authentic, by source and reason.",
            ("source", "reason"),
            registry=r,
        )
        self.request_errors = Counter(
            f"{PREFIX}_request_errors",
            "Requests refused before verification (404, 405, 413, 415, 503 overload...).",
            ("source", "reason"),
            registry=r,
        )
        self.publish_failures = Counter(
            f"{PREFIX}_publish_failures",
            "Sink writes that failed or passed the deadline, by reason.",
            ("sink", "reason"),
            registry=r,
        )
        self.duplicates = Counter(
            f"{PREFIX}_duplicates",
            "Deliveries already accepted (answered 200, no new event), by source.",
            ("source",),
            registry=r,
        )
        self.handshakes = Counter(
            f"{PREFIX}_handshakes",
            "Endpoint handshakes and probes answered (no event published), by source and kind.",
            ("source", "kind"),
            registry=r,
        )
        self.dead_letters = Counter(
            f"{PREFIX}_dead_letters",
            "Authentic deliveries that could not be normalized, by source and reason.",
            ("source", "reason"),
            registry=r,
        )
        self.dedupe_store_errors = Counter(
            f"{PREFIX}_dedupe_store_errors",
            "Shared dedupe store (Redis) calls that failed, timed out or were skipped while it "
            "was failing, by operation (claim, commit, release, start) and reason (timeout, "
            "connection, error, unavailable).",
            ("operation", "reason"),
            registry=r,
        )
        self.in_flight = Gauge(
            f"{PREFIX}_in_flight_requests",
            "Webhook requests being handled now.",
            registry=r,
        )
        self.sink_ready = Gauge(
            f"{PREFIX}_sink_ready",
            "1 when the sink can durably accept events, else 0.",
            ("sink",),
            registry=r,
        )
        self.key_refreshes = Counter(
            f"{PREFIX}_key_refreshes",
            "JWKS fetches by source and result (ok, error, empty).",
            ("source", "result"),
            registry=r,
        )
        self.expectations_pending = Gauge(
            f"{PREFIX}_expectations_pending",
            "Expected jobs with no terminal event yet (set by the reconciler).",
            registry=r,
        )
        self.expectations_registered = Counter(
            f"{PREFIX}_expectations_registered",
            "Job expectations received, by how (topic, http, cli) and result (added, "
            "already_open, already_ended, or the reason it was refused).",
            ("via", "result"),
            registry=r,
        )
        self.reconcile_polls = Counter(
            f"{PREFIX}_reconcile_polls",
            "Polls of a provider's status API, by source and result (terminal, running, "
            "not_found, rate_limited, http_error, garbage, unreachable).",
            ("source", "result"),
            registry=r,
        )
        self.expectations_closed = Counter(
            f"{PREFIX}_expectations_closed",
            "Expected jobs whose terminal event was published, by source and by what (webhook, "
            "poll, timeout).",
            ("source", "by"),
            registry=r,
        )
        self.webhook_lateness = Histogram(
            f"{PREFIX}_webhook_lateness_seconds",
            "From a job's submission to its terminal webhook, for expected jobs, by source.",
            ("source",),
            buckets=_LATENESS_BUCKETS,
            registry=r,
        )
        self.failure_budget_refusals = Counter(
            f"{PREFIX}_failure_budget_refusals",
            "Requests answered 429: the client was over its budget of failed verifications.",
            ("source",),
            registry=r,
        )
        self.failure_budget_clients = Gauge(
            f"{PREFIX}_failure_budget_clients",
            "Clients with failed verifications still counted against them (bounded table).",
            registry=r,
        )
        self.open_connections = Gauge(
            f"{PREFIX}_open_connections",
            "Connections open on the public listener (at most limits.max_connections).",
            registry=r,
        )
        self.connections_evicted = Counter(
            f"{PREFIX}_connections_evicted",
            "Connections closed because limits.max_connections were open: the oldest that "
            "had not sent a request yet (a connection flood).",
            registry=r,
        )
        self.build_info = Info(f"{PREFIX}_build", "Build information.", registry=r)
        self.build_info.info({"version": __version__})
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, cached: label values are bounded (see the module doc), and
        ``labels()`` validates and locks on every call, which showed in the profile."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found
