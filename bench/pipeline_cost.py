"""What the gateway's own pipeline costs per delivery, in process: no HTTP, no Kafka, no log.

``python -m bench.pipeline_cost [--sets hmac,standard-webhooks,fal] [--count 5000] [--rounds 5]``

The public app is built from the example config on a sink that encodes each event to its
JSON bytes, as the Kafka sink does, and keeps nothing. Pre-signed, distinct deliveries of each
set (``bench/deliveries.py``) go through ``Pipeline.handle``: verify, parse, normalize, event
id, dedupe claim and commit, the event build and its JSON. Sets take turns round by round with
fresh deliveries (none is a duplicate), and the median round is kept, because this machine is
shared. Printed: process CPU microseconds per delivery, from ``time.process_time``.

This is the measure for a change to the pipeline itself: a ``bench-quick`` A/B moves by about
8 % between runs of the same code, more than most such changes save (``docs/benchmark.md``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import uvloop
from multidict import CIMultiDict, CIMultiDictProxy

from bench import deliveries
from gateway.app import PIPELINE, create_app
from gateway.ingest import Pipeline
from gateway.settings import load_settings
from gateway.sinks.base import Event
from gateway.sinks.memory import MemorySink

Delivery = tuple[str, bytes, CIMultiDictProxy[str]]


class EncodingSink(MemorySink):
    """Encodes every event as the Kafka sink does, and keeps nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.encoded = 0

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        event.model_dump_json().encode()
        self.encoded += 1


def signed(
    signer: deliveries.Signer, source: str, example: str, now: int
) -> tuple[bytes, CIMultiDictProxy[str]]:
    """A delivery's body and headers as aiohttp hands them to the pipeline."""
    raw, headers = signer.delivery(source, example, now)
    return raw, CIMultiDictProxy(CIMultiDict(headers))


async def one_round(pipeline: Pipeline, batch: list[Delivery]) -> float:
    started = time.process_time()
    for source, body, headers in batch:
        outcome = await pipeline.handle(pipeline.sources[source], body, headers)
        if outcome.outcome != "accepted":
            raise RuntimeError(f"{source}: {outcome.status} {outcome.outcome} {outcome.reason}")
    return (time.process_time() - started) / len(batch) * 1e6


def example_pipeline(sink: MemorySink) -> tuple[Pipeline, deliveries.Signer]:
    """The example config's pipeline writing to ``sink``, and a signer for its sources."""
    settings = load_settings(deliveries.EXAMPLE_CONFIG)
    return create_app(settings, sink=sink)[PIPELINE], deliveries.Signer.from_settings(settings)


async def measure(sets: list[str], count: int, rounds: int) -> dict[str, list[float]]:
    sink = EncodingSink()
    pipeline, signer = example_pipeline(sink)
    now = int(time.time())
    samples: dict[str, list[float]] = {name: [] for name in sets}
    for _ in range(rounds + 1):  # the first round warms caches and is not kept
        for name in sets:
            batch = [
                (source, *signed(signer, source, example, now))
                for source, example in deliveries.turns(deliveries.SETS[name], count)
            ]
            samples[name].append(await one_round(pipeline, batch))
    if sink.encoded != (rounds + 1) * count * len(sets):
        raise RuntimeError(f"{sink.encoded} events encoded")
    return {name: values[1:] for name, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="hmac,standard-webhooks,fal")
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    unknown = sorted(set(sets) - set(deliveries.SETS))
    if unknown or not sets or args.count < 1 or args.rounds < 1:
        parser.error(f"sets from {', '.join(deliveries.SETS)}; count and rounds at least 1")
    samples = uvloop.run(measure(sets, args.count, args.rounds))
    print(f"| set | µs per delivery, median of {args.rounds} | min | max |")
    print("|---|---:|---:|---:|")
    for name, values in samples.items():
        print(
            f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
