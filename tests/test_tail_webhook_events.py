"""``events tail --webhook-events`` on the Kafka sink reads ``sink.kafka.webhook_topic``."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.settings import load_settings
from gateway.sinks.kafka import KafkaSink
from tests.gateway_process import write_config
from tests.kafka_broker import Broker
from tests.kafka_tools import wait_until
from tests.log_records import job_event, webhook_event

pytestmark = pytest.mark.kafka


def test_events_tail_webhook_events_reads_the_webhook_topic(
    tmp_path: Path, kafka_broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    suffix = uuid.uuid4().hex[:8]
    config, _ = write_config(
        tmp_path,
        sink={
            "kind": "kafka",
            "kafka": {
                "bootstrap_servers": kafka_broker.bootstrap, "topic": f"jobs-{suffix}",
                "webhook_topic": f"hooks-{suffix}", "dead_letter_topic": f"dead-{suffix}",
                "create_topics": True, "partitions": 1, "replication_factor": 1,
            },
        },
    )  # fmt: skip
    settings = load_settings(config)

    async def publish() -> None:
        sink = KafkaSink(settings.sink.kafka, settings)
        sink.expect_passthrough()
        await sink.start()
        try:
            await wait_until(sink.ready, limit_seconds=60)
            for n in range(3):
                await sink.publish(webhook_event(n))
            await sink.publish(job_event(10))
        finally:
            await sink.close()

    asyncio.run(publish())
    capsys.readouterr()
    assert main(["events", "tail", "-n", "5", "--webhook-events", "--config", str(config)]) == 0
    shown = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert [e["event_id"] for e in shown] == [webhook_event(n).event_id for n in range(3)]
    assert {e["event_type"] for e in shown} == {"thing.happened"}
    assert main(["events", "tail", "-n", "5", "--config", str(config)]) == 0
    [job] = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert job["event_id"] == job_event(10).event_id
