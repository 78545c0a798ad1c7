"""Write the seed inputs of every target into ``fuzz/corpus/<target>/`` (``python -m fuzz.seeds``).

Seeds give the fuzzer meaningful starting points: correctly signed deliveries of every sample
body, each also with a duplicated or replaced signing header; real configuration files; well
formed forwarding headers. Files are named by the SHA-1 of their content, as libFuzzer names
corpus entries, so rewriting the seeds never duplicates one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from adapters.examples import names, render
from fuzz.reader import Writer
from fuzz.targets import deliveries

CORPUS = Path(__file__).resolve().parent / "corpus"
ROOT = CORPUS.parent.parent


def _delivery_seeds(source: str) -> Iterator[bytes]:
    target = deliveries._BUILT[source]
    provider = target.adapter.provider
    for example in names(provider):
        body = render(provider, example, job_id="job-123", now=deliveries.NOW)
        delivery_id = "job-123" if provider == "fal" else "msg_1"
        yield deliveries.encode(body, sign=True, delivery_id=delivery_id)
        yield deliveries.encode(body, sign=False)
        yield deliveries.encode(body, sign=True, delivery_id=delivery_id, extra=((0, "00"),))
        yield deliveries.encode(
            body, sign=True, delivery_id=delivery_id, extra=((0, "00"),), replace=True
        )
        yield deliveries.encode(body, sign=True, delivery_id=delivery_id, offset=-400)
    yield deliveries.encode(b'{"not": "a job"}', sign=True, delivery_id="msg_2")
    yield deliveries.encode(b"\xff\xfe not json", sign=True, delivery_id="msg_3")
    yield deliveries.encode(b"[1, 2, 3]", sign=True, delivery_id="msg_4")


def _json_seeds() -> Iterator[bytes]:
    for provider in ("fal", "replicate", "openai", "abstrakt", "instantapi", "standard-webhooks"):
        for example in names(provider):
            yield render(provider, example, job_id="job-123", now=deliveries.NOW)
    yield b'{"n": 123456789012345678901234567890, "f": 1e400}'
    yield b"[" * 70 + b"]" * 70
    yield b"[" * 2000 + b"]" * 2000
    yield b'"\\ud800"'
    yield b"NaN"
    yield b'{"a": -0, "b": 1.5e-10, "c": "\\u00e9", "d": null, "e": true}'


def _header_seeds() -> Iterator[bytes]:
    one = Writer().byte(1).byte(0).text("abc").byte(0).byte(0)
    yield one.getvalue()
    two = Writer().byte(2).byte(0).text("a").byte(1).text(" a ").byte(1).byte(0)
    yield two.getvalue()
    yield Writer().byte(2).byte(0).text("a").byte(0).text("b").byte(0).byte(0).getvalue()
    yield Writer().byte(1).byte(0).text("\udcff").byte(0).byte(0).getvalue()


def _standard_webhooks_seeds() -> Iterator[bytes]:
    ts = str(deliveries.NOW)
    for flags in (3, 7, 11, 19, 35, 67, 0):
        w = Writer().byte(flags).text("msg_1").text(ts).text("v2,abc ").text(" v1,zzz")
        yield w.blob(b'{"type": "x"}').signed(10).getvalue()


def _address_seeds() -> Iterator[bytes]:
    samples = (
        (1, "127.0.0.1", ((0, "203.0.113.7, 10.0.0.1"),)),
        (1, "127.0.0.1:5000", ((1, 'for="[2001:db8::1]:80";proto=https, for=127.0.0.2'),)),
        (2, "[::1]:443", ((0, "unknown"),)),
        (3, "10.1.2.3", ((0, "::ffff:192.0.2.1"), (2, "198.51.100.1"))),
        (4, "192.0.2.10", ((1, "for=_hidden"),)),
        (0, "203.0.113.9", ((0, "1.2.3.4"),)),
    )
    for choice, peer, hops in samples:
        w = Writer().byte(choice).byte(1).text(peer).byte(len(hops))
        for name, value in hops:
            w.byte(name).text(value)
        yield w.text("10.0.0.0/8").getvalue()


def _settings_seeds() -> Iterator[bytes]:
    for path in (
        ROOT / "deploy" / "gateway.example.yaml",
        ROOT / "deploy" / "gateway.compose.yaml",
    ):
        yield path.read_bytes()
    yield b"mode: production\nsources: {a: {provider: abstrakt, secrets: [{id: x, env: NOPE}]}}\n"
    yield b"limits: {max_in_flight: 0}\n"
    yield b"listen: {trusted_proxies: [10.0.0.0/8, '::1', bogus]}\n"
    yield b"- a list\n"
    yield b"sources:\n  fal: {provider: fal, jwks_urls: [https://example.invalid/jwks]}\n"


def seeds() -> dict[str, Iterable[bytes]]:
    found: dict[str, Iterable[bytes]] = {
        f"adapter_{name.replace('-', '_')}": list(_delivery_seeds(name))
        for name in deliveries.PROVIDERS
    }
    found["parse_json"] = list(_json_seeds())
    found["headers"] = list(_header_seeds())
    found["standard_webhooks_header"] = list(_standard_webhooks_seeds())
    found["client_address"] = list(_address_seeds())
    found["settings_loader"] = list(_settings_seeds())
    return found


def write(corpus: Path = CORPUS) -> int:
    count = 0
    for target, inputs in seeds().items():
        folder = corpus / target
        folder.mkdir(parents=True, exist_ok=True)
        for data in inputs:
            (folder / hashlib.sha1(data, usedforsecurity=False).hexdigest()).write_bytes(data)
            count += 1
    return count


if __name__ == "__main__":
    print(f"{write()} seed inputs written under {CORPUS}")
