"""The edge through a real localhost server: every status code, duplicates, dead letters."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import METRICS
from gateway.settings import Settings
from gateway.sinks.memory import MemorySink
from schemas import JobStatus
from tests.support import PROVIDERS, signed

Client = TestClient[Any, web.Application]


@pytest.mark.parametrize("source", PROVIDERS)
async def test_each_provider_accepted_once(
    client: Client, settings: Settings, sink: MemorySink, source: str
) -> None:
    raw, headers = signed(settings, source)
    response = await client.post(f"/webhooks/{source}", data=raw, headers=headers)
    assert response.status == 200
    answer = await response.json()
    assert answer["received"] is True
    assert answer["event_id"].startswith("evt_")
    assert "duplicate" not in answer
    assert len(sink.events) == 1
    _, event = sink.events[0]
    assert event.event_id == answer["event_id"]
    assert event.source == source
    assert event.status is JobStatus.SUCCEEDED
    assert response.headers["X-Request-Id"]


@pytest.mark.parametrize("source", PROVIDERS)
async def test_redelivery_is_duplicate(
    client: Client, settings: Settings, sink: MemorySink, source: str
) -> None:
    raw, headers = signed(settings, source)
    first = await client.post(f"/webhooks/{source}", data=raw, headers=headers)
    second = await client.post(f"/webhooks/{source}", data=raw, headers=headers)
    assert first.status == second.status == 200
    a, b = await first.json(), await second.json()
    assert b == {"received": True, "event_id": a["event_id"], "duplicate": True}
    assert len(sink.events) == 1


async def test_concurrent_identical_deliveries_yield_one_event(
    client: Client, settings: Settings, sink: MemorySink
) -> None:
    sink.delay_seconds = 0.2  # the first copy is still being written when the others arrive
    raw, headers = signed(settings, "replicate")
    responses = await asyncio.gather(
        *(client.post("/webhooks/replicate", data=raw, headers=headers) for _ in range(20))
    )
    answers = [await r.json() for r in responses]
    assert {r.status for r in responses} == {200}
    assert len({a["event_id"] for a in answers}) == 1
    assert sum(1 for a in answers if a.get("duplicate")) == 19
    assert len(sink.events) == 1


async def test_concurrent_duplicates_when_first_write_fails(
    client: Client, settings: Settings, sink: MemorySink
) -> None:
    """A failed first copy releases the claim: the provider's retry is not a 'duplicate'."""
    sink.available = False
    raw, headers = signed(settings, "openai")
    failed = await client.post("/webhooks/openai", data=raw, headers=headers)
    assert failed.status == 503
    assert failed.headers["Retry-After"] == str(settings.limits.retry_after_seconds)
    assert (await failed.json()) == {"error": "sink_unavailable"}
    sink.available = True
    retried = await client.post("/webhooks/openai", data=raw, headers=headers)
    assert retried.status == 200
    assert "duplicate" not in await retried.json()
    assert len(sink.events) == 1


async def test_sink_deadline_answers_503(settings: Settings, aiohttp_client: Any) -> None:
    from gateway.app import create_app

    slow = MemorySink()
    slow.delay_seconds = 1.0
    fast_settings = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"publish_timeout_seconds": 0.1})}
    )
    client = await aiohttp_client(create_app(fast_settings, sink=slow))
    raw, headers = signed(fast_settings, "abstrakt")
    response = await client.post("/webhooks/abstrakt", data=raw, headers=headers)
    assert response.status == 503
    assert (await response.json()) == {"error": "sink_timeout"}
    assert "Retry-After" in response.headers


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda raw, h: (raw + b" ", h), "signature_mismatch"),
        (lambda raw, h: (raw, {k: v for k, v in h.items() if k != "webhook-id"}), "missing_header"),
        (lambda raw, h: (raw, {**h, "webhook-timestamp": "12a"}), "malformed_header"),
        (lambda raw, h: (raw, {**h, "webhook-timestamp": "1000"}), "timestamp_out_of_window"),
        (
            lambda raw, h: (raw, {**h, "webhook-signature": "v2,abc"}),
            "unsupported_signature_version",
        ),
    ],
    ids=["tampered", "missing", "malformed", "stale", "wrong-version"],
)
async def test_forged_deliveries_refused(
    client: Client, settings: Settings, sink: MemorySink, mutate: Any, reason: str
) -> None:
    raw, headers = signed(settings, "replicate")
    raw, headers = mutate(raw, headers)
    response = await client.post("/webhooks/replicate", data=raw, headers=headers)
    assert response.status == 401
    assert (await response.json()) == {"error": reason}
    assert sink.events == []


async def test_401_answer_does_not_help_a_forger(client: Client, settings: Settings) -> None:
    raw, headers = signed(settings, "abstrakt")
    headers["X-Abstrakt-Signature"] = "0" * 64
    response = await client.post("/webhooks/abstrakt", data=raw, headers=headers)
    text = await response.text()
    assert response.status == 401
    assert json.loads(text) == {"error": "signature_mismatch"}
    assert "abstrakt-dev-secret" not in text


