"""Publishing to a real Kafka broker: keyed, acknowledged before 2xx, dead letters, outages."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import SINK, create_app, is_ready
from gateway.metrics import Metrics
from tests.kafka_broker import Broker, free_port
from tests.kafka_tools import kafka_settings, read_topic, wait_until
from tests.support import PROVIDERS, ROOT, signed

pytestmark = pytest.mark.kafka

SCHEMA = json.loads((ROOT / "schemas" / "job_event.v1.schema.json").read_text(encoding="utf-8"))
DL_SCHEMA = json.loads(
    (ROOT / "schemas" / "dead_letter.v1.schema.json").read_text(encoding="utf-8")
)
Client = TestClient[Any, web.Application]


async def ready_client(aiohttp_client: Any, settings: Any) -> Client:
    client: Client = await aiohttp_client(create_app(settings, metrics=Metrics()))
    await wait_until(lambda: is_ready(client.app)[0], limit_seconds=60)
    return client


async def test_each_provider_lands_once_keyed_with_headers(
    kafka_broker: Broker, aiohttp_client: Any
) -> None:
    settings = kafka_settings(kafka_broker.bootstrap)
    client = await ready_client(aiohttp_client, settings)
    answers: dict[str, str] = {}
    for source in PROVIDERS:
        raw, headers = signed(settings, source, job_id=f"job-{source}")
        response = await client.post(f"/webhooks/{source}", data=raw, headers=headers)
        assert response.status == 200
        answers[source] = (await response.json())["event_id"]
        again = await client.post(f"/webhooks/{source}", data=raw, headers=headers)
        assert (await again.json())["duplicate"] is True
    records = await read_topic(kafka_broker.bootstrap, settings.sink.kafka.topic)
    assert len(records) == len(PROVIDERS)  # duplicates added nothing
    by_source = {r.headers["source"].decode(): r for r in records}
    for source, event_id in answers.items():
        record = by_source[source]
        value = json.loads(record.value)
        jsonschema.validate(value, SCHEMA)
        assert value["event_id"] == event_id
        assert record.key == f"{source}:{value['job_id']}".encode()
        assert record.headers["event_id"] == event_id.encode()
        assert record.headers["provider"] == value["provider"].encode()
        assert record.headers["schema_version"] == b"1"
        assert record.headers["content-type"] == b"application/json"
    fal = json.loads(by_source["fal"].value)
    assert fal["raw"]["payload"]["seed"] == 17454220438242315174


async def test_one_jobs_events_share_a_partition_in_order(
    kafka_broker: Broker, aiohttp_client: Any
) -> None:
    settings = kafka_settings(kafka_broker.bootstrap)
    client = await ready_client(aiohttp_client, settings)
    for example in ("starting", "processing", "succeeded"):
        raw, headers = signed(settings, "replicate", example, job_id="pred-1")
        assert (await client.post("/webhooks/replicate", data=raw, headers=headers)).status == 200
    records = await read_topic(kafka_broker.bootstrap, settings.sink.kafka.topic)
    assert len({r.partition for r in records}) == 1
    assert [json.loads(r.value)["status"] for r in records] == ["queued", "running", "succeeded"]


async def test_dead_letter_topic_and_source_topic_override(
    kafka_broker: Broker, aiohttp_client: Any
) -> None:
    base = kafka_settings(kafka_broker.bootstrap)
    own_topic = f"openai-{uuid.uuid4().hex[:8]}"
    sources = dict(base.sources)
    sources["openai"] = sources["openai"].model_copy(update={"topic": own_topic})
    settings = base.model_copy(update={"sources": sources})
    client = await ready_client(aiohttp_client, settings)
    raw, headers = signed(settings, "openai", "unsupported")
    headers["Authorization"] = "Bearer do-not-keep"
    response = await client.post("/webhooks/openai", data=raw, headers=headers)
    assert (await response.json())["dead_letter"] is True
    raw, headers = signed(settings, "openai", "succeeded")
    assert (await client.post("/webhooks/openai", data=raw, headers=headers)).status == 200

    [dead] = await read_topic(kafka_broker.bootstrap, settings.sink.kafka.dead_letter_topic)
    record = json.loads(dead.value)
    jsonschema.validate(record, DL_SCHEMA)
    assert record["reason"] == "unsupported_event_type"
    assert record["source"] == "openai"
    assert "webhook-signature" not in record["headers"]
    assert "authorization" not in {k.lower() for k in record["headers"]}
    [event] = await read_topic(kafka_broker.bootstrap, own_topic)
    assert json.loads(event.value)["job_id"].startswith("resp_")


async def test_missing_topics_without_create_is_not_ready(
    kafka_broker: Broker, aiohttp_client: Any
) -> None:
    settings = kafka_settings(kafka_broker.bootstrap, create_topics=False)
    client: Client = await aiohttp_client(create_app(settings, metrics=Metrics()))
    await asyncio.sleep(2)
    assert is_ready(client.app)[0] is False
    raw, headers = signed(settings, "fal")
    response = await client.post("/webhooks/fal", data=raw, headers=headers)
    assert response.status == 503
    assert "Retry-After" in response.headers


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A broker of this module's own: these tests stop and restart it."""
    broker = Broker(tmp_path_factory.mktemp("kafka-faults"), free_port(), free_port())
    broker.start()
    yield broker
    broker.stop()


