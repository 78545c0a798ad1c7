"""Run the gateway with stages of a delivery replaced by no-ops (for ``bench/breakdown.py``).

Removing a stage and measuring again is the one way to learn what it costs under real load:
a profiler slows what it samples, and a microbenchmark of a stage misses the cache and
event-loop effects of the whole process. Stages are removed in a fixed order, each variant
keeping the previous removals, so the differences between variants add up to the total::

    python -m bench.knockout metrics serve --config gateway.yaml   # log and metrics removed

A knocked-out gateway is not a gateway: with ``sink`` removed it publishes nothing and still
answers 200. It exists only to be measured.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.sinks.base import Event

#: In removal order: ``metrics`` means log and metrics are both removed, and so on.
STAGES = ("log", "metrics", "sink", "event", "pipeline")
#: Not a removal in that order: the pipeline replaced by the publish of one prebuilt event
#: through the real sink path (the publish deadline, the sink's encoding and send), the log line
#: and metrics kept. HTTP and Kafka alone, so the two largest costs can be read apart, each
#: measured with the other absent, and their sum held against the whole gateway.
PUBLISH_ONLY = "publish-only"


def removed(last: str) -> tuple[str, ...]:
    """The stages a variant removes: ``last`` and everything before it."""
    if last == "none":
        return ()
    if last not in STAGES:
        raise ValueError(f"unknown stage {last!r}: one of none, {', '.join(STAGES)}")
    return STAGES[: STAGES.index(last) + 1]


def apply(stages: tuple[str, ...]) -> None:
    from gateway import app, ingest

    if "log" in stages:  # the per-request log line
        app._log = lambda *_: None
    if "metrics" in stages:  # the per-request metrics
        app._record = lambda *_: None
    if "sink" in stages:  # the sink write under its deadline (Kafka: produce and await ack)

        async def publish(_: ingest.Pipeline, write: Any) -> None:
            write.close()  # the sink's coroutine, never awaited

        ingest.Pipeline._publish = publish  # type: ignore[method-assign,assignment]
    if "event" in stages:  # building the canonical JobEvent
        ingest.build_event = lambda *_: None  # type: ignore[assignment]
    if "pipeline" in stages:  # verify, parse, normalize, ids and dedupe: all of it

        async def handle(*_: Any) -> ingest.Outcome:
            return ingest.Outcome(200, "accepted", event_id="evt_knockout")

        ingest.Pipeline.handle = handle  # type: ignore[method-assign,assignment]


def sample_event() -> Event:
    """The event of one real HMAC-set delivery, through the real pipeline in process."""
    import asyncio
    import time

    from bench import deliveries
    from bench.pipeline_cost import example_pipeline, one_round, signed
    from gateway.sinks.memory import MemorySink

    sink = MemorySink()
    pipeline, signer = example_pipeline(sink)
    source, example = next(deliveries.turns(deliveries.SETS["hmac"], 1))

    async def deliver() -> None:
        await sink.start()
        await one_round(pipeline, [(source, *signed(signer, source, example, int(time.time())))])

    asyncio.run(deliver())  # one_round raises unless the delivery is accepted
    return sink.events[0][1]


def publish_only(event: Event) -> None:
    """Replace the pipeline with the publish of ``event`` under the real deadline and sink."""
    from gateway import ingest

    async def handle(pipeline: ingest.Pipeline, source: ingest.Source, *_: Any) -> ingest.Outcome:
        failure = await pipeline._publish(pipeline.sink.publish(event, topic=source.topic))
        if failure is not None:
            return ingest.Outcome(503, "unavailable", failure)
        return ingest.Outcome(200, "accepted", event_id=event.event_id)

    ingest.Pipeline.handle = handle  # type: ignore[method-assign,assignment]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        variants = "|".join(("none", *STAGES, PUBLISH_ONLY))
        print(f"usage: python -m bench.knockout {variants} serve ...", file=sys.stderr)
        return 2
    if args[0] == PUBLISH_ONLY:
        publish_only(sample_event())
    else:
        apply(removed(args[0]))
    from gateway.cli import main as gateway_main

    return gateway_main(args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
