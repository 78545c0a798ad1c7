"""One target per provider adapter: a fuzzed delivery through the real pipeline.

The input decides the body, the headers (names drawn from the ones the adapter reads, or
arbitrary), the clock, and whether the body is first signed correctly with the source's key,
so the fuzzer reaches parsing and normalization too, not only the refusals. The pipeline runs
as in the gateway (verify, ids, dedupe, parse, normalize, the canonical event, the sink's
serialization) with a sink that serializes exactly as the local log and Kafka sinks do.

Invariant: the outcome is never a 5xx (only an unexpected exception would make one, and it
propagates here as the crash), and an accepted event serializes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from multidict import CIMultiDict, CIMultiDictProxy

from adapters import ADAPTERS, Adapter, GatewayError, NamedSecret, SourceSpec, build_adapter
from adapters.primitives import standard_webhooks as sw
from fuzz.reader import Reader, Writer
from gateway.dedupe import DedupeStore
from gateway.ingest import Outcome, Pipeline, Source
from gateway.settings import load_settings
from gateway.sinks.base import Event, Sink
from schemas import DeadLetter

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE_CONFIG = ROOT / "deploy" / "gateway.example.yaml"
#: The clock every delivery is judged at (plus a fuzzed offset), and the one seeds are signed at.
NOW = 1_800_000_000
MAX_BODY = 16 * 1024

_COMMON_HEADERS = (
    "content-type",
    "user-agent",
    "x-request-id",
    *sw.ID_HEADERS,
    *sw.TIMESTAMP_HEADERS,
    *sw.SIGNATURE_HEADERS,
)


class SerializingSink(Sink):
    """Accepts everything, after serializing it as the durable sinks do."""

    kind: ClassVar[str] = "fuzz"

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def ready(self) -> bool:
        return True

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        event.model_dump_json().encode()
        event.partition_key.encode()
        event.event_id.encode()

    async def publish_dead_letter(self, record: DeadLetter) -> None:
        record.model_dump_json().encode()
        record.partition_key.encode()


class DeliveryTarget:
    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self.source = Source(adapter.spec.name, adapter)
        signed = adapter.sign(b"{}", NOW, delivery_id="d")
        self.header_names = tuple(
            dict.fromkeys([*(n.lower() for n in signed), *_COMMON_HEADERS]).keys()
        )
        self.loop = asyncio.new_event_loop()
        #: The outcome of the latest input (the tests check that seeds reach acceptance).
        self.last: Outcome | None = None
        self.pipeline = Pipeline(
            {self.source.name: self.source},
            SerializingSink(),
            DedupeStore(16, 3600),
            publish_timeout_seconds=5.0,
            retry_after_seconds=5,
            wall_clock=lambda: float(NOW),
            perf_clock=lambda: 0.0,
        )

    def __call__(self, data: bytes) -> None:
        r = Reader(data)
        flags = r.byte()
        offset = r.signed()
        body = r.blob(MAX_BODY)
        headers: CIMultiDict[str] = CIMultiDict()
        if flags & 1:
            delivery_id = r.blob(80).decode("utf-8", "replace") or "delivery"
            # Signing is the sender's side, not under test: a body it cannot sign (a generic
            # scheme whose signed content reads a field the body lacks) goes unsigned.
            with contextlib.suppress(GatewayError):
                headers.extend(self.adapter.sign(body, NOW + offset, delivery_id=delivery_id))
        for _ in range(r.byte() % 8):
            pick = r.byte()
            name = self.header_names[pick % len(self.header_names)] if pick < 224 else r.text(40)
            value = r.text(512)
            if flags & 2:
                headers[name] = value  # replace: a wrong value in place of the signed one
            else:
                headers.add(name, value)  # add: duplicates beside the signed one
        # A fresh store: an input must behave the same alone as in a run (replay, minimizing).
        self.pipeline.dedupe = DedupeStore(16, 3600)
        outcome = self.loop.run_until_complete(
            self.pipeline.handle(self.source, body, CIMultiDictProxy(headers))
        )
        self.last = outcome
        if outcome.status >= 500:
            raise AssertionError(f"{self.source.name}: {outcome.status} {outcome.reason}")


def _targets() -> dict[str, DeliveryTarget]:
    """One per registered provider, keyed by provider: the example config's source for it,
    or a source with a development secret and the provider's defaults (presets)."""
    specs = {spec.provider: spec for spec in load_settings(EXAMPLE_CONFIG).source_specs().values()}
    for provider in ADAPTERS:
        if provider not in specs:
            specs[provider] = SourceSpec(
                name=provider,
                provider=provider,
                secrets=(NamedSecret("fuzz", f"{provider}-fuzz-secret"),),
                production=False,
            )
    return {provider: DeliveryTarget(build_adapter(spec)) for provider, spec in specs.items()}


_BUILT = _targets()
TARGETS: dict[str, Callable[[bytes], None]] = dict(_BUILT)
PROVIDERS = tuple(_BUILT)


def encode(
    body: bytes,
    *,
    sign: bool,
    delivery_id: str = "delivery",
    offset: int = 0,
    extra: tuple[tuple[int, str], ...] = (),
    replace: bool = False,
) -> bytes:
    """The input that decodes to this delivery (for seeds): ``extra`` is (name index, value)."""
    w = Writer().byte((1 if sign else 0) | (2 if replace else 0)).signed(offset).blob(body)
    if sign:
        w.text(delivery_id)
    w.byte(len(extra))
    for index, value in extra:
        w.byte(index).text(value)
    return w.getvalue()
