"""Each passthrough preset end to end on a real localhost server: ``provider: <name>`` plus a
secret (and the public URL for senders that sign it) and nothing else in the configuration.

A signed sample is published once as a ``WebhookEvent`` and answered 200, its redelivery is a
duplicate, a forgery is a 401; Slack's and Zoom's handshakes are answered and publish nothing;
``webhook-gateway send <preset>`` works against a running gateway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.metrics import Metrics
from gateway.settings import Settings, load_settings
from gateway.sinks.memory import MemorySink
from tests.conftest import AiohttpClient
from tests.gateway_process import gateway_process, wait_ready, write_config
from tests.presets_support import (
    PASSTHROUGH,
    PUBLIC_URLS,
    SAMPLES,
    SECRETS,
    Sample,
    content_type,
    preset,
    sample_body,
    sample_id,
)
from tests.support import ROOT

Client = TestClient[Any, web.Application]
PUBLISHED = [s for s in SAMPLES if not s.handshake]
#: Headers a sender adds besides what ``sign`` makes, and the event type they then give.
EVENT_HEADERS: dict[str, tuple[dict[str, str], str]] = {
    "github": ({"X-GitHub-Event": "ping"}, "ping"),
    "github-sha1": ({"X-GitHub-Event": "ping"}, "ping"),
    "shopify": ({"X-Shopify-Topic": "orders/create"}, "orders/create"),
}


def source_block(name: str) -> dict[str, Any]:
    block: dict[str, Any] = {
        "provider": name,
        "secrets": [{"id": "dev", "value": SECRETS[name]}],
    }
    if name in PUBLIC_URLS:
        block["public_url"] = PUBLIC_URLS[name]
    return block


def preset_settings() -> Settings:
    return load_settings(
        None, mode="development", sources={name: source_block(name) for name in PASSTHROUGH}
    )


@pytest.fixture
async def gateway(aiohttp_client: AiohttpClient) -> tuple[Client, MemorySink]:
    sink = MemorySink()
    client = await aiohttp_client(create_app(preset_settings(), sink=sink, metrics=Metrics()))
    return client, sink


def signed(sample: Sample, now: int | None = None) -> tuple[bytes, dict[str, str]]:
    now = int(time.time()) if now is None else now
    raw = sample_body(sample, now)
    headers = {"Content-Type": content_type(raw)}
    headers.update(preset(sample.provider).sign(raw, now, delivery_id=f"dlv-{now}"))
    headers.update(EVENT_HEADERS.get(sample.provider, ({}, ""))[0])
    return raw, headers


@pytest.mark.parametrize("sample", PUBLISHED, ids=[sample_id(s) for s in PUBLISHED])
async def test_sample_is_published_once_as_a_webhook_event(
    gateway: tuple[Client, MemorySink], sample: Sample
) -> None:
    client, sink = gateway
    raw, headers = signed(sample)
    path = f"/webhooks/{sample.provider}"
    first = await client.post(path, data=raw, headers=headers)
    assert first.status == 200, await first.text()
    answer = await first.json()
    again = await client.post(path, data=raw, headers=headers)
    assert again.status == 200
    assert await again.json() == {**answer, "duplicate": True}

    assert sink.events == []
    assert len(sink.webhook_events) == 1
    _, event = sink.webhook_events[0]
    assert event.event_id == answer["event_id"]
    assert event.source == event.provider == sample.provider
    expected_type = EVENT_HEADERS.get(sample.provider, ({}, sample.event_type))[1]
    assert event.event_type == expected_type
    assert event.delivery.scheme == preset(sample.provider).scheme_name


@pytest.mark.parametrize("sample", PUBLISHED, ids=[sample_id(s) for s in PUBLISHED])
async def test_forged_sample_is_refused(gateway: tuple[Client, MemorySink], sample: Sample) -> None:
    client, sink = gateway
    raw, headers = signed(sample)
    response = await client.post(f"/webhooks/{sample.provider}", data=raw + b" ", headers=headers)
    assert response.status == 401
    assert (await response.json())["error"] == "signature_mismatch"
    assert sink.webhook_events == []


async def test_slack_url_verification_answers_the_challenge(
    gateway: tuple[Client, MemorySink],
) -> None:
    client, sink = gateway
    sample = next(s for s in SAMPLES if s.name == "url_verification")
    raw, headers = signed(sample)
    response = await client.post("/webhooks/slack", data=raw, headers=headers)
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {"challenge": json.loads(raw)["challenge"]}
    assert sink.webhook_events == []
    # unsigned, the same request is refused
    del headers["X-Slack-Signature"]
    refused = await client.post("/webhooks/slack", data=raw, headers=headers)
    assert refused.status == 401


async def test_slack_slash_command_form_is_published(gateway: tuple[Client, MemorySink]) -> None:
    client, sink = gateway
    now = int(time.time())
    raw = b"team_id=T0001&command=%2Fweather&text=94070"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    headers.update(preset("slack").sign(raw, now, delivery_id="unused"))
    response = await client.post("/webhooks/slack", data=raw, headers=headers)
    assert response.status == 200, await response.text()
    _, event = sink.webhook_events[0]
    assert event.event_type == "/weather"
    assert event.raw == {"team_id": "T0001", "command": "/weather", "text": "94070"}


async def test_zoom_url_validation_answers_the_hmac(gateway: tuple[Client, MemorySink]) -> None:
    client, sink = gateway
    sample = next(s for s in SAMPLES if s.name == "endpoint.url_validation")
    raw, headers = signed(sample)
    response = await client.post("/webhooks/zoom", data=raw, headers=headers)
    assert response.status == 200
    token = json.loads(raw)["payload"]["plainToken"]
    digest = hmac.new(SECRETS["zoom"].encode(), token.encode(), hashlib.sha256).hexdigest()
    assert await response.json() == {"plainToken": token, "encryptedToken": digest}
    assert sink.webhook_events == []


async def test_twilio_json_body_with_its_hash_in_the_url(
    gateway: tuple[Client, MemorySink],
) -> None:
    client, sink = gateway
    raw = b'{"type":"com.twilio.messaging.message.delivered","data":{"sid":"SM1"}}'
    query = "bodySHA256=" + hashlib.sha256(raw).hexdigest()
    url = PUBLIC_URLS["twilio"] + "?" + query
    signature = hmac.new(SECRETS["twilio"].encode(), url.encode(), hashlib.sha1).digest()
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Signature": base64.b64encode(signature).decode(),
    }
    response = await client.post(f"/webhooks/twilio?{query}", data=raw, headers=headers)
    assert response.status == 200, await response.text()
    _, event = sink.webhook_events[0]
    assert event.event_type == "com.twilio.messaging.message.delivered"
    changed = raw.replace(b"SM1", b"SM2")
    refused = await client.post(f"/webhooks/twilio?{query}", data=changed, headers=headers)
    assert refused.status == 401
    assert (await refused.json())["error"] == "body_hash_mismatch"


async def test_linear_delivery_older_than_a_minute_is_refused(
    gateway: tuple[Client, MemorySink],
) -> None:
    client, _ = gateway
    sample = next(s for s in SAMPLES if s.provider == "linear")
    raw, headers = signed(sample, now=int(time.time()) - 90)
    response = await client.post("/webhooks/linear", data=raw, headers=headers)
    assert response.status == 401
    assert (await response.json())["error"] == "timestamp_out_of_window"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


#: One preset per path through ``send``: a header timestamp, a header event type, JSON and
#: forms (``auto``), a signed URL, a body timestamp in ms, a handshake sample, Svix secrets.
SEND = ("stripe", "github", "slack", "twilio", "square", "linear", "zoom", "clerk")


def test_send_presets_against_a_running_gateway(tmp_path: Path) -> None:
    """``webhook-gateway send <preset>``, no ``--example``: its first sample, signed as the
    sender would, and accepted (a handshake sample is answered)."""
    config, data = write_config(
        tmp_path, sources={name: source_block(name) for name in PASSTHROUGH}
    )
    with gateway_process(config, log=tmp_path / "gateway.log") as proc:
        wait_ready(data["admin"]["port"], proc=proc)
        for name in SEND:
            sent = cli("send", name, "--config", str(config))
            assert sent.returncode == 0, f"{name}: {sent.stdout}{sent.stderr}"
            assert sent.stdout.startswith("200 "), f"{name}: {sent.stdout}"
        answered = cli("send", "slack", "--example", "url_verification", "--config", str(config))
        assert '"challenge"' in answered.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    log = (tmp_path / "gateway.log").read_text(encoding="utf-8")
    for secret in SECRETS.values():
        assert secret not in log