async def test_broker_outage_503_then_retries_land(own_broker: Broker, aiohttp_client: Any) -> None:
    settings = kafka_settings(own_broker.bootstrap)
    client = await ready_client(aiohttp_client, settings)
    raw, headers = signed(settings, "replicate")
    first = await client.post("/webhooks/replicate", data=raw, headers=headers)
    assert first.status == 200

    await asyncio.to_thread(own_broker.stop)
    try:
        pending = signed(settings, "abstrakt")
        response = await client.post("/webhooks/abstrakt", data=pending[0], headers=pending[1])
        assert response.status == 503
        assert response.headers["Retry-After"] == str(settings.limits.retry_after_seconds)
        await wait_until(lambda: not is_ready(client.app)[0], limit_seconds=30)
    finally:
        await asyncio.to_thread(own_broker.start)
    await wait_until(lambda: client.app[SINK].ready(), limit_seconds=60)
    retried = await client.post("/webhooks/abstrakt", data=pending[0], headers=pending[1])
    assert retried.status == 200
    answer = await retried.json()
    assert "duplicate" not in answer  # the 503 did not mark it as seen
    records = await read_topic(own_broker.bootstrap, settings.sink.kafka.topic)
    # At-least-once: the send that passed its deadline may still have landed after the broker
    # came back, so the retry can add a second copy. Consumers dedupe by event_id.
    ids = {r.headers["event_id"].decode() for r in records}
    assert ids == {(await first.json())["event_id"], answer["event_id"]}


