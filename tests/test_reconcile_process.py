"""``webhook-gateway reconcile`` as a real process on the real Kafka and Redis: expectations
from the topic, SIGKILL mid-way and a restart lose no expectation and publish no second
terminal event; a malformed record is dead-lettered."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaProducer

from tests.fake_providers import FakeApi, FakeJob, serving
from tests.kafka_broker import Broker, free_port
from tests.kafka_tools import create_topic, read_topic
from tests.reconcile_support import reconcile_data
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

JOBS = 40


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "reconcile", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def terminal_jobs(bootstrap: str, topic: str) -> Counter[str]:
    records = await read_topic(bootstrap, topic)
    counts: Counter[str] = Counter()
    for record in records:
        event = json.loads(record.value)
        if event["status"] in ("succeeded", "failed", "canceled"):
            counts[event["job_id"]] += 1
    return counts


async def wait_for(predicate: Any, limit: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + limit
    while not await predicate():
        assert proc.poll() is None, f"the reconciler exited with {proc.returncode}"
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_sigkill_mid_way_loses_nothing_and_doubles_nothing(
    kafka_broker: Broker, live_redis: RedisServer, tmp_path: Path
) -> None:
    api = FakeApi("replicate")
    jobs = [f"pk{i:03d}" for i in range(JOBS)]
    for job_id in jobs:
        api.jobs[job_id] = FakeJob(done_after=2, delay=0.1)
    suffix = uuid.uuid4().hex[:8]
    bootstrap = kafka_broker.bootstrap
    events, dead, expect = f"jobs-{suffix}", f"dead-{suffix}", f"expect-{suffix}"
    async with serving(api):
        data = reconcile_data(
            live_redis.url,
            {"replicate": api},
            backoff_initial_seconds=0.3,
            batch_size=2,
            concurrency=2,
            expectations_topic=expect,
            consumer_group=f"reconciler-{suffix}",
            metrics_port=free_port(),
        )
        data["sink"] = {"kind": "kafka", "kafka": {
            "bootstrap_servers": bootstrap, "topic": events, "dead_letter_topic": dead,
            "create_topics": True, "partitions": 3, "replication_factor": 1,
            "request_timeout_ms": 3000}}  # fmt: skip
        data["admin"] = {"host": "127.0.0.1", "port": free_port()}
        data["logging"] = {"level": "info", "format": "json"}
        config = tmp_path / "gateway.yaml"
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        await create_topic(bootstrap, expect, partitions=3)
        submitted = datetime.fromtimestamp(time.time() - 120, tz=UTC).isoformat()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for job_id in jobs:
                value = {"source": "replicate", "job_id": job_id, "submitted_at": submitted,
                         "poll_after_seconds": 60}  # fmt: skip
                await producer.send_and_wait(
                    expect, json.dumps(value).encode(), key=f"replicate:{job_id}".encode()
                )
            await producer.send_and_wait(expect, b"{not json", key=b"replicate:bad")
        finally:
            await producer.stop()

        log = tmp_path / "reconciler.log"
        first = start(config, log)
        try:

            async def some_done() -> bool:
                return len(await terminal_jobs(bootstrap, events)) >= 3

            await wait_for(some_done, 60, first)
        finally:
            first.kill()  # SIGKILL: no shutdown, leases and claims left behind
            first.wait()
        at_kill = await terminal_jobs(bootstrap, events)
        assert 0 < len(at_kill) < JOBS, "the kill was not mid-way"

        second = start(config, log)
        try:

            async def all_done() -> bool:
                return len(await terminal_jobs(bootstrap, events)) == JOBS

            await wait_for(all_done, 90, second)
            await asyncio.sleep(1.0)  # a second terminal event would show by now
        finally:
            second.terminate()
            second.wait(30)
        assert second.returncode == 0, log.read_text()

    counts = await terminal_jobs(bootstrap, events)
    assert set(counts) == set(jobs)  # no expectation lost
    assert set(counts.values()) == {1}, counts  # no job ended twice
    assert all(api.jobs[j].max_in_flight == 1 for j in jobs)
    letters = [json.loads(r.value) for r in await read_topic(bootstrap, dead)]
    assert [(d["source"], d["reason"]) for d in letters] == [("_expectations", "invalid_json")]
    assert "test-provider-key" not in log.read_text()  # the API key never reaches the log
