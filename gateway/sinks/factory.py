"""Build the configured sink."""

from __future__ import annotations

from gateway.settings import Settings
from gateway.sinks.base import Sink


def build_sink(settings: Settings) -> Sink:
    if settings.sink.kind == "kafka":
        from gateway.sinks.kafka import KafkaSink  # aiokafka is imported only when used

        return KafkaSink(settings.sink.kafka, settings)
    from gateway.sinks.local_log import LocalLogSink

    return LocalLogSink(settings.sink.local)
