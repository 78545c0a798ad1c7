"""One target per provider adapter: a fuzzed delivery through the real pipeline.

The input decides the body, the headers (names drawn from the ones the adapter reads, or
arbitrary), the clock, and whether the body is first signed correctly with the source's key,
so the fuzzer reaches parsing and normalization too, not only the refusals. The pipeline runs
as in the gateway (verify, ids, dedupe, parse, normalize, the canonical event, the sink's
serialization) with a sink that serializes exactly as the local log and Kafka sinks do.

Invariant: the outcome is never a 5xx (only an unexpected exception would make one, and it
propagates here as the crash), except the retryable 503 of a key or certificate fetch, which
is offline here; and an accepted event serializes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from adapters import (
    ADAPTERS,
    Adapter,
    AdapterServices,
    GatewayError,
    NamedSecret,
    SourceSpec,
    build_adapter,
)
from adapters.base import NO_REQUEST, RequestMeta
from adapters.primitives import standard_webhooks as sw
from fuzz.reader import Reader, Writer
from gateway.dedupe import MemoryDedupe
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
        signed: dict[str, str] = {}
        with contextlib.suppress(GatewayError):  # some senders sign only bodies of their shape
            signed = adapter.sign(b"{}", NOW, delivery_id="d")
        self.header_names = tuple(
            dict.fromkeys(
                [*(n.lower() for n in signed), *sorted(adapter.sensitive_headers), *_COMMON_HEADERS]
            ).keys()
        )
        self.loop = asyncio.new_event_loop()
        #: The outcome of the latest input (the tests check that seeds reach acceptance).
        self.last: Outcome | None = None
        self.pipeline = Pipeline(
            {self.source.name: self.source},
            SerializingSink(),
            MemoryDedupe(16, 3600),
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
        request = self._request(r, flags, headers) if self.adapter.reads_request else NO_REQUEST
        # A fresh store: an input must behave the same alone as in a run (replay, minimizing).
        self.pipeline.dedupe = MemoryDedupe(16, 3600)
        outcome = self.loop.run_until_complete(
            self.pipeline.handle(self.source, body, CIMultiDictProxy(headers), request)
        )
        self.last = outcome
        if outcome.status >= 500 and outcome.reason not in _OFFLINE:
            raise AssertionError(f"{self.source.name}: {outcome.status} {outcome.reason}")

    def _request(self, r: Reader, flags: int, headers: CIMultiDict[str]) -> RequestMeta:
        """The request line as the HTTP layer would describe it: the sender's own path token
        and query credentials, or (when the input says) fuzzed ones; the public URL plus the
        query string. aiohttp refuses URL bytes outside ASCII, so these are ASCII."""
        token, query = self.adapter.url_credentials()
        if flags & 4:
            token = r.blob(64).decode("ascii", "replace") or None
            query = {name: r.blob(64).decode("ascii", "replace") for name in query or ("token",)}
        query_string = urlencode(query)
        public_url = self.adapter.spec.public_url
        url = None
        if public_url is not None:
            url = public_url + ("?" + query_string if query_string else "")
        return RequestMeta(
            query_string=query_string,
            query=query,
            query_all=MultiDictProxy(MultiDict(query)),
            path_token=token,
            url=url,
            content_type=headers.get("content-type"),
        )


#: What a source of these providers must configure besides a secret.
_REQUIRED: dict[str, dict[str, Any]] = {
    "aws-sns": {"options": {"topic_arns": ["arn:aws:sns:us-east-1:123456789012:fuzz"]}},
    "gcp-pubsub": {
        "options": {"service_account_emails": ["push@fuzz.iam.gserviceaccount.com"]},
        "public_url": "https://gateway.example/webhooks/gcp-pubsub",
    },
    "square": {"public_url": "https://gateway.example/webhooks/square"},
    "deepgram": {"secrets": (NamedSecret("fuzz", "fuzz-user:fuzz-password"),)},
    "twilio": {"public_url": "https://gateway.example/webhooks/twilio"},
    "twilio-sha256": {"public_url": "https://gateway.example/webhooks/twilio-sha256"},
}
#: A secret every scheme can read (base64 after ``whsec_``, or as it is).
_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


#: The 503 reasons of a fetch that failed: what the offline fetcher makes, and right to answer.
_OFFLINE = frozenset({"keys_unavailable", "subscribe_failed", "handshake_fetch_failed"})


async def _offline(url: str) -> bytes:
    """Certificates and key sets are not fetched while fuzzing: as if the network were down."""
    raise OSError(f"offline: {url}")


def _targets() -> dict[str, DeliveryTarget]:
    """One per registered provider, keyed by provider: the example config's source for it,
    or a source with a development secret and what the provider requires (presets)."""
    specs = {spec.provider: spec for spec in load_settings(EXAMPLE_CONFIG).source_specs().values()}
    for provider in ADAPTERS:
        if provider not in specs:
            fields: dict[str, Any] = {"secrets": (NamedSecret("fuzz", _SECRET),)}
            fields.update(_REQUIRED.get(provider, {}))
            specs[provider] = SourceSpec(
                name=provider, provider=provider, production=False, **fields
            )
    services = AdapterServices(fetcher=_offline)
    return {p: DeliveryTarget(build_adapter(spec, services)) for p, spec in specs.items()}


_BUILT = _targets()
TARGETS: dict[str, Callable[[bytes], None]] = dict(_BUILT)
PROVIDERS = tuple(_BUILT)


def encode(
    body: bytes,
    *,
    sign: bool,
    wrong_credentials: bool = False,
    delivery_id: str = "delivery",
    offset: int = 0,
    extra: tuple[tuple[int, str], ...] = (),
    replace: bool = False,
) -> bytes:
    """The input that decodes to this delivery (for seeds): ``extra`` is (name index, value)."""
    flags = (1 if sign else 0) | (2 if replace else 0) | (4 if wrong_credentials else 0)
    w = Writer().byte(flags).signed(offset).blob(body)
    if sign:
        w.text(delivery_id)
    w.byte(len(extra))
    for index, value in extra:
        w.byte(index).text(value)
    if wrong_credentials:  # a path token and query values (read only by URL-token schemes)
        w.blob(b"wrong").blob(b"wrong").blob(b"wrong")
    return w.getvalue()