async def test_no_loss_under_broker_restart(
    own_broker: Broker, aiohttp_client: Any, tmp_path: Path
) -> None:
    """2,000 distinct deliveries, concurrency 32, broker down and back mid-run; the client
    retries every non-2xx like a provider. Every event_id answered 2xx must be in the topic."""
    settings = kafka_settings(own_broker.bootstrap)
    settings = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"publish_timeout_seconds": 2.0})}
    )
    client = await ready_client(aiohttp_client, settings)
    sources = ["replicate", "openai", "abstrakt", "instantapi", "standard-webhooks", "fal"]
    deliveries = [signed(settings, sources[i % len(sources)]) for i in range(2000)]
    paths = [f"/webhooks/{sources[i % len(sources)]}" for i in range(2000)]
    acknowledged: dict[int, str] = {}
    attempts = Counter[int]()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(deliveries)):
        queue.put_nowait(i)

    async def provider() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            while True:
                attempts[i] += 1
                raw, headers = deliveries[i]
                try:
                    response = await client.post(paths[i], data=raw, headers=headers)
                    body = await response.json()
                except (OSError, TimeoutError):
                    await asyncio.sleep(0.2)
                    continue
                if response.status == 200:
                    acknowledged[i] = body["event_id"]
                    break
                assert response.status == 503, (response.status, body)
                await asyncio.sleep(0.2 + random.random() * 0.3)  # jitter, as providers do

    async def chaos() -> None:
        await wait_until(lambda: len(acknowledged) >= 500, limit_seconds=120)
        await asyncio.to_thread(own_broker.stop)
        await asyncio.sleep(3)
        await asyncio.to_thread(own_broker.start)

    await asyncio.gather(chaos(), *(provider() for _ in range(32)))
    assert len(acknowledged) == 2000
    records = await read_topic(own_broker.bootstrap, settings.sink.kafka.topic, limit_seconds=60)
    in_topic = Counter(r.headers["event_id"].decode() for r in records)
    missing = set(acknowledged.values()) - set(in_topic)
    duplicates = sum(n - 1 for n in in_topic.values() if n > 1)
    retried = sum(1 for n in attempts.values() if n > 1)
    print(
        f"\nno-loss: {len(acknowledged)} acknowledged, {len(records)} records, "
        f"{len(missing)} missing, {duplicates} duplicate records, {retried} deliveries retried"
    )
    assert missing == set()
    assert retried > 0  # the outage really happened mid-run


async def test_example_consumer_reads_and_dedupes(
    kafka_broker: Broker, aiohttp_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from examples.consume import consume

    settings = kafka_settings(kafka_broker.bootstrap)
    client = await ready_client(aiohttp_client, settings)
    raw, headers = signed(settings, "replicate", "succeeded", job_id="pred-consumer")
    assert (await client.post("/webhooks/replicate", data=raw, headers=headers)).status == 200
    raw, headers = signed(settings, "fal", "failed", job_id="fal-consumer")
    assert (await client.post("/webhooks/fal", data=raw, headers=headers)).status == 200
    # A second copy of the first record, as a cross-replica redelivery would produce.
    [first, *_] = await read_topic(kafka_broker.bootstrap, settings.sink.kafka.topic)
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.sink.kafka.topic, first.value, key=first.key, partition=first.partition
        )
    finally:
        await producer.stop()
    topic = settings.sink.kafka.topic
    handled = await consume(kafka_broker.bootstrap, topic, "g1", idle_exit_seconds=2)
    out = capsys.readouterr().out
    assert handled == 2
    assert f"duplicate {json.loads(first.value)['event_id']}: already handled" in out
    assert "replicate job pred-consumer succeeded: https://replicate.delivery/" in out
    assert "fal job fal-consumer failed: Invalid status code: 422" in out


async def test_events_tail_reads_the_kafka_topic(
    kafka_broker: Broker, aiohttp_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.tail import tail_kafka

    settings = kafka_settings(kafka_broker.bootstrap)
    client = await ready_client(aiohttp_client, settings)
    sent = []
    for i in range(5):
        raw, headers = signed(settings, "instantapi", job_id=f"task-{i}")
        response = await client.post("/webhooks/instantapi", data=raw, headers=headers)
        sent.append((await response.json())["event_id"])
    topic = settings.sink.kafka.topic
    assert await tail_kafka(kafka_broker.bootstrap, topic, lines=2, follow=False, pretty=False) == 0
    out = capsys.readouterr().out.splitlines()
    shown = [json.loads(line)["event_id"] for line in out if line.startswith("{")]
    # The last 2 records of each of the topic's 3 partitions: between 2 and 5 of the 5 sent.
    assert 2 <= len(shown) <= 5
    assert set(shown) <= set(sent)
    missing = await tail_kafka(kafka_broker.bootstrap, "no-such-topic", lines=2, follow=False,
                               pretty=False)  # fmt: skip
    assert missing == 1
