"""Hypothesis: whatever arrives, the gateway answers a deliberate 2xx/4xx, never a 5xx."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.metrics import Metrics
from gateway.sinks.memory import MemorySink
from tests.support import PROVIDERS, example_settings, signed

HEADER_NAMES = st.sampled_from(
    [
        "webhook-id", "webhook-timestamp", "webhook-signature", "svix-signature",
        "X-Fal-Webhook-Request-Id", "X-Fal-Webhook-User-Id", "X-Fal-Webhook-Timestamp",
        "X-Fal-Webhook-Signature", "X-Abstrakt-Signature", "X-InstantAPI-Signature",
        "Content-Type", "X-Request-Id", "Content-Encoding",
    ]
)  # fmt: skip
# Header values as an HTTP client can send them: visible ASCII and spaces, no CR/LF.
HEADER_VALUES = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200)
SETTINGS = example_settings()


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _post_all(requests: list[tuple[str, bytes, dict[str, str]]]) -> list[int]:
    app: web.Application = create_app(SETTINGS, sink=MemorySink(), metrics=Metrics())
    async with TestClient(TestServer(app)) as client:
        statuses = []
        for path, body, headers in requests:
            response = await client.post(path, data=body, headers=headers)
            await response.read()
            statuses.append(response.status)
        return statuses


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from([*PROVIDERS, "unknown", "a%20b"]),
    headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=8),
    body=st.binary(max_size=2048),
)
def test_random_requests_never_5xx(source: str, headers: dict[str, str], body: bytes) -> None:
    [status] = _run(_post_all([(f"/webhooks/{source}", body, headers)]))
    assert status < 500, status


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from(PROVIDERS),
    body=st.one_of(
        st.binary(max_size=512),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
            lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
            max_leaves=20,
        ).map(lambda v: __import__("json").dumps(v).encode()),
    ),
)
def test_signed_random_bodies_are_2xx_or_401(source: str, body: bytes) -> None:
    """Authentic but arbitrary bodies: accepted, dead-lettered, or a binding check fails."""
    raw, headers = signed(SETTINGS, source, body=body)
    [status] = _run(_post_all([(f"/webhooks/{source}", raw, headers)]))
    assert status in (200, 401), status
