"""Generic sources through a real localhost server: every handshake kind, passthrough to each
sink (the real Kafka broker included), tokens in the URL, form bodies, IP allowlists."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from adapters import ConfigError
from gateway.app import METRICS, create_app
from gateway.metrics import Metrics
from gateway.settings import LocalSinkConfig, Settings, load_settings
from gateway.sinks.local_log import EVENTS_FILE, WEBHOOK_EVENTS_FILE, LocalLogSink
from gateway.sinks.memory import MemorySink
from schemas import WebhookEvent
from tests.declarative_support import SLACK_LIKE, STRIPE_LIKE
from tests.kafka_broker import Broker
from tests.kafka_tools import kafka_settings, read_topic
from tests.test_kafka import ready_client

Client = TestClient[Any, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]
SECRET = "s3cret"


def settings_with(**sources: dict[str, Any]) -> Settings:
    full = {
        name: {"secrets": [{"id": "primary", "value": SECRET}], **source}
        for name, source in sources.items()
    }
    return load_settings(None, mode="development", sources=full)


def sign_slack(body: bytes, ts: int) -> dict[str, str]:
    sig = hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Signature": "v0=" + sig,
        "X-Slack-Request-Timestamp": str(ts),
        "Content-Type": "application/json",
    }


def count(client: Client, family: str, **labels: str) -> float:
    value = client.app[METRICS].registry.get_sample_value(family, labels)
    return value or 0.0


async def start(
    aiohttp_client: MakeClient, settings: Settings, sink: Any = None, **kwargs: Any
) -> Client:
    return await aiohttp_client(create_app(settings, sink=sink or MemorySink(), **kwargs))


# -- probes -----------------------------------------------------------------------------------


async def test_query_echo_answers_the_challenge_and_publishes_nothing(
    aiohttp_client: MakeClient,
) -> None:
    sink = MemorySink()
    settings = settings_with(
        dropbox={
            "provider": "generic",
            "scheme": {"auth": "hmac", "header": "X-Dropbox-Signature"},
            "handshakes": [{"kind": "query_echo", "param": "challenge"}],
        }
    )
    client = await start(aiohttp_client, settings, sink)
    response = await client.get("/webhooks/dropbox?challenge=abc123")
    assert response.status == 200
    assert await response.text() == "abc123"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert sink.events == []
    assert sink.webhook_events == []
    assert count(client, "webhook_gateway_handshakes_total", source="dropbox", kind="query_echo")
    assert (await client.get("/webhooks/dropbox")).status == 405  # no challenge: not a probe
    assert (await client.put("/webhooks/dropbox?challenge=x")).status == 405
    hostile = await client.get("/webhooks/dropbox", params={"challenge": "a b" + "x" * 600})
    assert hostile.status == 400
    assert await hostile.json() == {"error": "malformed_handshake"}


async def test_query_echo_with_a_verify_token_as_json(aiohttp_client: MakeClient) -> None:
    settings = settings_with(
        strava={
            "provider": "generic",
            "scheme": {"auth": "none"},
            "handshakes": [
                {"kind": "query_echo", "param": "hub.challenge", "respond": "json",
                 "verify_param": "hub.verify_token"}
            ],
        }
    )  # fmt: skip
    client = await start(aiohttp_client, settings)
    query = {"hub.mode": "subscribe", "hub.challenge": "15f7d1a9", "hub.verify_token": SECRET}
    response = await client.get("/webhooks/strava", params=query)
    assert response.status == 200
    assert await response.json() == {"hub.challenge": "15f7d1a9"}
    wrong = await client.get("/webhooks/strava", params={**query, "hub.verify_token": "nope"})
    assert wrong.status == 403


async def test_bare_probes(aiohttp_client: MakeClient) -> None:
    settings = settings_with(
        heygen={
            "provider": "generic",
            "scheme": {"auth": "hmac", "header": "Signature"},
            "handshakes": [{"kind": "probe", "methods": ["OPTIONS", "HEAD"], "status": 204}],
        }
    )
    client = await start(aiohttp_client, settings)
    assert (await client.options("/webhooks/heygen")).status == 204
    assert (await client.head("/webhooks/heygen")).status == 204
    assert (await client.get("/webhooks/heygen")).status == 405


# -- signed handshakes -------------------------------------------------------------------------


async def test_slack_url_verification_is_echoed_only_when_signed(
    aiohttp_client: MakeClient,
) -> None:
    sink = MemorySink()
    settings = settings_with(
        slack={
            "provider": "generic",
            "scheme": SLACK_LIKE,
            "mapping": {"kind": "passthrough", "event_type": "event.type"},
            "handshakes": [
                {"kind": "json_echo", "when": "type == 'url_verification'", "field": "challenge"}
            ],
        }
    )
    client = await start(aiohttp_client, settings, sink)
    now = int(time.time())
    body = json.dumps({"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3"})
    ok = await client.post("/webhooks/slack", data=body, headers=sign_slack(body.encode(), now))
    assert ok.status == 200
    assert await ok.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3"}
    forged = sign_slack(body.encode(), now)
    forged["X-Slack-Signature"] = "v0=" + "0" * 64
    refused = await client.post("/webhooks/slack", data=body, headers=forged)
    assert refused.status == 401
    event = json.dumps({"type": "event_callback", "event": {"type": "app_mention"}}).encode()
    published = await client.post("/webhooks/slack", data=event, headers=sign_slack(event, now))
    assert published.status == 200
    assert [e.event_type for _, e in sink.webhook_events] == ["app_mention"]


async def test_zoom_url_validation_answers_the_hmac_of_the_token(
    aiohttp_client: MakeClient,
) -> None:
    settings = settings_with(
        zoom={
            "provider": "generic",
            "scheme": {**SLACK_LIKE, "header": "x-zm-signature",
                       "timestamp": {"source": "header", "header": "x-zm-request-timestamp"}},
            "handshakes": [{"kind": "hmac_challenge", "when": "event == 'endpoint.url_validation'",
                            "token": "payload.plainToken"}],
        }
    )  # fmt: skip
    client = await start(aiohttp_client, settings)
    now = int(time.time())
    body = json.dumps(
        {"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}}
    ).encode()
    headers = sign_slack(body, now)
    headers = {
        "x-zm-signature": headers["X-Slack-Signature"],
        "x-zm-request-timestamp": str(now),
        "Content-Type": "application/json",
    }
    response = await client.post("/webhooks/zoom", data=body, headers=headers)
    assert response.status == 200
    expected = hmac.new(SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert await response.json() == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": expected,
    }


class RecordingFetcher:
    def __init__(self, fail: bool = False) -> None:
        self.urls: list[str] = []
        self.fail = fail

    async def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        if self.fail:
            raise OSError("connection refused")
        return b"<ConfirmSubscriptionResponse/>"


SNS_HEADERS = {"X-Token": SECRET, "Content-Type": "application/json"}
SNS_LIKE: dict[str, Any] = {
    "provider": "generic",
    "scheme": {"auth": "static_header", "header": "X-Token"},
    "handshakes": [
        {
            "kind": "fetch_url",
            "when": "Type == 'SubscriptionConfirmation'",
            "url": "SubscribeURL",
            "allowed_hosts": ["sns.*.amazonaws.com"],
            "require": "TopicArn",
            "allowed_values": ["arn:aws:sns:us-east-1:123456789012:jobs"],
        }
    ],
}


def confirmation(url: str, topic: str = "arn:aws:sns:us-east-1:123456789012:jobs") -> bytes:
    return json.dumps(
        {"Type": "SubscriptionConfirmation", "TopicArn": topic, "SubscribeURL": url}
    ).encode()


@pytest.mark.parametrize(
    ("url", "topic", "status", "fetched"),
    [
        ("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&T=1", None, 200, True),
        ("https://sns.bucket.s3.amazonaws.com/x", None, 401, False),
        ("http://sns.us-east-1.amazonaws.com/x", None, 401, False),
        ("https://sns.us-east-1.amazonaws.com/x", "arn:aws:sns:us-east-1:1:other", 401, False),
    ],
)
async def test_fetch_url_confirms_only_allowed_hosts_and_values(
    aiohttp_client: MakeClient, url: str, topic: str | None, status: int, fetched: bool
) -> None:
    fetcher = RecordingFetcher()
    client = await start(aiohttp_client, settings_with(sns=SNS_LIKE), fetcher=fetcher)
    body = confirmation(url) if topic is None else confirmation(url, topic)
    response = await client.post("/webhooks/sns", data=body, headers=SNS_HEADERS)
    assert response.status == status
    assert fetcher.urls == ([url] if fetched else [])
    if status == 401:
        assert (await response.json())["error"] == "handshake_not_allowed"


async def test_fetch_url_failure_is_retryable(aiohttp_client: MakeClient) -> None:
    client = await start(
        aiohttp_client, settings_with(sns=SNS_LIKE), fetcher=RecordingFetcher(True)
    )
    body = confirmation("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription")
    response = await client.post("/webhooks/sns", data=body, headers=SNS_HEADERS)
    assert response.status == 503
    assert "Retry-After" in response.headers
    unsigned = await client.post(
        "/webhooks/sns", data=body, headers={**SNS_HEADERS, "X-Token": "guess"}
    )
    assert unsigned.status == 401


# -- passthrough to each sink -------------------------------------------------------------------

STRIPE_SOURCE: dict[str, Any] = {
    "provider": "generic",
    "sender": "stripe",
    "scheme": STRIPE_LIKE,
    "mapping": {"kind": "passthrough", "event_type": "type", "occurred_at": "created"},
}


def stripe_delivery(event_id: str, now: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"id": event_id, "type": "invoice.paid", "created": now, "data": {"amount": 4200}}
    ).encode()
    sig = hmac.new(SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={now},v1={sig}", "Content-Type": "application/json"}


async def test_passthrough_to_memory_once(aiohttp_client: MakeClient) -> None:
    sink = MemorySink()
    client = await start(aiohttp_client, settings_with(stripe=STRIPE_SOURCE), sink)
    now = int(time.time())
    body, headers = stripe_delivery("evt_1", now)
    first = await client.post("/webhooks/stripe", data=body, headers=headers)
    again = await client.post("/webhooks/stripe", data=body, headers=headers)
    assert first.status == again.status == 200
    assert (await again.json())["duplicate"] is True
    assert sink.events == []
    [(_, event)] = sink.webhook_events
    assert (event.provider, event.event_type, event.delivery.id) == (
        "stripe",
        "invoice.paid",
        "evt_1",
    )
    assert event.delivery.scheme == "hmac-sha256-hex"
    assert event.raw["data"] == {"amount": 4200}
    assert count(client, "webhook_gateway_events_published_total", source="stripe",
                 topic="webhook-events") == 1  # fmt: skip


async def test_passthrough_to_the_local_log(aiohttp_client: MakeClient, tmp_path: Path) -> None:
    sink = LocalLogSink(LocalSinkConfig(directory=tmp_path, fsync=True))
    client = await start(aiohttp_client, settings_with(stripe=STRIPE_SOURCE), sink)
    now = int(time.time())
    body, headers = stripe_delivery("evt_local", now)
    assert (await client.post("/webhooks/stripe", data=body, headers=headers)).status == 200
    [line] = (tmp_path / WEBHOOK_EVENTS_FILE).read_bytes().splitlines()
    event = WebhookEvent.model_validate_json(line)
    assert event.delivery.id == "evt_local"
    assert not (tmp_path / EVENTS_FILE).read_bytes()


@pytest.mark.kafka
async def test_passthrough_to_kafka_keyed_by_delivery_id(
    kafka_broker: Broker, aiohttp_client: Any
) -> None:
    suffix = uuid.uuid4().hex[:8]
    base = kafka_settings(kafka_broker.bootstrap, suffix, webhook_topic=f"events-{suffix}")
    sources = {"stripe": load_settings(None, mode="development",
                                       sources={"stripe": {**STRIPE_SOURCE, "secrets": [
                                           {"id": "primary", "value": SECRET}]}}
                                       ).sources["stripe"]}  # fmt: skip
    settings = base.model_copy(update={"sources": sources})
    client = await ready_client(aiohttp_client, settings)
    now = int(time.time())
    for event_id in ("evt_a", "evt_b", "evt_a"):
        body, headers = stripe_delivery(event_id, now)
        assert (await client.post("/webhooks/stripe", data=body, headers=headers)).status == 200
    records = await read_topic(kafka_broker.bootstrap, f"events-{suffix}")
    assert sorted(r.key or b"" for r in records) == [b"stripe:evt_a", b"stripe:evt_b"]
    for record in records:
        event = WebhookEvent.model_validate_json(record.value)
        assert record.headers["event_id"] == event.event_id.encode()
    assert await read_topic(kafka_broker.bootstrap, f"jobs-{suffix}") == []


# -- tokens in the URL, form bodies ---------------------------------------------------------


async def test_path_token_route(aiohttp_client: MakeClient) -> None:
    sink = MemorySink()
    settings = settings_with(
        luma={"provider": "generic", "scheme": {"auth": "path_token"}},
        stripe=STRIPE_SOURCE,
    )
    client = await start(aiohttp_client, settings, sink)
    good = await client.post(f"/webhooks/luma/{SECRET}", json={"id": "g1", "state": "completed"})
    assert good.status == 200
    wrong = await client.post("/webhooks/luma/guess", json={"id": "g1"})
    assert (wrong.status, (await wrong.json())["error"]) == (401, "token_mismatch")
    assert (await client.post("/webhooks/luma", json={})).status == 401
    # A source that takes no path token does not grow a second URL.
    assert (await client.post("/webhooks/stripe/anything", json={})).status == 404
    assert len(sink.webhook_events) == 1


async def test_query_token_and_form_body(aiohttp_client: MakeClient) -> None:
    sink = MemorySink()
    settings = settings_with(
        forms={
            "provider": "generic",
            "scheme": {"auth": "query_token", "query_param": "key"},
            "body_format": "form",
            "mapping": {"kind": "passthrough", "event_type": "EventType"},
        },
        stripe=STRIPE_SOURCE,
    )
    client = await start(aiohttp_client, settings, sink)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    ok = await client.post(f"/webhooks/forms?key={SECRET}", data="EventType=sms&To=1", headers=form)
    assert ok.status == 200
    [(_, event)] = sink.webhook_events
    assert event.raw == {"EventType": "sms", "To": "1"}
    assert (await client.post("/webhooks/forms?key=x", data="a=1", headers=form)).status == 401
    # A JSON source still refuses a form body before reading it.
    assert (await client.post("/webhooks/stripe", data="a=1", headers=form)).status == 415


# -- IP allowlists -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "trusted", "forwarded", "status"),
    [
        (["127.0.0.1/32"], [], {}, 200),
        (["10.0.0.0/8", "::1/128"], [], {}, 403),
        (["203.0.113.0/24"], [], {"X-Forwarded-For": "203.0.113.7"}, 403),  # not believed
        (["203.0.113.0/24"], ["127.0.0.0/8"], {"X-Forwarded-For": "203.0.113.7"}, 200),
        (["203.0.113.0/24"], ["127.0.0.0/8"], {"X-Forwarded-For": "203.0.113.7, 198.51.100.1"},
         403),  # the right-most untrusted hop is the client; the left part is the client's say
        (["203.0.113.0/24"], ["127.0.0.0/8", "10.0.0.0/8"],
         {"X-Forwarded-For": "203.0.113.7, 10.1.2.3"}, 200),
        (["2001:db8::/32"], ["127.0.0.0/8"], {"Forwarded": 'for="[2001:db8::1]:4711";proto=https'},
         200),
        (["203.0.113.0/24"], ["127.0.0.0/8"], {"X-Forwarded-For": "unknown"}, 403),
    ],
)  # fmt: skip
async def test_ip_allowlist_and_trusted_proxies(
    aiohttp_client: MakeClient,
    allowed: list[str],
    trusted: list[str],
    forwarded: dict[str, str],
    status: int,
) -> None:
    settings = load_settings(
        None,
        mode="development",
        listen={"trusted_proxies": trusted},
        sources={"stripe": {**STRIPE_SOURCE, "allowed_ips": allowed,
                            "secrets": [{"id": "primary", "value": SECRET}]}},
    )  # fmt: skip
    client = await start(aiohttp_client, settings)
    body, headers = stripe_delivery("evt_ip", int(time.time()))
    response = await client.post("/webhooks/stripe", data=body, headers={**headers, **forwarded})
    assert response.status == status
    if status == 403:
        assert (await response.json())["error"] == "ip_not_allowed"
        assert count(client, "webhook_gateway_request_errors_total", source="stripe",
                     reason="ip_not_allowed") == 1  # fmt: skip


def test_bad_cidrs_are_config_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, mode="development", listen={"trusted_proxies": ["10.0.0.0/33"]})
    assert "listen.trusted_proxies" in caught.value.detail
    with pytest.raises(ConfigError) as caught:
        settings_with(stripe={**STRIPE_SOURCE, "allowed_ips": ["not-an-ip"]})
    assert "not an IP address" in caught.value.detail


def test_production_refuses_an_unauthenticated_source() -> None:
    sources = {"luma": {"provider": "generic", "scheme": {"auth": "none"}}}
    settings = load_settings(None, sources=sources)
    with pytest.raises(ConfigError) as caught:
        create_app(settings, sink=MemorySink(), metrics=Metrics())
    assert caught.value.reason == "unauthenticated_source"
    allowed = load_settings(
        None, sources={"luma": {**sources["luma"], "allow_unauthenticated": True}}
    )
    create_app(allowed, sink=MemorySink(), metrics=Metrics())


def test_replay_window_longer_than_dedupe_is_refused() -> None:
    long_window = {**STRIPE_LIKE, "timestamp": {"source": "signature_header",
                                                 "max_age_seconds": 7200}}  # fmt: skip
    settings = load_settings(
        None,
        mode="development",
        dedupe={"ttl_seconds": 3600},
        sources={"s": {**STRIPE_SOURCE, "scheme": long_window,
                       "secrets": [{"id": "p", "value": SECRET}]}},
    )  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        create_app(settings, sink=MemorySink(), metrics=Metrics())
    assert caught.value.reason == "replay_window_exceeds_dedupe"


async def test_a_503_before_publishing_is_not_counted_as_a_sink_failure(
    aiohttp_client: MakeClient,
) -> None:
    fetcher = RecordingFetcher(fail=True)
    client = await start(aiohttp_client, settings_with(sns=SNS_LIKE), fetcher=fetcher)
    body = confirmation("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription")
    assert (await client.post("/webhooks/sns", data=body, headers=SNS_HEADERS)).status == 503
    assert count(client, "webhook_gateway_request_errors_total", source="sns",
                 reason="handshake_fetch_failed") == 1  # fmt: skip
    registry = client.app[METRICS].registry
    assert (
        registry.get_sample_value(
            "webhook_gateway_publish_failures_total",
            {"sink": "memory", "reason": "handshake_fetch_failed"},
        )
        is None
    )