async def test_unknown_source_404(client: Client) -> None:
    response = await client.post("/webhooks/nope", data=b"{}")
    assert response.status == 404
    assert (await response.json()) == {"error": "unknown_source"}
    metrics = client.app[METRICS]
    labels = {"source": "_unknown", "provider": "_unknown", "status": "404", "outcome": "refused"}
    assert metrics.registry.get_sample_value("webhook_gateway_requests_total", labels) == 1


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_methods_405(client: Client, method: str) -> None:
    response = await client.request(method, "/webhooks/fal")
    assert response.status == 405
    assert response.headers["Allow"] == "POST"


async def test_body_over_cap_by_content_length_413(client: Client, settings: Settings) -> None:
    big = io.BytesIO(b"{" + b" " * settings.limits.max_body_bytes + b"}")
    response = await client.post(
        "/webhooks/fal", data=big, headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    assert (await response.json()) == {"error": "body_too_large"}


async def test_body_over_cap_chunked_413(client: Client, settings: Settings) -> None:
    """No Content-Length at all: the cap is enforced while reading."""

    async def chunks() -> Any:
        for _ in range(settings.limits.max_body_bytes // 65536 + 2):
            yield b"x" * 65536

    response = await client.post(
        "/webhooks/fal", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status == 413


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "image/png"])
async def test_not_json_415(client: Client, settings: Settings, ctype: str) -> None:
    raw, headers = signed(settings, "fal")
    headers["Content-Type"] = ctype
    response = await client.post("/webhooks/fal", data=raw, headers=headers)
    assert response.status == 415


async def test_compressed_body_415(client: Client, settings: Settings) -> None:
    raw, headers = signed(settings, "fal")
    headers["Content-Encoding"] = "gzip"
    response = await client.post("/webhooks/fal", data=raw, headers=headers)
    assert response.status == 415


async def test_json_with_charset_and_vendor_type_accepted(
    client: Client, settings: Settings
) -> None:
    for ctype in ("application/json; charset=utf-8", "application/vnd.api+json"):
        raw, headers = signed(settings, "instantapi")
        headers["Content-Type"] = ctype
        response = await client.post("/webhooks/instantapi", data=raw, headers=headers)
        assert response.status == 200, ctype


async def test_unnormalizable_delivery_is_dead_lettered(
    client: Client, settings: Settings, sink: MemorySink
) -> None:
    raw, headers = signed(settings, "openai", "unsupported")
    response = await client.post("/webhooks/openai", data=raw, headers=headers)
    assert response.status == 200
    answer = await response.json()
    assert answer["dead_letter"] is True
    assert sink.events == []
    [record] = sink.dead_letters
    assert record.reason == "unsupported_event_type"
    assert record.event_id == answer["event_id"]
    assert "webhook-signature" not in record.headers
    again = await client.post("/webhooks/openai", data=raw, headers=headers)
    assert (await again.json())["duplicate"] is True
    assert len(sink.dead_letters) == 1


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"unterminated": ', b"\xff\xfe"])
async def test_signed_garbage_is_dead_lettered(
    client: Client, settings: Settings, sink: MemorySink, body: bytes
) -> None:
    raw, headers = signed(settings, "abstrakt", body=body)
    response = await client.post("/webhooks/abstrakt", data=raw, headers=headers)
    assert response.status == 200
    assert (await response.json())["dead_letter"] is True
    assert len(sink.dead_letters) == 1


async def test_fal_body_request_id_must_match_header(
    client: Client, settings: Settings, sink: MemorySink
) -> None:
    raw, headers = signed(settings, "fal", job_id="job-a", delivery_id="job-b")
    response = await client.post("/webhooks/fal", data=raw, headers=headers)
    assert response.status == 401
    assert (await response.json()) == {"error": "request_id_mismatch"}
    assert sink.events == []


async def test_request_id_is_honoured(client: Client, settings: Settings) -> None:
    raw, headers = signed(settings, "fal")
    headers["X-Request-Id"] = "req-123"
    response = await client.post("/webhooks/fal", data=raw, headers=headers)
    assert response.headers["X-Request-Id"] == "req-123"
    bad = await client.post("/webhooks/fal", data=raw, headers={"X-Request-Id": "a b\u00e9"})
    assert bad.headers["X-Request-Id"] != "a b\u00e9"


async def test_big_integers_survive(client: Client, settings: Settings, sink: MemorySink) -> None:
    raw, headers = signed(settings, "fal")
    assert b"17454220438242315174" in raw
    response = await client.post("/webhooks/fal", data=raw, headers=headers)
    assert response.status == 200
    _, event = sink.events[0]
    assert event.raw["payload"]["seed"] == 17454220438242315174
    assert b"17454220438242315174" in event.model_dump_json().encode()


async def test_unexpected_error_is_a_retryable_503(
    client: Client, settings: Settings, sink: MemorySink, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any, **__: Any) -> None:
        raise ValueError("a bug in a sink")

    monkeypatch.setattr(sink, "publish", broken)
    raw, headers = signed(settings, "replicate")
    response = await client.post("/webhooks/replicate", data=raw, headers=headers)
    assert response.status == 503
    assert (await response.json()) == {"error": "internal_error"}
    assert "Retry-After" in response.headers
    monkeypatch.undo()
    retried = await client.post("/webhooks/replicate", data=raw, headers=headers)
    assert retried.status == 200  # the failed attempt did not mark the delivery as seen
    assert len(sink.events) == 1
