"""The engine against the code adapters: configured the same way, a generic source reaches the
same verdict on every known-answer vector, and builds a byte-identical event."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from adapters import Adapter, GatewayError, NamedSecret, SourceSpec, build_adapter
from adapters.base import NO_REQUEST, Normalized
from adapters.providers.standard_webhooks import DEFAULT_STATUS_MAP
from gateway.ingest import build_event
from tests.declarative_support import STANDARD_WEBHOOKS_LIKE
from tests.helpers_adapters import (
    SW_SECRET,
    load_vector,
    vector_files,
    vector_headers,
    vector_spec,
)

BODY_HMAC = {"abstrakt": "X-Abstrakt-Signature", "instantapi": "X-InstantAPI-Signature"}
STANDARD = ("standard-webhooks", "replicate", "openai")


def equivalent_scheme(vector: dict[str, Any]) -> dict[str, Any] | None:
    """The scheme block a user would write for the vector's provider (HMAC paths only)."""
    provider = vector["provider"]
    if provider in BODY_HMAC:
        return {"auth": "hmac", "header": BODY_HMAC[provider], "name": "hmac-sha256-hex"}
    if provider not in STANDARD or vector["source"].get("public_keys"):
        return None  # Ed25519 (fal, v1a) needs code, not configuration
    scheme = copy.deepcopy(STANDARD_WEBHOOKS_LIKE)
    first = next(iter(vector["source"].get("secrets", [])), {"value": "whsec_"})
    if provider == "openai" and not first["value"].startswith("whsec_"):
        # OpenAI's SDK reads a secret without the prefix as raw UTF-8; so does this block.
        scheme["secret_encoding"] = "raw"
        del scheme["secret_prefix"]
    return scheme


CASES = [
    (path, scheme)
    for path in vector_files()
    if (scheme := equivalent_scheme(load_vector(path))) is not None
]


def as_generic(spec: SourceSpec, scheme: dict[str, Any], **options: Any) -> Adapter:
    return build_adapter(
        SourceSpec(
            name=spec.name,
            provider="generic",
            secrets=spec.secrets,
            tolerance_seconds=spec.tolerance_seconds,
            options={"scheme": scheme, **options},
        )
    )


async def verdict(adapter: Adapter, vector: dict[str, Any]) -> tuple[Any, ...]:
    try:
        found = await adapter.verify(vector["body"].encode(), vector_headers(vector), vector["now"])
    except GatewayError as exc:
        return ("refused", exc.reason)
    return ("verified", found.key_id, found.delivery_id, found.signed_at)


def test_every_hmac_and_standard_webhooks_vector_is_compared() -> None:
    providers = {load_vector(path)["provider"] for path, _ in CASES}
    assert providers == {*BODY_HMAC, *STANDARD}
    assert len(CASES) >= 100


@pytest.mark.parametrize(("path", "scheme"), CASES, ids=[p.stem for p, _ in CASES])
async def test_same_verdict_as_the_code_adapter(path: Path, scheme: dict[str, Any]) -> None:
    vector = load_vector(path)
    spec = vector_spec(vector)
    code, configured = build_adapter(spec), as_generic(spec, scheme)
    assert await verdict(configured, vector) == await verdict(code, vector)


# The generic provider's default Standard Webhooks mapping, written as a mapping block.
SW_MAPPING: dict[str, Any] = {
    "kind": "job",
    "job_id": "data.id",
    "status": "data.status",
    "status_map": {k: v.value for k, v in DEFAULT_STATUS_MAP.items()},
    "event_type": "type",
    "outputs": ["data.output"],
    "error": "data.error",
    "occurred_at": "timestamp",
}


def event_bytes(adapter: Adapter, raw: bytes, verified: Any, now: float) -> bytes:
    payload = adapter.parse(raw, NO_REQUEST)
    facts = adapter.normalize(payload, verified, now)
    assert isinstance(facts, Normalized)
    at = datetime.fromtimestamp(now, tz=UTC)
    event = build_event("evt_x", "src", adapter.event_provider, facts, verified, payload, at, at)
    return event.model_dump_json().encode()


@pytest.mark.parametrize(
    "body",
    [
        {"type": "job.succeeded", "timestamp": "2026-01-01T00:00:00Z",
         "data": {"id": "j1", "status": "succeeded",
                  "output": ["https://cdn.example.com/a.png", {"url": "https://x/b.mp4"}]}},
        {"type": "job.failed", "timestamp": 1767225600,
         "data": {"id": 42, "status": "failed", "error": {"code": "oom", "message": "ran out"}}},
        {"type": "job.running", "data": {"id": "j3", "status": "running", "output": None}},
    ],
)  # fmt: skip
async def test_byte_identical_events_for_the_same_delivery(body: dict[str, Any]) -> None:
    spec = SourceSpec(
        name="src", provider="standard-webhooks", secrets=(NamedSecret("k", SW_SECRET),)
    )
    code = build_adapter(spec)
    configured = as_generic(
        spec, STANDARD_WEBHOOKS_LIKE, mapping=SW_MAPPING, sender="standard-webhooks"
    )
    raw = json.dumps(body).encode()
    now = 1_767_225_600
    headers = code.sign(raw, now, delivery_id="msg_1")
    a = await code.verify(raw, CIMultiDict(headers), now)
    b = await configured.verify(raw, CIMultiDict(headers), now)
    assert a == b
    assert event_bytes(configured, raw, b, now) == event_bytes(code, raw, a, now)
