"""The ``webhooks.job-expectations`` topic, read by the reconcilers as one consumer group.

Each record (key ``{source}:{job_id}``, value a ``JobExpectation``) is registered in the
store, and its offset committed only after that: a reconciler killed mid-batch reads the rest
again (registering twice keeps the first). A record that cannot be kept goes to the
dead-letter topic with its reason; a store or broker failure is waited out.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from gateway import event_id as ids
from gateway.errors import ExpectationRefused, SinkUnavailable
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.reconcile.register import Registrar, parse_expectation
from gateway.settings import KafkaSinkConfig, ReconcileConfig
from gateway.sinks.base import Sink
from schemas import DeadLetter, Delivery, JobExpectation

log = get_logger("gateway.reconcile")

#: The ``source`` of a dead letter for an expectation that names none we could read.
INTAKE_SOURCE = "_expectations"
_RETRY_SECONDS = 1.0


def consumer_options(config: KafkaSinkConfig) -> dict[str, Any]:
    """The sink's connection settings, for a consumer."""
    options: dict[str, Any] = {
        "bootstrap_servers": config.bootstrap_servers,
        "client_id": f"{config.client_id}-reconciler",
        "request_timeout_ms": config.request_timeout_ms,
        "security_protocol": config.security_protocol,
    }
    if config.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context()
    if config.sasl_mechanism is not None:
        options["sasl_mechanism"] = config.sasl_mechanism
        options["sasl_plain_username"] = config.sasl_username
        if config.sasl_password is not None:
            options["sasl_plain_password"] = config.sasl_password.resolve(allow_inline=False)
    return options


def _keyed(key: bytes | None, expectation: JobExpectation) -> JobExpectation:
    if key is not None and key.decode("utf-8", "replace") != expectation.key:
        raise ExpectationRefused("key_mismatch", "the record key is not {source}:{job_id}")
    return expectation


class ExpectationIntake:
    def __init__(
        self,
        kafka: KafkaSinkConfig,
        config: ReconcileConfig,
        registrar: Registrar,
        sink: Sink,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._kafka = kafka
        self._config = config
        self._registrar = registrar
        self._sink = sink
        self._metrics = metrics
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._consume(stop)
            except (KafkaError, RedisError, OSError, TimeoutError, SinkUnavailable) as exc:
                log.warning("expectation_intake_failed", error=type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), _RETRY_SECONDS)

    async def _consume(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            self._config.expectations_topic,
            group_id=self._config.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **consumer_options(self._kafka),
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                for records in batch.values():
                    for record in records:
                        await self.take(record.key, record.value)
                if batch:
                    await consumer.commit()
        finally:
            await consumer.stop()

    async def take(self, key: bytes | None, value: bytes | None) -> str:
        """Register one record; the result (``added``... or the reason it was refused)."""
        raw = value or b""
        try:
            expectation = _keyed(key, parse_expectation(raw))
            result = await self._registrar.register(expectation, self._clock())
        except ExpectationRefused as exc:
            await self._dead_letter(key, raw, exc)
            result = exc.reason
        self._metrics.child(self._metrics.expectations_registered, "topic", result).inc()
        return result

    async def _dead_letter(self, key: bytes | None, raw: bytes, error: ExpectationRefused) -> None:
        digest = hashlib.sha256(raw).digest()
        record = DeadLetter(
            event_id=ids.from_body(INTAKE_SOURCE, digest),
            source=INTAKE_SOURCE,
            provider="expectation",
            reason=error.reason,
            detail=error.args[0][:500],
            received_at=datetime.fromtimestamp(self._clock(), tz=UTC),
            delivery=Delivery(
                id=key.decode("utf-8", "replace")[:256] if key else None,
                scheme="expectation",
                key_id="none",
            ),
            headers={},
            raw_body_b64=base64.b64encode(raw).decode(),
        )
        await self._sink.publish_dead_letter(record)
        log.warning("expectation_refused", reason=error.reason)
