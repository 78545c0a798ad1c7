"""The Kafka sink: idempotent producer, ``acks=all``, a record per event keyed by job.

* key ``{source}:{job_id}``: one job's events share a partition, so consumers see them in order;
* value: the canonical event JSON; headers: event_id, source, provider, schema_version,
  content-type;
* ``publish`` returns only when the broker acknowledged the record (all in-sync replicas);
* the producer is (re)started in the background: a broker that is briefly away makes the
  gateway answer 503 and report not ready, never crash-loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from typing import Any, ClassVar

from aiokafka import AIOKafkaProducer, codec
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    TopicAlreadyExistsError,
    UnknownProducerId,
)

from gateway.errors import ConfigError, SinkUnavailable
from gateway.logs import get_logger
from gateway.settings import KafkaSinkConfig, Settings
from gateway.sinks.base import Event, Sink
from gateway.sinks.partitioner import KeyPartitioner
from schemas import DeadLetter, WebhookEvent

log = get_logger("gateway.kafka")

_RETRY_MIN_SECONDS = 0.5
_RETRY_MAX_SECONDS = 10.0
_HEALTH_INTERVAL_SECONDS = 2.0
_STOP_TIMEOUT_SECONDS = 5.0
_LOG_EVERY_SECONDS = 5.0
# After these, an idempotent aiokafka producer never recovers (its sender task has exited, or
# its producer id is no longer valid): the only way forward is a new producer.
_FATAL = (
    OutOfOrderSequenceNumber,
    ProducerFenced,
    ProducerClosed,
    UnknownProducerId,
    InvalidProducerEpoch,
)


class KafkaSink(Sink):
    kind: ClassVar[str] = "kafka"

    def __init__(self, config: KafkaSinkConfig, settings: Settings) -> None:
        codecs = {"gzip": codec.has_gzip, "lz4": codec.has_lz4, "zstd": codec.has_zstd,
                  "snappy": codec.has_snappy}  # fmt: skip
        if config.compression_type in codecs and not codecs[config.compression_type]():
            raise ConfigError(
                "compression_unavailable",
                f"{config.compression_type} compression needs cramjam (pip install cramjam)",
            )
        self.config = config
        self.topics = sorted(
            {config.topic, config.dead_letter_topic}
            | {s.topic for s in settings.sources.values() if s.topic}
        )
        self._producer: AIOKafkaProducer | None = None
        self._connected = asyncio.Event()
        self._healthy = False
        self._supervisor: asyncio.Task[None] | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._replacing: asyncio.Task[None] | None = None
        self._send_failure_logged: dict[str, float] = {}
        self._send_failures_suppressed: dict[str, int] = {}
        self._closing = False
        self.replacements = 0
        self._fixed_headers: dict[tuple[str, str], list[tuple[str, bytes]]] = {}

    def expect_passthrough(self) -> None:
        if self.config.webhook_topic not in self.topics:
            self.topics = sorted({*self.topics, self.config.webhook_topic})

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self._supervisor = asyncio.create_task(self._connect_loop(), name="kafka-connect")

    async def _connect_loop(self) -> None:
        delay = _RETRY_MIN_SECONDS
        while not self._closing:
            try:
                await self._connect()
            except Exception as exc:  # noqa: BLE001 - keep retrying whatever went wrong
                log.warning(
                    "kafka_connect_failed",
                    error=type(exc).__name__,
                    detail=str(exc)[:200],
                    retry_in=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_SECONDS)
                continue
            return

    def _common(self) -> dict[str, Any]:
        c = self.config
        options: dict[str, Any] = {
            "bootstrap_servers": c.bootstrap_servers,
            "client_id": c.client_id,
            "request_timeout_ms": c.request_timeout_ms,
            "security_protocol": c.security_protocol,
        }
        if c.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = ssl.create_default_context()
        if c.sasl_mechanism is not None:
            options["sasl_mechanism"] = c.sasl_mechanism
            options["sasl_plain_username"] = c.sasl_username
            if c.sasl_password is not None:
                options["sasl_plain_password"] = c.sasl_password.resolve(allow_inline=False)
        return options

    async def _connect(self) -> None:
        c = self.config
        await self._ensure_topics()
        producer = AIOKafkaProducer(
            **self._common(),
            acks="all",
            enable_idempotence=True,
            compression_type=None if c.compression_type == "none" else c.compression_type,
            linger_ms=c.linger_ms,
            max_request_size=c.max_request_size,
            partitioner=KeyPartitioner(),
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer
        self._healthy = True
        self._connected.set()
        log.info("kafka_connected", bootstrap_servers=c.bootstrap_servers, topics=self.topics)
        self._monitor = asyncio.create_task(self._watch(producer), name="kafka-health")

    async def _watch(self, producer: AIOKafkaProducer) -> None:
        """Re-check the cluster while unhealthy, so readiness comes back without traffic.

        Readiness off takes the pod out of the load balancer, so no publish would ever succeed
        to flip it back: a metadata round trip does instead.
        """
        while not self._closing and self._is_current(producer):
            await asyncio.sleep(_HEALTH_INTERVAL_SECONDS)
            if _sender_dead(producer):
                self._replace(producer, "sender_stopped")
                return
            try:
                async with asyncio.timeout(self.config.request_timeout_ms / 1000):
                    await producer.client.fetch_all_metadata()
            except (KafkaError, OSError, TimeoutError):
                if self._healthy:
                    log.warning("kafka_unhealthy")
                self._healthy = False
            else:
                if not self._healthy:
                    log.info("kafka_healthy_again")
                self._healthy = True

    async def _ensure_topics(self) -> None:
        admin = AIOKafkaAdminClient(**self._common())
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [t for t in self.topics if t not in existing]
            if not missing:
                return
            if not self.config.create_topics:
                raise SinkUnavailable(
                    "topics_missing", f"topics {missing} do not exist (set create_topics)"
                )
            new = [
                NewTopic(t, self.config.partitions, self.config.replication_factor) for t in missing
            ]
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
            log.info("kafka_topics_created", topics=missing)
        finally:
            await admin.close()

    async def close(self) -> None:
        self._closing = True
        for task in (self._supervisor, self._monitor, self._replacing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._producer is not None:
            # stop() flushes every batch still pending before it returns.
            await self._producer.stop()
            self._producer = None
        self._healthy = False

    def topic_for(self, override: str | None, *, passthrough: bool = False) -> str:
        return override or (self.config.webhook_topic if passthrough else self.config.topic)

    def dead_letter_topic(self) -> str:
        return self.config.dead_letter_topic

    def ready(self) -> bool:
        return self._producer is not None and self._healthy and not self._closing

    # -- publishing ----------------------------------------------------------------------

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        await self._send(
            topic or self.topic_for(None, passthrough=isinstance(event, WebhookEvent)),
            event.partition_key,
            event.model_dump_json().encode(),
            event.event_id,
            event.source,
            event.provider,
        )

    async def publish_dead_letter(self, record: DeadLetter) -> None:
        await self._send(
            self.config.dead_letter_topic,
            record.partition_key,
            record.model_dump_json().encode(),
            record.event_id,
            record.source,
            record.provider,
        )

    async def _send(
        self, topic: str, key: str, value: bytes, event_id: str, source: str, provider: str
    ) -> None:
        producer = self._producer
        if producer is None or self._closing:
            raise SinkUnavailable("sink_unavailable", "not connected to Kafka")
        fixed = self._fixed_headers.get((source, provider))
        if fixed is None:  # bounded: sources and providers come from the configuration
            fixed = self._fixed_headers[(source, provider)] = [
                ("source", source.encode()),
                ("provider", provider.encode()),
                ("schema_version", b"1"),
                ("content-type", b"application/json"),
            ]
        headers = [("event_id", event_id.encode()), *fixed]
        try:
            delivery = await producer.send(topic, value=value, key=key.encode(), headers=headers)
            await delivery  # resolves when the broker has acknowledged (acks=all)
        except KafkaError as exc:
            self._healthy = False
            self._log_send_failure(exc)
            if isinstance(exc, _FATAL) or _sender_dead(producer):
                self._replace(producer, type(exc).__name__)
            raise SinkUnavailable("sink_unavailable", type(exc).__name__) from exc
        self._healthy = True

    def _log_send_failure(self, exc: KafkaError) -> None:
        """One line per error type every few seconds: an outage fails every request, and the
        metrics count them all; the log only needs to say what is happening."""
        name = type(exc).__name__
        now = time.monotonic()
        last = self._send_failure_logged.get(name)
        self._send_failures_suppressed[name] = self._send_failures_suppressed.get(name, 0) + 1
        if last is not None and now - last < _LOG_EVERY_SECONDS:
            return
        self._send_failure_logged[name] = now
        log.warning(
            "kafka_send_failed",
            error=name,
            detail=str(exc)[:200],
            count_since_last=self._send_failures_suppressed.pop(name),
        )

    def _is_current(self, producer: AIOKafkaProducer) -> bool:
        # A call, not an inline `is`: mypy would narrow the argument to the attribute's type.
        return self._producer is producer

    def _replace(self, broken: AIOKafkaProducer, reason: str) -> None:
        """Swap a producer that cannot recover for a new one (new producer id), once.

        Records still queued in the old one were never acknowledged, so their requests were
        (or will be) answered 503 and the providers retry them: nothing acknowledged is lost.
        """
        if not self._is_current(broken) or self._closing:
            return
        self._producer = None
        self._healthy = False
        self.replacements += 1
        log.error("kafka_producer_replaced", reason=reason)

        async def replace() -> None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_STOP_TIMEOUT_SECONDS):
                    await broken.stop()
            await self._connect_loop()

        self._replacing = asyncio.create_task(replace(), name="kafka-replace")


def _sender_dead(producer: AIOKafkaProducer) -> bool:
    """aiokafka exposes no public check; a finished sender task means no send will complete."""
    task = getattr(getattr(producer, "_sender", None), "sender_task", None)
    return task is not None and task.done()
