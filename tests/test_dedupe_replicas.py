"""Real gateway processes sharing one redis-server and one Kafka broker.

* many deliveries, each sent concurrently to both processes several times: one record per
  event id in the topic, every other answer ``duplicate``; after a restart, a redelivery is
  still a duplicate;
* Redis stopped in the middle of a load: ``publish`` answers no 5xx and loses nothing
  acknowledged, ``reject`` answers only 503 + Retry-After; Redis back, dedupe resumes;
* a claim whose owner is SIGKILLed expires, and the provider's retry is then accepted.
"""

from __future__ import annotations

import asyncio
import collections
import json
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from gateway.settings import Settings
from tests.gateway_process import gateway_process, wait_ready, write_config
from tests.kafka_broker import Broker
from tests.kafka_tools import create_topic, read_topic
from tests.redis_server import RedisServer
from tests.support import PROVIDERS, example_settings, signed

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

Delivery = tuple[str, bytes, dict[str, str]]


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    retry_after: str | None


@dataclass
class Replica:
    port: int
    admin: int
    proc: subprocess.Popen[bytes]


@dataclass
class Deployment:
    """What the replicas of one test share: a topic pair and a key prefix."""

    tmp_path: Path
    broker: Broker
    redis: RedisServer
    topic: str
    prefix: str

    def config(self, name: str, **dedupe: Any) -> tuple[Path, int, int]:
        directory = self.tmp_path / name
        directory.mkdir(exist_ok=True)
        limits = dedupe.pop("limits", {})
        path, data = write_config(
            directory,
            limits={"publish_timeout_seconds": 5, **limits},
            sink={
                "kind": "kafka",
                "kafka": {
                    "bootstrap_servers": self.broker.bootstrap,
                    "topic": self.topic,
                    "dead_letter_topic": f"{self.topic}.dead",
                    "webhook_topic": f"{self.topic}.events",
                    "create_topics": False,
                    "request_timeout_ms": 3000,
                },
            },
            dedupe={
                "kind": "redis",
                "redis": {
                    "url": {"id": "redis", "value": self.redis.url},
                    "key_prefix": self.prefix,
                    "retry_interval_seconds": 0.5,
                    **dedupe.pop("redis", {}),
                },
                **dedupe,
            },
        )
        return path, data["listen"]["port"], data["admin"]["port"]

    @contextmanager
    def replica(self, name: str, module: str = "gateway.cli", **dedupe: Any) -> Iterator[Replica]:
        """A running ``webhook-gateway serve``."""
        path, port, admin = self.config(name, **dedupe)
        with gateway_process(path, log=self.tmp_path / f"{name}.log", module=module) as proc:
            wait_ready(admin, proc=proc)
            yield Replica(port, admin, proc)


@pytest.fixture
async def deployment(
    tmp_path: Path, kafka_broker: Broker, live_redis: RedisServer
) -> AsyncIterator[Deployment]:
    suffix = uuid.uuid4().hex[:8]
    topic = f"dedupe-{suffix}"
    await create_topic(kafka_broker.bootstrap, topic, partitions=3)
    await create_topic(kafka_broker.bootstrap, f"{topic}.dead")
    await create_topic(kafka_broker.bootstrap, f"{topic}.events")
    yield Deployment(tmp_path, kafka_broker, live_redis, topic, f"gw-{suffix}")
    live_redis.start()  # a test that stopped it and failed must not break the next


@pytest.fixture
def signing() -> Settings:
    return example_settings()


def deliveries(settings: Settings, count: int) -> list[Delivery]:
    out = []
    for i in range(count):
        source = PROVIDERS[i % len(PROVIDERS)]
        raw, headers = signed(settings, source)
        out.append((source, raw, headers))
    return out


async def post(session: aiohttp.ClientSession, port: int, delivery: Delivery) -> Answer:
    source, raw, headers = delivery
    url = f"http://127.0.0.1:{port}/webhooks/{source}"
    async with session.post(url, data=raw, headers=headers) as response:
        return Answer(response.status, await response.json(), response.headers.get("Retry-After"))


