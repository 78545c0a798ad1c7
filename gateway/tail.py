"""``events tail``: the last N lines of a JSON-lines log, optionally following it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections import deque
from pathlib import Path


def _emit(line: bytes, pretty: bool) -> None:
    text = line.decode("utf-8", errors="replace").rstrip("\n")
    if pretty:
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    print(text, flush=True)


def tail(path: Path, *, lines: int, follow: bool, pretty: bool, poll: float = 0.25) -> int:
    if not path.exists() and not follow:
        print(f"no events yet: {path} does not exist", file=sys.stderr)
        return 1
    while not path.exists():
        time.sleep(poll)
    with path.open("rb") as handle:
        for line in deque(handle, maxlen=max(lines, 0)):
            _emit(line, pretty)
        if not follow:
            return 0
        pending = b""
        try:
            while True:
                chunk = handle.readline()
                if not chunk:
                    time.sleep(poll)
                    continue
                pending += chunk
                if pending.endswith(b"\n"):  # only whole lines: a writer may be mid-line
                    _emit(pending, pretty)
                    pending = b""
        except KeyboardInterrupt:
            return 0


async def tail_kafka(
    bootstrap: str,
    topic: str,
    *,
    lines: int,
    follow: bool,
    pretty: bool,
    idle_exit_seconds: float | None = None,
) -> int:
    """The last ``lines`` records of every partition of ``topic``, then new ones if ``follow``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        await consumer.start()
    except Exception as exc:  # noqa: BLE001 - any connection failure is reported the same way
        print(f"cannot reach Kafka at {bootstrap}: {type(exc).__name__}", file=sys.stderr)
        return 1
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            print(f"no events yet: topic {topic} does not exist", file=sys.stderr)
            return 1
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(starts[tp], ends[tp] - max(lines, 0)))
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    _emit((message.value or b"") + b"\n", pretty)
            if batches:
                idle_since = loop.time()
                continue
            caught_up = [tp for tp in tps if await consumer.position(tp) < ends[tp]] == []
            if not follow and caught_up:
                return 0
            if idle_exit_seconds is not None and loop.time() - idle_since > idle_exit_seconds:
                return 0
    except KeyboardInterrupt:
        return 0
    finally:
        await consumer.stop()
