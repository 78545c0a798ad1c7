"""Read a topic back and check that every delivery answered 2xx is in it."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


async def topic_event_ids(bootstrap: str, topic: str, limit_seconds: float = 300.0) -> list[str]:
    """The ``event_id`` header of every record in ``topic``, from the start to its current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(limit_seconds):
            partitions = consumer.partitions_for_topic(topic)
            while not partitions:
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic)
                if not partitions:
                    await asyncio.sleep(0.2)
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            ids: list[str] = []
            remaining = {tp for tp in tps if end[tp] > 0}
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=50_000)
                for messages in batch.values():
                    for message in messages:
                        headers = dict(message.headers)
                        ids.append(headers.get("event_id", b"").decode())
                for tp in list(remaining):
                    if await consumer.position(tp) >= end[tp]:
                        remaining.discard(tp)
            return ids
    finally:
        await consumer.stop()


def read_ids(paths: Iterable[Path]) -> list[str]:
    ids: list[str] = []
    for path in paths:
        if path.exists():
            ids.extend(line for line in path.read_text(encoding="ascii").split("\n") if line)
    return ids


def check(
    bootstrap: str, topic: str, id_files: Iterable[Path], answered_2xx: int
) -> dict[str, Any]:
    """Compare what was answered 2xx (counts and event ids) with what the topic holds."""
    answered_ids = read_ids(id_files)
    in_topic = asyncio.run(topic_event_ids(bootstrap, topic))
    topic_set = set(in_topic)
    answered_set = set(answered_ids)
    missing = answered_set - topic_set
    copies = Counter(in_topic)
    return {
        "topic": topic,
        "answered_2xx": answered_2xx,
        "answered_event_ids": len(answered_ids),
        "answered_unique_event_ids": len(answered_set),
        "records": len(in_topic),
        "unique_event_ids_in_topic": len(topic_set),
        "records_with_a_repeated_event_id": sum(n - 1 for n in copies.values() if n > 1),
        # Records written for requests whose answer the client never saw (cut at the end of a
        # wrk phase) are expected: they are not missing, they are extra.
        "records_not_answered_2xx": len(topic_set - answered_set),
        "missing_by_count": max(0, answered_2xx - len(in_topic)),
        "missing": len(missing),
        "missing_examples": sorted(missing)[:5],
    }
