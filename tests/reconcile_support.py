"""Settings and a reconciler wired to the real Redis and the fake provider APIs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import yaml

from adapters import AdapterServices, build_adapter
from gateway.dedupe import build_dedupe
from gateway.metrics import Metrics
from gateway.reconcile.build import build_pollers, build_store, build_targets
from gateway.reconcile.http import HttpClient
from gateway.reconcile.register import Registrar
from gateway.reconcile.runner import Reconciler
from gateway.reconcile.store import ExpectationStore
from gateway.settings import Settings
from gateway.sinks.base import Sink
from schemas import JobExpectation
from tests.fake_providers import API_KEY, FakeApi
from tests.support import EXAMPLE_CONFIG

ADMIN_TOKEN = "admin-token-0d1e"


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def reconcile_data(
    redis_url: str, apis: Mapping[str, FakeApi], prefix: str | None = None, **reconcile: Any
) -> dict[str, Any]:
    """The example config with Redis dedupe, reconciliation on, each of ``apis``' sources
    polling its fake."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["dedupe"] = {
        "kind": "redis",
        "redis": {
            "url": {"id": "redis", "value": redis_url},
            "key_prefix": prefix or f"t{uuid.uuid4().hex[:10]}",
        },
    }
    data["reconcile"] = {
        "enabled": True,
        "admin_token": {"id": "admin", "value": ADMIN_TOKEN},
        "tick_seconds": 0.05,
        "http_timeout_seconds": 2.0,
        "lease_seconds": 5.0,
        "backoff_initial_seconds": 0.2,
        "backoff_max_seconds": 1.0,
        **reconcile,
    }
    for name, api in apis.items():
        data["sources"][name]["reconcile"] = {
            "api_key": {"id": f"{name}-api-key", "value": API_KEY},
            "base_url": api.base_url,
        }
    return data


def reconcile_settings(
    redis_url: str, apis: Mapping[str, FakeApi], prefix: str | None = None, **reconcile: Any
) -> Settings:
    return Settings(**reconcile_data(redis_url, apis, prefix, **reconcile))


def expectation(
    source: str,
    job_id: str,
    submitted_at: float,
    *,
    poll_after: float = 60.0,
    max_wait: float = 3600.0,
    api: FakeApi | None = None,
) -> JobExpectation:
    urls: dict[str, str] = {}
    if api is not None and api.provider == "fal":
        urls = {"status_url": api.status_url(job_id), "response_url": api.response_url(job_id)}
    return JobExpectation(
        source=source,
        job_id=job_id,
        submitted_at=datetime.fromtimestamp(submitted_at, tz=UTC),
        poll_after_seconds=poll_after,
        max_wait_seconds=max_wait,
        **urls,
    )


class Harness:
    """A reconciler instance, its store and its registrar."""

    def __init__(self, reconciler: Reconciler, store: ExpectationStore, metrics: Metrics,
                 registrar: Registrar) -> None:  # fmt: skip
        self.reconciler = reconciler
        self.store = store
        self.metrics = metrics
        self.registrar = registrar


@asynccontextmanager
async def harness(settings: Settings, sink: Sink, clock: Any) -> AsyncIterator[Harness]:
    adapters = {
        name: build_adapter(spec, AdapterServices())
        for name, spec in settings.source_specs().items()
    }
    pollers = build_pollers(settings, adapters)
    metrics = Metrics()
    dedupe = build_dedupe(settings)
    store, connection = build_store(settings)
    http = HttpClient(settings.reconcile.http_timeout_seconds)
    reconciler = Reconciler(
        build_targets(settings, pollers),
        store,
        dedupe,
        sink,
        metrics,
        settings.reconcile,
        http.get,
        publish_timeout_seconds=settings.limits.publish_timeout_seconds,
        clock=clock,
    )
    await dedupe.start()
    await http.start()
    try:
        yield Harness(
            reconciler, store, metrics, Registrar(store, {n: p.check for n, p in pollers.items()})
        )
    finally:
        await http.close()
        await dedupe.close()
        await connection.close()


def sample(metrics: Metrics, name: str, labels: dict[str, str]) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
