"""Replay dead letters: re-normalize authentic deliveries that an older gateway could not map.

A dead letter keeps the exact body of a delivery that verified but could not be normalized
(e.g. an event type this version did not know). After an upgrade, replaying publishes the ones
that now normalize as job events, with the same deterministic ``event_id`` the dead letter had,
so a consumer that somehow saw it before dedupes it. Signatures are not checked again: they
were checked on receipt, and the signature headers are (deliberately) not kept. Timestamps
are judged as of receipt, so a replay does not fail a body-age check it once passed.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from adapters import (
    Adapter,
    AdapterServices,
    GatewayError,
    NormalizationError,
    VerificationError,
    Verified,
    build_adapter,
)
from adapters.base import NO_REQUEST
from gateway.ingest import Source, build_any_event
from gateway.settings import Settings
from gateway.sinks.base import Sink
from schemas import DeadLetter


@dataclass
class ReplayReport:
    replayed: list[str] = field(default_factory=list)
    still_dead: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        parts = [f"replayed {len(self.replayed)}"]
        if self.still_dead:
            reasons = ", ".join(f"{r} x{n}" for r, n in sorted(self.still_dead.items()))
            parts.append(f"still dead {sum(self.still_dead.values())} ({reasons})")
        if self.skipped:
            reasons = ", ".join(f"{r} x{n}" for r, n in sorted(self.skipped.items()))
            parts.append(f"skipped {sum(self.skipped.values())} ({reasons})")
        return "; ".join(parts)


async def _offline_fetch(url: str) -> bytes:
    raise GatewayError("offline", f"replay does not fetch {url}")


async def replay(
    settings: Settings,
    records: AsyncIterator[DeadLetter] | Iterable[DeadLetter],
    sink: Sink,
    *,
    source_filter: str | None = None,
    reason_filter: str | None = None,
    dry_run: bool = False,
) -> ReplayReport:
    specs = settings.source_specs()
    offline = AdapterServices(fetcher=_offline_fetch)
    adapters: dict[str, Adapter] = {}
    report = ReplayReport()
    async for record in _aiter(records):
        if source_filter and record.source != source_filter:
            continue
        if reason_filter and record.reason != reason_filter:
            continue
        spec = specs.get(record.source)
        if spec is None:
            report.skipped["source_not_configured"] += 1
            continue
        adapter = adapters.get(record.source) or build_adapter(spec, offline)
        adapters[record.source] = adapter
        source = Source(record.source, adapter, settings.sources[record.source].topic)
        received = record.received_at.timestamp()
        verified = Verified(
            scheme=record.delivery.scheme,
            key_id=record.delivery.key_id,
            delivery_id=record.delivery.id,
            signed_at=int(record.delivery.signed_at.timestamp())
            if record.delivery.signed_at
            else None,
            # fal binds the body's request_id to the signed header, which is the delivery id.
            bound={"request_id": record.delivery.id or ""},
        )
        try:
            payload = adapter.parse(base64.b64decode(record.raw_body_b64), NO_REQUEST)
            facts = adapter.normalize(payload, verified, received)
        except (NormalizationError, VerificationError) as exc:
            report.still_dead[exc.reason] += 1
            continue
        event = build_any_event(
            record.event_id, source.name, source.provider, facts, verified, payload,
            record.received_at, record.received_at,
        )  # fmt: skip
        if not dry_run:
            await sink.publish(event, topic=source.topic)
        report.replayed.append(record.event_id)
    return report


async def _aiter(
    records: AsyncIterator[DeadLetter] | Iterable[DeadLetter],
) -> AsyncIterator[DeadLetter]:
    if isinstance(records, AsyncIterator):
        async for record in records:
            yield record
    else:
        for record in records:
            yield record


def read_local(directory: Path, unreadable: Counter[str] | None = None) -> Iterator[DeadLetter]:
    """The dead letters in ``directory``, oldest first across rotated segments. A line that
    holds no valid record (torn by a crash) is counted in ``unreadable``, not fatal."""
    from pydantic import ValidationError

    from gateway.sinks.local_log import DEAD_LETTERS_FILE
    from gateway.sinks.log_files import log_records

    for record in log_records(directory, DEAD_LETTERS_FILE):
        try:
            if record is not None:
                yield DeadLetter.model_validate_json(record)
                continue
        except ValidationError:
            pass
        if unreadable is not None:
            unreadable["unreadable_line"] += 1


async def read_kafka(bootstrap: str, topic: str) -> AsyncIterator[DeadLetter]:
    """Every record of ``topic`` from its beginning to its end at the time of the call."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                for message in messages:
                    yield DeadLetter.model_validate_json(message.value or b"")
    finally:
        await consumer.stop()


async def replay_configured(
    settings: Settings,
    *,
    source_filter: str | None,
    reason_filter: str | None,
    dry_run: bool,
    connect_timeout_seconds: float = 30.0,
) -> ReplayReport:
    """Read the configured sink's dead letters and publish what now normalizes to it."""
    import asyncio

    from gateway.sinks.factory import build_sink

    sink = build_sink(settings)
    records: AsyncIterator[DeadLetter] | Iterable[DeadLetter]
    unreadable = Counter[str]()
    if settings.sink.kind == "kafka":
        kafka = settings.sink.kafka
        records = read_kafka(kafka.bootstrap_servers, kafka.dead_letter_topic)
    else:
        # Read whole before publishing: the sink may rotate the files it appends to.
        records = list(read_local(Path(settings.sink.local.directory), unreadable))
    await sink.start()
    try:
        async with asyncio.timeout(connect_timeout_seconds):
            while not sink.ready():  # noqa: ASYNC110 - the sink exposes no ready event
                await asyncio.sleep(0.1)
        report = await replay(
            settings,
            records,
            sink,
            source_filter=source_filter,
            reason_filter=reason_filter,
            dry_run=dry_run,
        )
        report.skipped.update(unreadable)
        return report
    finally:
        await sink.close()
