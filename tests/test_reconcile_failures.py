"""Reconciliation when Redis is unreachable (the edge fails open, the endpoint answers 503),
and the poll contract's reading of provider answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters import build_adapter
from adapters.polling import HttpReply, PollRequest, PollState
from adapters.polling.base import classify, retry_after
from adapters.polling.providers import ReplicatePoller
from gateway.app import create_admin_app, create_app
from gateway.metrics import Metrics
from gateway.sinks.memory import MemorySink
from tests.conftest import AiohttpClient
from tests.fake_providers import FakeApi
from tests.reconcile_support import ADMIN_TOKEN, reconcile_settings, sample
from tests.support import signed

UNREACHABLE = "redis://127.0.0.1:9/0"  # discard port: nothing listens


@pytest.fixture
def settings() -> Any:
    api = FakeApi("replicate")
    api.base_url = "http://127.0.0.1:9"
    return reconcile_settings(UNREACHABLE, {"replicate": api})


async def test_the_edge_fails_open_when_redis_is_unreachable(
    aiohttp_client: AiohttpClient, settings: Any
) -> None:
    sink, metrics = MemorySink(), Metrics()
    client = await aiohttp_client(create_app(settings, sink=sink, metrics=metrics))
    raw, headers = signed(settings, "replicate", job_id="pdown")
    response = await client.post("/webhooks/replicate", data=raw, headers=headers)
    assert response.status == 200
    assert [e.job_id for _, e in sink.events] == ["pdown"]
    errors = "webhook_gateway_dedupe_store_errors_total"
    assert sample(metrics, errors, {"operation": "expectation", "reason": "connection"}) == 1


async def test_the_admin_endpoint_answers_503_when_redis_is_unreachable(
    aiohttp_client: AiohttpClient, settings: Any
) -> None:
    public = create_app(settings, sink=MemorySink(), metrics=Metrics())
    await aiohttp_client(public)
    admin = await aiohttp_client(create_admin_app(public))
    body = {"source": "replicate", "job_id": "p1", "submitted_at": "2026-12-01T10:00:00Z"}
    response = await admin.post(
        "/expectations", json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status == 503
    assert response.headers["Retry-After"] == str(settings.limits.retry_after_seconds)
    assert await response.json() == {"error": "store_unavailable"}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30", 30.0), (" 2.5 ", 2.5), ("-4", 0.0), ("99999", 3600.0), ("nan", None),
     ("Wed, 21 Oct 2026 07:28:00 GMT", None), (None, None)],
)  # fmt: skip
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert retry_after(value) == seconds


@pytest.mark.parametrize(
    ("status", "body", "state"),
    [(404, b"{}", PollState.NOT_FOUND), (410, b"", PollState.NOT_FOUND),
     (500, b"{}", PollState.HTTP_ERROR), (401, b"{}", PollState.HTTP_ERROR),
     (200, b"<html>", PollState.GARBAGE), (200, b"[1]", PollState.GARBAGE),
     (200, b"\xff\xfe", PollState.GARBAGE)],
)  # fmt: skip
def test_classify_never_reads_trouble_as_an_answer(
    status: int, body: bytes, state: PollState
) -> None:
    answer = classify(HttpReply(status, {}, body))
    assert answer.state is state


@pytest.mark.parametrize(
    "body",
    [
        {"id": "other", "status": "succeeded"},  # about another job
        {"id": "p1", "status": "exploded"},  # a status the adapter does not know
        {"status": "succeeded"},  # no id
    ],
)
async def test_an_answer_the_adapter_refuses_is_garbage_not_an_event(
    settings: Any, body: dict[str, Any]
) -> None:
    adapter = build_adapter(settings.source_specs()["replicate"])
    poller = ReplicatePoller(adapter, "k-secret", "http://127.0.0.1:9")

    async def get(url: str, headers: Any) -> HttpReply:
        return HttpReply(200, {}, json.dumps(body).encode())

    answer = await poller.poll(PollRequest("p1"), get, 0.0)
    assert answer.state is PollState.GARBAGE
    assert answer.facts is None
    assert "k-secret" not in repr(poller)
