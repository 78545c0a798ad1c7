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
from typing import Any

#: In removal order: ``metrics`` means log and metrics are both removed, and so on.
STAGES = ("log", "metrics", "sink", "event", "pipeline")


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


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(f"usage: python -m bench.knockout none|{'|'.join(STAGES)} serve ...", file=sys.stderr)
        return 2
    apply(removed(args[0]))
    from gateway.cli import main as gateway_main

    return gateway_main(args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
