"""The SNS and Pub/Sub vector sets: every required case is there, and every passthrough event
they describe validates against the published ``WebhookEvent`` JSON Schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters import AdapterServices, build_adapter
from adapters.base import Passthrough
from adapters.primitives.payload import parse_json
from gateway import event_id as event_ids
from gateway.ingest import build_webhook_event
from tests.helpers_adapters import (
    VECTOR_DIR,
    jsonschema,
    load_vector,
    vector_fetcher,
    vector_headers,
    vector_spec,
)
from tests.support import ROOT

REQUIRED = {
    "aws-sns": {
        "sns-v1-valid",
        "sns-v2-valid",
        "sns-tampered-message",
        "sns-wrong-key",
        "sns-stale-301",
        "sns-future-301",
        "sns-cert-url-other-host",
        "sns-cert-url-http",
        "sns-subscription-confirmation-unknown-topic",
        "sns-malformed-not-json",
    },
    "gcp-pubsub": {
        "pubsub-valid",
        "pubsub-wrong-audience",
        "pubsub-wrong-issuer",
        "pubsub-email-unverified",
        "pubsub-email-not-allowed",
        "pubsub-expired",
        "pubsub-alg-none",
        "pubsub-alg-hs256",
        "pubsub-unknown-kid",
        "pubsub-tampered-claims",
    },
}
SCHEMA = json.loads((ROOT / "schemas" / "webhook_event.v1.schema.json").read_text("utf-8"))
PASSTHROUGH = sorted(
    path
    for folder in REQUIRED
    for path in (VECTOR_DIR / folder).glob("*.json")
    if load_vector(path)["expected"].get("normalize", {}).get("passthrough")
)


def test_required_cases_are_present() -> None:
    for folder, stems in REQUIRED.items():
        present = {p.stem for p in (VECTOR_DIR / folder).glob("*.json")}
        assert stems <= present, stems - present


@pytest.mark.parametrize("path", PASSTHROUGH, ids=[p.stem for p in PASSTHROUGH])
async def test_passthrough_events_validate_against_the_schema(path: Path) -> None:
    vector = load_vector(path)
    adapter = build_adapter(vector_spec(vector), AdapterServices(fetcher=vector_fetcher(vector)))
    body = vector["body"].encode()
    verified = await adapter.verify(body, vector_headers(vector), vector["now"])
    payload: Any = parse_json(body)
    facts = adapter.normalize(payload, verified, vector["now"])
    assert isinstance(facts, Passthrough)
    assert verified.delivery_id is not None
    at = datetime.fromtimestamp(vector["now"], tz=UTC)
    event = build_webhook_event(
        event_ids.from_delivery("s", verified.delivery_id),
        "s",
        vector["provider"],
        facts,
        verified,
        payload,
        at,
        at,
    )
    document = event.model_dump(mode="json")
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)
    assert document["event_type"] == vector["expected"]["normalize"]["event_type"]
    assert document["delivery"]["id"] == vector["expected"]["delivery_id"]
