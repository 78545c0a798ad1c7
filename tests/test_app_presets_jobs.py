"""``provider: <name>`` plus a secret, and nothing else, works end to end for every AI job
preset: a real localhost server in production mode, the secret read from the environment."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from adapters import build_adapter
from adapters.examples import render
from adapters.presets import jobs
from gateway.app import create_app
from gateway.metrics import Metrics
from gateway.settings import Settings, load_settings
from gateway.sinks.memory import MemorySink
from schemas import JobStatus
from tests.conftest import AiohttpClient
from tests.helpers_adapters import SW_SECRET

Client = TestClient[Any, web.Application]
PRESET_NAMES = tuple(p.name for p in jobs.PRESETS)
TOKEN = "app-test-token-9f8e7d6c5b4a3210"
SECRETS = {"anthropic": SW_SECRET, "parallel": SW_SECRET, "deepgram": "dg-user:" + TOKEN}


def env_name(source: str) -> str:
    return "JOBS_TEST_SECRET_" + source.upper().replace("-", "_")


def settings_for(monkeypatch: pytest.MonkeyPatch, **extra: dict[str, Any]) -> Settings:
    sources: dict[str, Any] = {}
    for name in PRESET_NAMES:
        monkeypatch.setenv(env_name(name), SECRETS.get(name, TOKEN))
        sources[name] = {"provider": name, "secrets": [{"id": "live", "env": env_name(name)}]}
    for name, block in extra.items():
        sources[name] = block
    return load_settings(None, mode="production", sources=sources)


async def serve(aiohttp_client: AiohttpClient, settings: Settings, sink: MemorySink) -> Client:
    return await aiohttp_client(create_app(settings, sink=sink, metrics=Metrics()))


def delivery(
    settings: Settings, source: str, example: str, job_id: str
) -> tuple[str, bytes, dict[str, str]]:
    """The path, body and headers the provider would send, signed with the configured secret."""
    adapter = build_adapter(settings.source_specs()[source])
    now = int(time.time())
    raw = render(adapter.provider, example, job_id=job_id, now=now)
    headers = {"Content-Type": "application/json"}
    headers.update(adapter.sign(raw, now, delivery_id=f"msg_{job_id}"))
    token, _ = adapter.url_credentials()
    path = f"/webhooks/{source}" + (f"/{quote(token, safe='')}" if token else "")
    return path, raw, headers


@pytest.mark.parametrize("name", PRESET_NAMES)
@pytest.mark.parametrize(
    ("example", "status"), [("succeeded", JobStatus.SUCCEEDED), ("failed", JobStatus.FAILED)]
)
async def test_preset_with_only_a_secret_works_end_to_end(
    aiohttp_client: AiohttpClient,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    example: str,
    status: JobStatus,
) -> None:
    settings = settings_for(monkeypatch)
    sink = MemorySink()
    client = await serve(aiohttp_client, settings, sink)
    path, raw, headers = delivery(settings, name, example, "job_e2e_1")
    response = await client.post(path, data=raw, headers=headers)
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert answer["received"] is True
    assert "dead_letter" not in answer
    [(_, event)] = sink.events
    assert (event.source, event.provider, event.job_id) == (name, name, "job_e2e_1")
    assert event.status is status
    assert event.delivery.key_id == "live"
    again = await client.post(path, data=raw, headers=headers)
    assert (await again.json()).get("duplicate") is True
    assert len(sink.events) == 1


@pytest.mark.parametrize("name", PRESET_NAMES)
async def test_preset_refuses_a_forgery(
    aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    settings = settings_for(monkeypatch)
    sink = MemorySink()
    client = await serve(aiohttp_client, settings, sink)
    path, raw, headers = delivery(settings, name, "succeeded", "job_forged")
    forged = {k: v for k, v in headers.items() if k == "Content-Type"}
    if path.count("/") > 2:  # a path token: send it to the bare endpoint instead
        path = f"/webhooks/{name}/wrong-token"
    response = await client.post(path, data=raw, headers=forged)
    assert response.status == 401
    assert (await response.json())["error"] in ("missing_header", "token_mismatch")
    assert sink.events == []


async def test_piapi_secret_echoed_in_the_body_is_not_published(
    aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(monkeypatch)
    sink = MemorySink()
    client = await serve(aiohttp_client, settings, sink)
    raw = (
        b'{"timestamp": 1, "data": {"task_id": "t_echo", "status": "completed", '
        b'"config": {"webhook_config": {"endpoint": "https://x", "secret": "'
        + TOKEN.encode()
        + b'"}}}}'
    )
    response = await client.post(
        "/webhooks/piapi",
        data=raw,
        headers={"Content-Type": "application/json", "x-webhook-secret": TOKEN},
    )
    assert response.status == 200
    [(_, event)] = sink.events
    assert event.raw["data"]["config"]["webhook_config"]["secret"] == "[redacted]"
    assert TOKEN not in event.model_dump_json()


async def test_anthropic_non_job_event_is_a_passthrough(
    aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(monkeypatch)
    sink = MemorySink()
    client = await serve(aiohttp_client, settings, sink)
    path, raw, headers = delivery(settings, "anthropic", "session-created", "job_pt")
    response = await client.post(path, data=raw, headers=headers)
    assert response.status == 200
    assert sink.events == []
    [(_, event)] = sink.webhook_events
    assert event.event_type == "session.created"


async def test_assemblyai_sender_ips_as_an_allowlist(
    aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented example: only AssemblyAI's two sender addresses may deliver."""
    monkeypatch.setenv("AAI_TOKEN", TOKEN)
    block = {
        "provider": "assemblyai",
        "secrets": [{"id": "live", "env": "AAI_TOKEN"}],
        "allowed_ips": ["44.238.19.20/32", "54.220.25.36/32"],
    }
    settings = settings_for(monkeypatch, **{"assemblyai-us-eu": block})
    sink = MemorySink()
    client = await serve(aiohttp_client, settings, sink)
    _, raw, headers = delivery(settings, "assemblyai-us-eu", "succeeded", "t_ip")
    response = await client.post("/webhooks/assemblyai-us-eu", data=raw, headers=headers)
    assert response.status == 403  # this test client is 127.0.0.1
    assert (await response.json())["error"] == "ip_not_allowed"
    assert sink.events == []


async def test_luma_without_a_token_in_production(
    aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = {"provider": "luma", "scheme": {"auth": "none"}, "allow_unauthenticated": True}
    settings = settings_for(monkeypatch, **{"luma-open": block})
    sink = MemorySink()
    client = await serve(aiohttp_client, settings, sink)
    raw = render("luma", "succeeded", job_id="gen_open", now=int(time.time()))
    response = await client.post(
        "/webhooks/luma-open", data=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status == 200
    [(_, event)] = sink.events
    assert (event.job_id, event.delivery.scheme) == ("gen_open", "none")
