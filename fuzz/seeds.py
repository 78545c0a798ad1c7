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


#: Bodies for providers that ship no sample deliveries (presets of passthrough senders).
_PLAIN_BODIES = (
    b'{"action": "opened", "number": 1, "repository": {"full_name": "o/r"}}',
    b'{"id": "evt_1", "type": "invoice.paid", "created": 1800000000, "data": {"id": "in_1"}}',
)


def _unmappable(body: bytes) -> bytes:
    """The sample with every status-like field set to a value no mapping knows: authentic
    and unmappable, so the dead-letter path is seeded too."""
    import json

    def walk(node: object) -> object:
        if isinstance(node, dict):
            return {
                k: "no-such-status" if k in ("status", "state", "event", "type") else walk(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    try:
        return json.dumps(walk(json.loads(body))).encode()
    except ValueError:
        return body


def _bodies(target: deliveries.DeliveryTarget) -> Iterator[bytes]:
    provider = target.adapter.provider
    for example in names(provider):
        yield render(provider, example, job_id="job-123", now=deliveries.NOW)
    for path in getattr(target.adapter, "examples", dict)().values():
        text = (ROOT / path).read_text(encoding="utf-8").rstrip("\n")
        yield text.replace("{{now}}", str(deliveries.NOW)).replace("{{job_id}}", "job-123").encode()
    if not names(provider):
        yield from _PLAIN_BODIES


def _delivery_seeds(provider: str) -> Iterator[bytes]:
    target = deliveries._BUILT[provider]
    for body in _bodies(target):
        delivery_id = "job-123" if provider == "fal" else "msg_1"
        yield deliveries.encode(body, sign=True, delivery_id=delivery_id)
        yield deliveries.encode(body, sign=False)
        yield deliveries.encode(body, sign=True, delivery_id=delivery_id, extra=((0, "00"),))
        yield deliveries.encode(
            body, sign=True, delivery_id=delivery_id, extra=((0, "00"),), replace=True
        )
        yield deliveries.encode(body, sign=True, delivery_id=delivery_id, offset=-400)
        yield deliveries.encode(body, sign=True, delivery_id=delivery_id, wrong_credentials=True)
        yield deliveries.encode(_unmappable(body), sign=True, delivery_id=delivery_id)
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


def _scheme_seeds() -> Iterator[bytes]:
    """Every compiled scheme we ship, as a YAML options block, and structured choices."""
    import yaml

    from adapters.presets import PRESETS
    from gateway.settings import load_settings

    blocks = [dict(p.options) for p in PRESETS]
    for src in load_settings(ROOT / "deploy" / "gateway.example.yaml").sources.values():
        if "scheme" in src.options:
            blocks.append({k: v for k, v in src.options.items() if k in ("scheme", "mapping")})
    for block in blocks:
        text = yaml.safe_dump(block).encode()
        yield Writer().byte(1).blob(text).getvalue() + b"\x00" * 8
    for flags in (0x70, 0x30, 0x20, 0x00, 0x72):
        w = Writer().byte(flags).byte(0)  # auth hmac
        if flags & 16:
            w.byte(1).byte(0)
        if flags & 32:
            w.byte(0)
        if flags & 64:
            w.byte(0).byte(0).byte(0).byte(1).byte(0)
        yield w.byte(1).byte(0b1101).byte(0).byte(0).byte(0).byte(0).byte(0).byte(0).getvalue()


def _template_seeds() -> Iterator[bytes]:
    from fuzz.targets.declarative import _TEMPLATES

    for text in (*_TEMPLATES, "plain", "{{literal}}", "{json:}", "{nope}", "{"):
        w = Writer().number(0x7FF).text(text).byte(1).byte(2).text("1800000000")
        yield w.blob(b'{"data": {"id": "x"}}').text("POST").text("https://gw/x").getvalue()


def seeds() -> dict[str, Iterable[bytes]]:
    found: dict[str, Iterable[bytes]] = {
        f"adapter_{name.replace('-', '_')}": list(_delivery_seeds(name))
        for name in deliveries.PROVIDERS
    }
    found["declarative_scheme"] = list(_scheme_seeds())
    found["declarative_template"] = list(_template_seeds())
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
