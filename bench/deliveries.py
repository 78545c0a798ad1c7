"""Distinct, validly signed deliveries, pre-encoded as raw HTTP/1.1 requests.

Every request is unique (fresh job id and delivery id), so none is answered from the dedupe
store. Requests are stored in one simple format that both load generators read: for each
request, its length in bytes on a line of its own, then exactly that many bytes.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters import Adapter, build_adapter
from adapters.examples import render
from gateway.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "deploy" / "gateway.example.yaml"

#: Provider sets benchmarked: every source in a set is sent to in turn.
SETS: dict[str, tuple[str, ...]] = {
    "hmac": ("abstrakt", "instantapi"),
    "standard-webhooks": ("replicate", "openai", "standard-webhooks"),
    "fal": ("fal",),
    "mixed": ("abstrakt", "instantapi", "replicate", "openai", "standard-webhooks", "fal"),
}
#: Examples that normalize to a job event (no dead letters); every provider has both.
EXAMPLES = ("succeeded", "failed")


@dataclass(frozen=True)
class Signer:
    """Builds signed requests for the sources of the example config (adapters built once)."""

    adapters: dict[str, Adapter]

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Signer:
        settings = settings or load_settings(EXAMPLE_CONFIG)
        specs = settings.source_specs()
        return cls({name: build_adapter(spec) for name, spec in specs.items()})

    def delivery(self, source: str, example: str, now: int) -> tuple[bytes, dict[str, str]]:
        """A fresh job's body and its signed headers, as the provider would send them."""
        adapter = self.adapters[source]
        job_id = uuid.uuid4().hex[:20]
        raw = render(adapter.provider, example, job_id=job_id, now=now)
        delivery_id = job_id if adapter.provider == "fal" else f"msg_{uuid.uuid4().hex}"
        headers = {"Content-Type": "application/json"}
        headers.update(adapter.sign(raw, now, delivery_id=delivery_id))
        return raw, headers

    def request(self, source: str, example: str, now: int) -> bytes:
        raw, headers = self.delivery(source, example, now)
        head = [f"POST /webhooks/{source} HTTP/1.1", "Host: 127.0.0.1"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(raw)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + raw


def generate(
    signer: Signer, sources: Sequence[str], count: int, now: int | Sequence[int]
) -> Iterator[bytes]:
    """``count`` requests cycling over ``sources`` and the examples.

    ``now`` is the signing time of every request, or one per request (an open-loop schedule
    signs each request with the time it is due, so a long soak stays inside the replay window).
    """
    for i, (source, example) in enumerate(turns(sources, count)):
        yield signer.request(source, example, now if isinstance(now, int) else now[i])


def turns(sources: Sequence[str], count: int) -> Iterator[tuple[str, str]]:
    """``count`` (source, example) pairs, cycling over the sources and the examples."""
    pairs = itertools.cycle(itertools.product(EXAMPLES, sources))
    for _ in range(count):
        example, source = next(pairs)
        yield source, example


def write(path: Path, requests: Iterator[bytes]) -> int:
    """Write requests in the length-prefixed format; returns how many were written."""
    n = 0
    with path.open("wb") as out:
        for request in requests:
            out.write(b"%d\n" % len(request))
            out.write(request)
            n += 1
    return n


def read(path: Path) -> list[bytes]:
    data = path.read_bytes()
    requests: list[bytes] = []
    pos = 0
    while pos < len(data):
        eol = data.index(b"\n", pos)
        size = int(data[pos:eol])
        requests.append(data[eol + 1 : eol + 1 + size])
        pos = eol + 1 + size
    return requests
