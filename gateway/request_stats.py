"""The metric families every request touches, kept as plain counts and rendered at scrape time.

prometheus-client's ``Counter.inc`` and ``Histogram.observe`` take a lock and walk the
buckets in Python on every call; with five of them per delivery they cost more CPU than the
log line (measured with bench/breakdown.py: see README). Here a request adds to a few dict
entries instead, and ``collect()`` turns the counts into the same families, names, labels and
samples (``_total``, ``_bucket``, ``_count``, ``_sum``, ``_created``) when Prometheus scrapes.

Everything runs on the event loop's thread; ``collect()`` works on copies, so a scrape from
another thread never sees a dict change size under it.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

# The "le" label text exactly as prometheus-client writes it (the function is untyped).
_go_float: Callable[[float], str] = floatToGoString


class _Histogram:
    """Non-cumulative bucket counts (the last one is +Inf), a sum and a creation time."""

    __slots__ = ("counts", "created", "total")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size
        self.total = 0.0
        self.created = time.time()


class RequestStats(Collector):
    def __init__(self, prefix: str, buckets: Sequence[float]) -> None:
        self._prefix = prefix
        self._bounds = tuple(float(b) for b in buckets)
        self._le = [_go_float(b) for b in self._bounds] + ["+Inf"]
        self._requests: dict[tuple[str, str, str, str], int] = {}
        self._published: dict[tuple[str, str], int] = {}
        self._key_matches: dict[tuple[str, str], int] = {}
        self._created: dict[tuple[str, ...], float] = {}
        self._duration: dict[str, _Histogram] = {}
        self._publish: dict[str, _Histogram] = {}

    # -- the request path ------------------------------------------------------------------

    def request(
        self, source: str, provider: str, status: str, outcome: str, seconds: float
    ) -> None:
        self._count(self._requests, "requests", (source, provider, status, outcome))
        self._observe(self._duration, source, seconds)

    def published(self, source: str, topic: str) -> None:
        self._count(self._published, "published", (source, topic))

    def key_match(self, source: str, key_id: str) -> None:
        self._count(self._key_matches, "key_matches", (source, key_id))

    def publish_duration(self, sink: str, seconds: float) -> None:
        self._observe(self._publish, sink, seconds)

    def _count(self, counts: dict[Any, int], family: str, key: tuple[str, ...]) -> None:
        count = counts.get(key)
        if count is None:
            self._created[(family, *key)] = time.time()
            count = 0
        counts[key] = count + 1

    def _observe(self, histograms: dict[str, _Histogram], label: str, seconds: float) -> None:
        histogram = histograms.get(label)
        if histogram is None:
            histogram = histograms[label] = _Histogram(len(self._bounds) + 1)
        # Bucket i counts values <= bound i (Prometheus' "le"); past the last bound is +Inf.
        histogram.counts[bisect.bisect_left(self._bounds, seconds)] += 1
        histogram.total += seconds

    # -- the scrape ------------------------------------------------------------------------

    def describe(self) -> Iterator[Metric]:
        """The family names, so that the registry refuses a clash with another metric."""
        p = self._prefix
        yield CounterMetricFamily(f"{p}_requests", "", labels=())
        yield CounterMetricFamily(f"{p}_events_published", "", labels=())
        yield CounterMetricFamily(f"{p}_key_matches", "", labels=())
        yield HistogramMetricFamily(f"{p}_request_duration_seconds", "", labels=())
        yield HistogramMetricFamily(f"{p}_publish_duration_seconds", "", labels=())

    def collect(self) -> Iterator[Metric]:
        p = self._prefix
        created = self._created.copy()
        yield self._counter(
            f"{p}_requests",
            "Webhook requests by source, provider, HTTP status and outcome.",
            ("source", "provider", "status", "outcome"),
            "requests",
            self._requests.copy(),
            created,
        )
        yield self._histogram(
            f"{p}_request_duration_seconds",
            "Time from request start to response, by source.",
            "source",
            self._duration.copy(),
        )
        yield self._counter(
            f"{p}_events_published",
            "Events and dead letters durably written, by source and topic.",
            ("source", "topic"),
            "published",
            self._published.copy(),
            created,
        )
        yield self._histogram(
            f"{p}_publish_duration_seconds",
            "Time for the sink to durably accept one event.",
            "sink",
            self._publish.copy(),
        )
        yield self._counter(
            f"{p}_key_matches",
            "Verified deliveries by the secret or key that matched: watch a rotation complete.",
            ("source", "key_id"),
            "key_matches",
            self._key_matches.copy(),
            created,
        )

    @staticmethod
    def _counter(
        name: str,
        documentation: str,
        labels: Sequence[str],
        family: str,
        counts: dict[Any, int],
        created: dict[tuple[str, ...], float],
    ) -> CounterMetricFamily:
        metric = CounterMetricFamily(name, documentation, labels=labels)
        for key, value in counts.items():
            metric.add_metric(key, value, created=created.get((family, *key)))
        return metric

    def _histogram(
        self, name: str, documentation: str, label: str, histograms: dict[str, _Histogram]
    ) -> HistogramMetricFamily:
        metric = HistogramMetricFamily(name, documentation, labels=(label,))
        for value, histogram in histograms.items():
            counts, total = list(histogram.counts), histogram.total
            cumulative, running = [], 0
            for le, count in zip(self._le, counts, strict=True):
                running += count
                cumulative.append((le, float(running)))
            metric.add_metric((value,), cumulative, total)
            metric.samples.append(Sample(f"{name}_created", {label: value}, histogram.created))
        return metric
