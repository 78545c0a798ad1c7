"""SIGKILL under load: of the gateway (local sink and Kafka), and of the Kafka broker.

Nothing a provider was told we accepted may be missing afterwards. A gateway killed -9 gets no
chance to flush, so this holds only if every 2xx really followed the fsync or the broker's
acknowledgement; the restarted gateway must start on the same data (the same log, torn tail
and all, or the same topic). A broker killed -9 and restarted must find the gateway recovering
on its own; the test prints how long that took.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.sinks.local_log import EVENTS_FILE
from gateway.sinks.log_files import rotated_segments
from tests.deliveries import Delivery, deliveries, post_all, readiness
from tests.gateway_process import gateway_process, wait_ready, write_config
from tests.kafka_broker import Broker, free_port, listening
from tests.kafka_tools import read_topic
from tests.log_records import event_ids, strict_event_ids
from tests.support import example_settings

CONNECTIONS = 32


def _kafka_sink(bootstrap: str, topic: str) -> dict[str, Any]:
    return {
        "kind": "kafka",
        "kafka": {
            "bootstrap_servers": bootstrap, "topic": topic, "dead_letter_topic": topic + "-dl",
            "create_topics": True, "partitions": 3, "replication_factor": 1,
            "request_timeout_ms": 3000,
        },
    }  # fmt: skip


async def _load_then_kill(
    port: int, batch: list[Delivery], proc: subprocess.Popen[bytes], kill_after: int
) -> tuple[set[str], int]:
    """Post ``batch`` over ``CONNECTIONS`` connections; SIGKILL the gateway once ``kill_after``
    deliveries were acknowledged. Returns the acknowledged event ids and how many failed."""
    accepted: set[str] = set()
    failed = 0
    enough = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(delivery: Delivery) -> None:
            nonlocal failed
            url = f"http://127.0.0.1:{port}/webhooks/{delivery.source}"
            try:
                async with session.post(url, data=delivery.raw, headers=delivery.headers) as r:
                    body = await r.json()
                    if r.status == 200:
                        accepted.add(body["event_id"])
                        if len(accepted) >= kill_after:
                            enough.set()
                        return
                    assert r.status == 503, (r.status, body)
            except (aiohttp.ClientError, OSError):
                pass  # the connection died with the process: a provider retries it
            failed += 1

        tasks = [asyncio.create_task(one(d)) for d in batch]
        async with asyncio.timeout(120):
            await enough.wait()
        proc.send_signal(signal.SIGKILL)
        async with asyncio.timeout(60):
            await asyncio.gather(*tasks)
    return accepted, failed


def _kill_and_restart(
    tmp_path: Path,
    sink: dict[str, Any],
    written: Any,
    total: int = 3000,
    kill_after: int = 800,
    after_kill: Any = None,
) -> Path:
    """Load, SIGKILL, check; restart on the same config, deliver more, check everything."""
    config, data = write_config(tmp_path, sink=sink)
    port, admin = data["listen"]["port"], data["admin"]["port"]
    settings = example_settings()
    batch = deliveries(settings, total)
    with gateway_process(config, log=tmp_path / "first.log") as proc:
        wait_ready(admin, proc=proc)
        accepted, failed = asyncio.run(_load_then_kill(port, batch, proc, kill_after))
        assert proc.wait(10) == -signal.SIGKILL
    assert failed, "the kill came after the load had ended"
    missing = accepted - set(written())
    print(f"\nsigkill ({sink['kind']}): {len(accepted)} acknowledged, {failed} cut off, "
          f"{len(missing)} missing")  # fmt: skip
    assert missing == set()
    if after_kill is not None:
        after_kill()

    with gateway_process(config, log=tmp_path / "second.log") as proc:
        wait_ready(admin, proc=proc)
        fresh = asyncio.run(post_all(port, deliveries(settings, 30, start=total), concurrency=8))
        assert {a.status for a in fresh} == {200}
        # A redelivery of what the first process accepted: its dedupe died with it, so it is
        # written again, with the same deterministic event id.
        again = asyncio.run(post_all(port, batch[:6]))
        assert {a.status for a in again} == {200}
        assert {a.event_id for a in again} <= accepted
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    after = set(written())
    assert accepted <= after
    assert {a.event_id for a in fresh} <= after
    return tmp_path / "second.log"


def test_gateway_sigkill_under_load_local_sink(tmp_path: Path) -> None:
    directory = tmp_path / "events"
    # Small segments, so the load crosses several rotations before the kill.
    sink = {"kind": "local", "local": {"directory": str(directory), "rotate_bytes": 256 * 1024}}
    killed_once = False

    def written() -> list[str]:
        nonlocal killed_once
        if not killed_once:
            killed_once = True
            return event_ids(directory, EVENTS_FILE)  # may end in a torn line: left out
        return strict_event_ids(directory, EVENTS_FILE)  # the restart cut it: all whole

    def tear() -> None:
        """The kill may or may not have caught a write half done: make sure one did."""
        with (directory / EVENTS_FILE).open("ab") as log:
            log.write(b'{"schema_version":"1","event_id":"evt_torn","source":"fal","pro')

    second_log = _kill_and_restart(tmp_path, sink, written, after_kill=tear)
    assert len(rotated_segments(directory, EVENTS_FILE)) >= 2
    assert '"local_log_torn_tail_dropped"' in second_log.read_text(encoding="utf-8")


@pytest.mark.kafka
def test_gateway_sigkill_under_load_kafka_sink(tmp_path: Path, kafka_broker: Broker) -> None:
    topic = f"sigkill-{uuid.uuid4().hex[:8]}"

    def written() -> list[str]:
        records = asyncio.run(read_topic(kafka_broker.bootstrap, topic, limit_seconds=60))
        return [r.headers["event_id"].decode() for r in records]

    _kill_and_restart(tmp_path, _kafka_sink(kafka_broker.bootstrap, topic), written)


@pytest.fixture(scope="module")
def crash_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker of this module's own: the test kills it."""
    broker = Broker(tmp_path_factory.mktemp("kafka-sigkill"), free_port(), free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class ReadinessWatch:
    """Polls ``/readyz`` every 50 ms on a thread; remembers when it flipped."""

    def __init__(self, admin_port: int) -> None:
        self.admin_port = admin_port
        self.flips: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ReadinessWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        last: bool | None = None
        while not self._stop.wait(0.05):
            ready = readiness(self.admin_port)[0] == 200
            if ready != last:
                self.flips.append((time.monotonic(), ready))
                last = ready

    def first(self, ready: bool, after: float) -> float | None:
        return next((t for t, r in self.flips if r is ready and t >= after), None)


@pytest.mark.kafka
def test_broker_sigkill_under_load_recovers_without_restart(
    tmp_path: Path, crash_broker: Broker
) -> None:
    """2,000 distinct deliveries over 32 connections, each retried on non-2xx like a provider
    does; the broker is killed -9 mid-run and restarted. Every acknowledged event is in the
    topic and the same gateway process takes deliveries again."""
    topic = f"brokerkill-{uuid.uuid4().hex[:8]}"
    sink = _kafka_sink(crash_broker.bootstrap, topic)
    config, data = write_config(tmp_path, sink=sink, limits={"publish_timeout_seconds": 2.0})
    port, admin = data["listen"]["port"], data["admin"]["port"]
    batch = deliveries(example_settings(), 2000)
    acknowledged: dict[int, tuple[str, float, float]] = {}  # index -> id, sent, answered
    attempts = Counter[int]()
    moments: dict[str, float] = {}

    async def drive() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(batch)):
            queue.put_nowait(i)
        connector = aiohttp.TCPConnector(limit=CONNECTIONS)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def provider() -> None:
                while not queue.empty():
                    i = queue.get_nowait()
                    delivery = batch[i]
                    url = f"http://127.0.0.1:{port}/webhooks/{delivery.source}"
                    while True:
                        attempts[i] += 1
                        sent = time.monotonic()
                        async with session.post(
                            url, data=delivery.raw, headers=delivery.headers
                        ) as r:
                            body = await r.json()
                        if r.status == 200:
                            acknowledged[i] = (body["event_id"], sent, time.monotonic())
                            break
                        assert r.status == 503, (r.status, body)
                        await asyncio.sleep(0.2 + random.random() * 0.3)  # jitter, as providers

            async def chaos() -> None:
                async with asyncio.timeout(120):
                    while len(acknowledged) < 500:  # noqa: ASYNC110 - counted by the providers
                        await asyncio.sleep(0.05)
                moments["killed"] = time.monotonic()
                await asyncio.to_thread(crash_broker.kill)
                await asyncio.sleep(1)
                starting = asyncio.create_task(asyncio.to_thread(crash_broker.start))
                # The broker takes connections a little before its start script says ready:
                # recovery is counted from the first moment it listens again.
                while not listening(crash_broker.port) and not starting.done():  # noqa: ASYNC110
                    await asyncio.sleep(0.05)  # a port to poll: there is no event to wait on
                moments["back"] = time.monotonic()
                await starting

            async with asyncio.timeout(240):
                await asyncio.gather(chaos(), *(provider() for _ in range(CONNECTIONS)))

    with gateway_process(config, log=tmp_path / "gateway.log") as proc:
        wait_ready(admin, proc=proc)
        with ReadinessWatch(admin) as watch:
            asyncio.run(drive())
        assert proc.poll() is None  # the same process throughout: no restart
    assert len(acknowledged) == len(batch)
    records = asyncio.run(read_topic(crash_broker.bootstrap, topic, limit_seconds=60))
    in_topic = Counter(r.headers["event_id"].decode() for r in records)
    missing = {event_id for event_id, _, _ in acknowledged.values()} - set(in_topic)

    killed, back = moments["killed"], moments["back"]
    first_ack = min(answered for _, _, answered in acknowledged.values() if answered >= back)
    not_ready = watch.first(False, killed)
    ready_again = watch.first(True, back)
    retried = sum(1 for n in attempts.values() if n > 1)
    refused = sum(attempts.values()) - len(batch)
    assert not_ready is not None, "/readyz stayed true while the broker was down"
    assert ready_again is not None, "/readyz did not come back without a restart"
    print(
        f"\nbroker sigkill: broker away {back - killed:.1f} s (kill, 1 s, restart until it "
        f"listens); /readyz false {not_ready - killed:.2f} s after the kill; once the broker "
        f"was back, the first 2xx after {first_ack - back:.2f} s and /readyz true after "
        f"{ready_again - back:.2f} s; "
        f"{len(batch)} acknowledged, {len(missing)} missing, {refused} answers 503 over "
        f"{retried} deliveries, {sum(in_topic.values()) - len(in_topic)} duplicate records"
    )
    assert missing == set()
    assert retried > 0  # the outage really happened mid-run
    assert not_ready < back  # readiness said so while the broker was down
