"""Read canonical job events from Kafka, as a downstream service should.

    python examples/consume.py --bootstrap 127.0.0.1:9092 --group my-service

* Values are validated with the ``schemas`` package (the same model the gateway writes).
* Delivery is at-least-once: the same ``event_id`` can arrive twice (a provider retry after a
  timeout, a redelivery landing on another gateway replica). Handle each ``event_id`` once:
  here with a bounded in-memory set; in production, with a unique key in the database write
  that the handling performs, so "handled" and "recorded as handled" commit together.
* Offsets are committed after handling, so a crash replays rather than skips.
* One job's events share a partition (key ``source:job_id``), so they arrive in order.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections import OrderedDict

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from schemas import JobEvent, JobStatus


class SeenEvents:
    """The last ``size`` event ids handled, oldest forgotten first."""

    def __init__(self, size: int = 100_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def first_time(self, event_id: str) -> bool:
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True


def handle(event: JobEvent) -> None:
    """Your business logic. Output URLs may expire within the hour: copy them promptly."""
    if event.status is JobStatus.SUCCEEDED:
        urls = ", ".join(o.url for o in event.outputs) or "no outputs"
        print(f"{event.source} job {event.job_id} succeeded: {urls}")
    elif event.status is JobStatus.FAILED:
        message = event.error.message if event.error else None
        print(f"{event.source} job {event.job_id} failed: {message}")
    else:
        print(f"{event.source} job {event.job_id} is {event.status}")


async def consume(
    bootstrap: str,
    topic: str,
    group: str,
    max_events: int | None = None,
    idle_exit_seconds: float | None = None,
) -> int:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    seen = SeenEvents()
    handled = 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await consumer.start()
    idle_since = loop.time()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            if batches:
                idle_since = loop.time()
            elif idle_exit_seconds is not None and loop.time() - idle_since > idle_exit_seconds:
                break
            for messages in batches.values():
                for message in messages:
                    try:
                        event = JobEvent.model_validate_json(message.value or b"")
                    except ValidationError as exc:
                        # A record this consumer cannot read: park it, never crash-loop on it.
                        print(f"skipping unreadable record at offset {message.offset}: {exc}")
                        continue
                    if seen.first_time(event.event_id):
                        handle(event)
                        handled += 1
                    else:
                        print(f"duplicate {event.event_id}: already handled")
            if batches:
                await consumer.commit()
            if max_events is not None and handled >= max_events:
                break
    finally:
        await consumer.stop()
    return handled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="webhooks.job-events")
    parser.add_argument("--group", default="example-consumer")
    parser.add_argument("--max-events", type=int, default=None, help="stop after N events")
    parser.add_argument("--idle-exit", type=float, default=None, help="stop after N idle seconds")
    args = parser.parse_args()
    # aiokafka logs transient states (a group coordinator still starting) as warnings.
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(consume(args.bootstrap, args.topic, args.group, args.max_events, args.idle_exit))


if __name__ == "__main__":
    main()