async def topic_event_ids(broker: Broker, topic: str) -> collections.Counter[str]:
    records = await read_topic(broker.bootstrap, topic)
    return collections.Counter(json.loads(r.value)["event_id"] for r in records)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        yield client


async def test_two_replicas_publish_each_delivery_once_and_remember_it_after_a_restart(
    deployment: Deployment, signing: Settings, session: aiohttp.ClientSession
) -> None:
    sent = deliveries(signing, 36)
    copies_per_replica = 3
    with ExitStack() as stack:
        replicas = [stack.enter_context(deployment.replica(name)) for name in ("a", "b")]
        parallel = asyncio.Semaphore(6)

        async def all_copies(delivery: Delivery) -> list[Answer]:
            async with parallel:  # the copies of one delivery race each other
                return await asyncio.gather(
                    *(post(session, r.port, delivery) for r in replicas
                      for _ in range(copies_per_replica))
                )  # fmt: skip

        answers = await asyncio.gather(*(all_copies(d) for d in sent))
        accepted: list[str] = []
        for copies in answers:
            assert [a.status for a in copies] == [200] * 2 * copies_per_replica, copies
            event_ids = {a.body["event_id"] for a in copies}
            assert len(event_ids) == 1
            fresh = [a for a in copies if not a.body.get("duplicate")]
            assert len(fresh) == 1, copies  # one accepted, every other copy a duplicate
            accepted.append(fresh[0].body["event_id"])
        in_topic = await topic_event_ids(deployment.broker, deployment.topic)
        assert in_topic == collections.Counter(accepted)  # exactly one record per event id

        stack.close()  # both replicas stop: their memory levels are gone
    with deployment.replica("a") as restarted:
        again = await asyncio.gather(*(post(session, restarted.port, d) for d in sent[:12]))
        assert [a.status for a in again] == [200] * 12
        assert all(a.body.get("duplicate") is True for a in again), again
    assert await topic_event_ids(deployment.broker, deployment.topic) == in_topic


async def redis_stopped_mid_load(
    deployment: Deployment,
    session: aiohttp.ClientSession,
    ports: tuple[int, int],
    sent: list[Delivery],
) -> list[tuple[Delivery, list[Answer]]]:
    """Each delivery to both replicas at once; Redis stops after a third, returns after two.

    Redis is stopped while the first third's last deliveries are in flight; the second third
    waits until it is really down (and the last until it is back): on a loaded machine the
    stop can take longer than the load, which would then never meet it.
    """
    done = 0
    third = len(sent) // 3
    down, up = asyncio.Event(), asyncio.Event()
    stopped, started = asyncio.Event(), asyncio.Event()
    parallel = asyncio.Semaphore(8)

    async def both(index: int, delivery: Delivery) -> tuple[Delivery, list[Answer]]:
        nonlocal done
        if index >= third:
            await stopped.wait()
        if index >= 2 * third:
            await started.wait()
        async with parallel:
            answers = await asyncio.gather(*(post(session, p, delivery) for p in ports))
        done += 1
        if done == third - 8:  # the last deliveries of the first third are still in flight
            down.set()
        elif done == 2 * third:
            up.set()
        return delivery, list(answers)

    async def operator() -> None:
        await down.wait()
        await asyncio.to_thread(deployment.redis.stop)
        stopped.set()
        await up.wait()
        await asyncio.to_thread(deployment.redis.start)
        started.set()

    pending = asyncio.gather(*(both(i, d) for i, d in enumerate(sent)))
    results, _ = await asyncio.gather(pending, operator())
    return list(results)


async def dedupe_works_again(
    session: aiohttp.ClientSession, ports: tuple[int, int], signing: Settings
) -> None:
    await asyncio.sleep(1.0)  # past the retry interval: the next call probes Redis
    fresh = deliveries(signing, 1)[0]
    first = await post(session, ports[0], fresh)
    second = await post(session, ports[1], fresh)
    assert first.status == second.status == 200
    assert "duplicate" not in first.body
    assert second.body.get("duplicate") is True  # shared again, with no restart


