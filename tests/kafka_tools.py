"""Reading topics back from the real broker, and a gateway app wired to it."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gateway.settings import Settings
from tests.support import example_settings


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


def kafka_settings(bootstrap: str, suffix: str | None = None, **kafka: Any) -> Settings:
    """The example config publishing to ``bootstrap``, on topics unique to the caller."""
    suffix = suffix or uuid.uuid4().hex[:8]
    base = example_settings()
    config = base.sink.kafka.model_copy(
        update={
            "bootstrap_servers": bootstrap,
            "topic": f"jobs-{suffix}",
            "dead_letter_topic": f"dead-{suffix}",
            "create_topics": True,
            "partitions": 3,
            "replication_factor": 1,
            "request_timeout_ms": 3000,
            **kafka,
        }
    )
    sink = base.sink.model_copy(update={"kind": "kafka", "kafka": config})
    return base.model_copy(update={"sink": sink})


async def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def read_topic(bootstrap: str, topic: str, limit_seconds: float = 20.0) -> list[Record]:
    """Every record in ``topic`` from the beginning up to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = None
        async with asyncio.timeout(limit_seconds):
            while not partitions:
                partitions = consumer.partitions_for_topic(topic)
                if not partitions:
                    await consumer._client.force_metadata_update()
                    await asyncio.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records: list[Record] = []
        async with asyncio.timeout(limit_seconds):
            while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
                batch = await consumer.getmany(timeout_ms=500)
                for tp, messages in batch.items():
                    for m in messages:
                        records.append(
                            Record(
                                tp.topic,
                                tp.partition,
                                m.key,
                                m.value,
                                dict(m.headers),
                            )
                        )
        return records
    finally:
        await consumer.stop()


async def wait_until(predicate: Any, limit_seconds: float = 30.0) -> None:
    """Poll ``predicate``: what it watches (sink state, broker) has no event to wait on."""
    async with asyncio.timeout(limit_seconds):
        while not predicate():  # noqa: ASYNC110 - polling state owned by other components
            await asyncio.sleep(0.1)
