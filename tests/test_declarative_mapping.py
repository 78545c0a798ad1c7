"""JMESPath job and passthrough mappings: what they find, and what a hostile body cannot do."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters import ConfigError, NormalizationError, Verified
from adapters.base import NO_REQUEST, Normalized, Passthrough
from adapters.declarative.adapter import GenericAdapter
from gateway.ingest import build_any_event
from schemas import JobEvent, JobStatus, OutputKind, WebhookEvent
from tests.declarative_support import generic
from tests.helpers_adapters import validate_event

SCHEME = {"auth": "hmac", "header": "X-Sig"}
VERIFIED = Verified(scheme="hmac-sha256-hex", key_id="primary", delivery_id="d-1")
JOB: dict[str, Any] = {
    "kind": "job",
    "job_id": "data.id",
    "status": "data.state",
    "status_map": {
        "queued": "queued",
        "dreaming": "running",
        "completed": "succeeded",
        "failed": "failed",
    },
    "event_type": "type",
    "outputs": ["data.assets.video", "data.assets.image", "data.files"],
    "error": "data.failure_reason",
    "metrics": {
        "inference_seconds": "data.timings.inference",
        "queue_seconds": "data.timings.queue",
        "total_seconds": "sum([data.timings.inference, data.timings.queue])",
        "credits": "data.usage.credits",
    },
    "occurred_at": "data.created_at",
}


def adapter(mapping: dict[str, Any]) -> GenericAdapter:
    return generic(SCHEME, mapping=mapping)


def apply(mapping: dict[str, Any], payload: Any) -> Normalized | Passthrough:
    return adapter(mapping).normalize(payload, VERIFIED, 0)


def test_a_job_is_mapped_completely() -> None:
    payload = {
        "type": "generation.completed",
        "data": {
            "id": "gen-1",
            "state": "completed",
            "assets": {"video": "https://cdn.example.com/v.mp4", "image": None},
            "files": [{"url": "https://cdn.example.com/f.png", "width": 512, "height": 512}],
            "timings": {"inference": 45.2, "queue": 2.1},
            "usage": {"credits": 3},
            "created_at": "2026-11-30T10:00:00Z",
        },
    }
    facts = apply(JOB, payload)
    assert isinstance(facts, Normalized)
    assert (facts.job_id, facts.status) == ("gen-1", JobStatus.SUCCEEDED)
    assert facts.provider_event_type == "generation.completed"
    assert [o.url for o in facts.outputs] == [
        "https://cdn.example.com/v.mp4",
        "https://cdn.example.com/f.png",
    ]
    assert facts.outputs[0].kind is OutputKind.VIDEO
    assert facts.outputs[1].width == 512
    # 45.2 + 2.1 is 47.300000000000004 in binary floating point: the event carries 47.3.
    assert facts.metrics.total_seconds == 47.3
    assert facts.metrics.credits == 3
    assert facts.occurred_at == datetime(2026, 11, 30, 10, tzinfo=UTC)
    assert facts.error is None
    event = build_any_event("evt_1", "luma", "luma", facts, VERIFIED, payload, _now(), _now())
    assert isinstance(event, JobEvent)
    validate_event(event)
    assert '"total_seconds":47.3,' in event.model_dump_json()


def test_a_failure_carries_its_error() -> None:
    payload = {"data": {"id": 7, "state": "failed", "failure_reason": "content filtered"}}
    facts = apply(JOB, payload)
    assert isinstance(facts, Normalized)
    assert (facts.job_id, facts.status) == ("7", JobStatus.FAILED)
    assert facts.error is not None
    assert facts.error.message == "content filtered"
    structured = apply(
        {**JOB, "error": "data.error", "error_code": "data.error.kind"},
        {"data": {"id": "x", "state": "failed", "error": {"kind": "oom", "message": "m"}}},
    )
    assert isinstance(structured, Normalized)
    assert structured.error is not None
    assert (structured.error.code, structured.error.message) == ("oom", "m")
    assert structured.error.details == {"kind": "oom", "message": "m"}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"data": {"state": "completed"}}, "missing_field"),
        ({"data": {"id": "x", "state": "melting"}}, "unknown_status"),
        ({"data": {"id": "x"}}, "unknown_status"),
        ({"data": {"id": "x", "state": ["completed"]}}, "unknown_status"),
        ([1, 2, 3], "missing_field"),
        ("a string", "missing_field"),
    ],
)
def test_unmappable_deliveries_are_dead_letters(payload: Any, reason: str) -> None:
    with pytest.raises(NormalizationError) as caught:
        apply(JOB, payload)
    assert caught.value.reason == reason


def test_an_expression_that_raises_on_a_hostile_body() -> None:
    # In a required field: a dead letter.
    mapping = {**JOB, "job_id": "join('-', data.parts)"}
    hostile = {"data": {"parts": ["a", 1], "state": "completed"}}
    with pytest.raises(NormalizationError) as caught:
        apply(mapping, hostile)
    assert caught.value.reason == "expression_failed"
    # In an optional one: the field is empty, the job event still goes out.
    mapping = {**JOB, "metrics": {"total_seconds": "sum(data.timings)"}}
    facts = apply(mapping, {"data": {"id": "x", "state": "completed", "timings": ["a", {}]}})
    assert isinstance(facts, Normalized)
    assert facts.metrics.total_seconds is None
    deep: Any = "https://x/y.png"
    for _ in range(200):
        deep = [deep]
    nested = apply({**JOB, "outputs": ["data.deep"]},
                   {"data": {"id": "x", "state": "completed", "deep": deep}})  # fmt: skip
    assert isinstance(nested, Normalized)
    assert nested.outputs == ()  # past the walker's depth limit: found nothing, no crash


def test_when_false_is_a_dead_letter_or_a_passthrough() -> None:
    gated = {**JOB, "when": "type != 'ping'"}
    with pytest.raises(NormalizationError) as caught:
        apply(gated, {"type": "ping"})
    assert caught.value.reason == "not_a_job"
    passing = adapter({**gated, "otherwise": "passthrough"})
    assert passing.may_pass_through
    facts = passing.normalize({"type": "ping", "data": {"created_at": 1767225600}}, VERIFIED, 0)
    assert facts == Passthrough(event_type="ping", occurred_at=datetime(2026, 1, 1, tzinfo=UTC))


def test_passthrough_mapping_and_its_event() -> None:
    mapping = {"kind": "passthrough", "event_type": "type", "occurred_at": "created",
               "occurred_at_unit": "milliseconds"}  # fmt: skip
    a = adapter(mapping)
    assert a.may_pass_through
    payload = {"type": "invoice.paid", "created": 1767225600123, "id": "evt_1"}
    facts = a.normalize(payload, VERIFIED, 0)
    assert isinstance(facts, Passthrough)
    assert facts.event_type == "invoice.paid"
    assert facts.occurred_at == datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    event = build_any_event("evt_1", "stripe", "generic", facts, VERIFIED, payload, _now(), _now())
    assert isinstance(event, WebhookEvent)
    assert event.partition_key == "stripe:d-1"
    document = json.loads(event.model_dump_json())
    assert document["raw"] == payload
    validate_event(event, "webhook_event.v1.schema.json")


def test_the_default_mapping_is_passthrough_with_no_type() -> None:
    facts = generic(SCHEME).normalize({"anything": 1}, VERIFIED, 0)
    assert facts == Passthrough()


@pytest.mark.parametrize(
    ("mapping", "fragment"),
    [
        ({**JOB, "job_id": "data.[["}, "mapping.job_id"),
        ({**JOB, "status_map": {"done": "finished"}}, "status_map"),
        ({**JOB, "status_map": {}}, "status_map"),
        ({**JOB, "metrics": {"latency": "x"}}, "metrics"),
        ({**JOB, "outputs": ["ok", "(("]}, "mapping.outputs[1]"),
        ({"kind": "passthrough", "event_type": "`unterminated"}, "mapping.event_type"),
        ({"kind": "jobs"}, "mapping"),
    ],
)
def test_mapping_config_errors_name_the_field(mapping: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        adapter(mapping)
    assert fragment in caught.value.detail


def test_form_bodies_are_parsed_for_the_mapping() -> None:
    a = generic(SCHEME, body_format="form", mapping={"kind": "passthrough", "event_type": "Kind"})
    payload = a.parse(b"Kind=sms&To=1&To=2&Empty=", NO_REQUEST)
    assert payload == {"Kind": "sms", "To": ["1", "2"], "Empty": ""}
    assert a.normalize(payload, VERIFIED, 0) == Passthrough(event_type="sms")
    for bad in (b"\xff\xfe", b"a=1&&&b"):
        with pytest.raises(NormalizationError) as caught:
            a.parse(bad, NO_REQUEST)
        assert caught.value.reason == "invalid_form"


def _now() -> datetime:
    return datetime(2026, 12, 1, tzinfo=UTC)
