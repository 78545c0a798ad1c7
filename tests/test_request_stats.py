"""The per-request families render exactly what prometheus-client's own metrics would."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import _LATENCY_BUCKETS, PREFIX, Metrics
from gateway.request_stats import RequestStats

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _native() -> tuple[CollectorRegistry, dict[str, Any]]:
    """The same families, built the ordinary way."""
    r = CollectorRegistry()
    return r, {
        "requests": Counter(
            f"{PREFIX}_requests",
            "Webhook requests by source, provider, HTTP status and outcome.",
            ("source", "provider", "status", "outcome"),
            registry=r,
        ),
        "duration": Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time from request start to response, by source.",
            ("source",),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        ),
        "published": Counter(
            f"{PREFIX}_events_published",
            "Events and dead letters durably written, by source and topic.",
            ("source", "topic"),
            registry=r,
        ),
        "publish": Histogram(
            f"{PREFIX}_publish_duration_seconds",
            "Time for the sink to durably accept one event.",
            ("sink",),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        ),
        "keys": Counter(
            f"{PREFIX}_key_matches",
            "Verified deliveries by the secret or key that matched: watch a rotation complete.",
            ("source", "key_id"),
            registry=r,
        ),
    }


def _series(text: str) -> tuple[Series, set[tuple[str, tuple[tuple[str, str], ...]]], str]:
    """Sample values (``_created`` apart: it is a time), the created series, and the HELP/TYPE
    lines."""
    values: Series = {}
    created = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            if sample.name.endswith("_created"):
                created.add(key)
            else:
                values[key] = sample.value
    meta = "\n".join(sorted(line for line in text.splitlines() if line.startswith("#")))
    return values, created, meta


def test_exposition_matches_prometheus_client_for_random_traffic() -> None:
    rng = random.Random(7)
    registry = CollectorRegistry()
    stats = RequestStats(PREFIX, _LATENCY_BUCKETS)
    registry.register(stats)
    native_registry, native = _native()
    # Values on and around every bucket bound, plus beyond the last: "le" means <=.
    interesting = [b + d for b in _LATENCY_BUCKETS for d in (-1e-9, 0.0, 1e-9)] + [0.0, 42.0]
    for _ in range(3000):
        source = rng.choice(("fal", "replicate", "abstrakt"))
        provider = source
        status = rng.choice(("200", "401", "503"))
        outcome = rng.choice(("accepted", "duplicate", "rejected"))
        seconds = rng.choice(interesting) if rng.random() < 0.5 else rng.expovariate(200)
        stats.request(source, provider, status, outcome, seconds)
        native["requests"].labels(source, provider, status, outcome).inc()
        native["duration"].labels(source).observe(seconds)
        if rng.random() < 0.7:
            topic = rng.choice(("jobs", "dead"))
            stats.published(source, topic)
            native["published"].labels(source, topic).inc()
            stats.key_match(source, rng.choice(("current", "previous")))
        if rng.random() < 0.6:
            sink = rng.choice(("kafka", "local"))
            publish = rng.choice(interesting)
            stats.publish_duration(sink, publish)
            native["publish"].labels(sink).observe(publish)
    # Key matches were drawn from the rng inside the loop; replay them on the native side.
    for (source, key_id), count in stats._key_matches.items():
        native["keys"].labels(source, key_id).inc(count)

    ours, our_created, our_meta = _series(generate_latest(registry).decode())
    theirs, their_created, their_meta = _series(generate_latest(native_registry).decode())
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert abs(ours[key] - value) <= 1e-9 * max(1.0, abs(value)), key
    assert our_created == their_created
    assert our_meta == their_meta


def test_nothing_is_exposed_before_the_first_request() -> None:
    registry = CollectorRegistry()
    registry.register(RequestStats(PREFIX, _LATENCY_BUCKETS))
    assert registry.get_sample_value(f"{PREFIX}_requests_total", {"source": "x"}) is None
    text = generate_latest(registry).decode()
    assert f"# TYPE {PREFIX}_requests_total counter" in text
    assert f"# TYPE {PREFIX}_request_duration_seconds histogram" in text
    assert "_total{" not in text
    assert "_bucket{" not in text


def test_a_name_clash_is_refused_by_the_registry() -> None:
    metrics = Metrics()
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Counter(f"{PREFIX}_requests", "clash", registry=metrics.registry)


def test_scrape_from_another_thread_while_requests_are_counted() -> None:
    metrics = Metrics()
    stats = metrics.stats
    stop = threading.Event()
    errors: list[BaseException] = []

    def scrape() -> None:
        try:
            while not stop.is_set():
                generate_latest(metrics.registry)
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=scrape)
    thread.start()
    try:
        for i in range(20_000):  # new label values keep the dicts growing during the scrapes
            stats.request(f"s{i % 500}", "p", "200", "accepted", 0.002)
            stats.published(f"s{i % 500}", f"t{i % 7}")
    finally:
        stop.set()
        thread.join()
    assert errors == []
    total = sum(
        metrics.registry.get_sample_value(
            f"{PREFIX}_requests_total",
            {"source": f"s{i}", "provider": "p", "status": "200", "outcome": "accepted"},
        )
        or 0
        for i in range(500)
    )
    assert total == 20_000