async def store_errors(session: aiohttp.ClientSession, admin_port: int) -> float:
    async with session.get(f"http://127.0.0.1:{admin_port}/metrics") as response:
        text = await response.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("webhook_gateway_dedupe_store_errors_total{")
    )


@pytest.mark.parametrize("mode", ["publish", "reject"])
async def test_redis_stopped_in_the_middle_of_a_load(
    deployment: Deployment, signing: Settings, session: aiohttp.ClientSession, mode: str
) -> None:
    sent = deliveries(signing, 90)
    with ExitStack() as stack:
        replicas = [
            stack.enter_context(deployment.replica(name, on_store_error=mode)) for name in "ab"
        ]
        ports = (replicas[0].port, replicas[1].port)
        results = await redis_stopped_mid_load(deployment, session, ports, sent)
        answers = [a for _, copies in results for a in copies]
        acknowledged = {a.body["event_id"] for a in answers if a.status == 200}
        if mode == "publish":
            assert {a.status for a in answers} == {200}  # no 5xx: fail-open
        else:
            refused = [a for a in answers if a.status != 200]
            assert refused, "Redis was down for a third of the load: some copies must be refused"
            for answer in refused:
                assert answer.status == 503
                assert answer.body == {"error": "dedupe_unavailable"}
                assert answer.retry_after is not None
            # The providers retry what was refused, once Redis is back.
            await asyncio.sleep(1.0)
            retried = [d for d, copies in results if all(a.status != 200 for a in copies)]
            for delivery in retried:
                answer = await post(session, ports[0], delivery)
                assert answer.status == 200
                acknowledged.add(answer.body["event_id"])
            assert len(acknowledged) == len(sent)
        in_topic = await topic_event_ids(deployment.broker, deployment.topic)
        assert acknowledged - set(in_topic) == set()  # nothing acknowledged is missing
        for replica in replicas:
            assert await store_errors(session, replica.admin) > 0
        await dedupe_works_again(session, ports, signing)


async def test_a_killed_owners_claim_expires_and_the_retry_is_accepted(
    deployment: Deployment, signing: Settings, session: aiohttp.ClientSession
) -> None:
    def timing() -> dict[str, Any]:
        return {"limits": {"publish_timeout_seconds": 2}, "redis": {"claim_ttl_seconds": 4}}

    delivery = deliveries(signing, 1)[0]
    direct = Redis.from_url(deployment.redis.url)
    pattern = f"{deployment.prefix}:dedupe:*"
    try:
        with deployment.replica("survivor", **timing()) as survivor:
            with deployment.replica("owner", module="tests.stalled_sink", **timing()) as owner:
                in_flight = asyncio.create_task(post(session, owner.port, delivery))
                async with asyncio.timeout(10):
                    while not await direct.keys(pattern):  # noqa: ASYNC110 - Redis has no event
                        await asyncio.sleep(0.01)
                # The owner holds the claim and its write never ends: it dies holding it.
                owner.proc.send_signal(signal.SIGKILL)
                owner.proc.wait(10)
                with pytest.raises(aiohttp.ClientError):
                    await in_flight
            [key] = await direct.keys(pattern)
            assert await direct.get(key) != b"c"
            # The provider's retry while the dead owner's claim lives: 503, retry later.
            early = await post(session, survivor.port, delivery)
            assert early.status == 503
            assert early.body == {"error": "delivery_in_progress"}
            assert early.retry_after is not None
            async with asyncio.timeout(10):
                while await direct.exists(key):  # noqa: ASYNC110 - expiry has no event
                    await asyncio.sleep(0.05)
            retry = await post(session, survivor.port, delivery)
            assert retry.status == 200
            assert "duplicate" not in retry.body
            # The commit lands just after the answer (the 2xx waits for the sink only).
            async with asyncio.timeout(5):
                while await direct.get(key) != b"c":  # noqa: ASYNC110 - no event to wait on
                    await asyncio.sleep(0.01)
        in_topic = await topic_event_ids(deployment.broker, deployment.topic)
        assert in_topic == collections.Counter([retry.body["event_id"]])
    finally:
        await direct.aclose()
