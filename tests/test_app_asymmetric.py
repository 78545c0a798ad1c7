"""SNS and Pub/Sub through the whole gateway on a real localhost server.

A small local aiohttp app stands in for the AWS and Google hosts: it serves the signing
certificates and answers ``SubscribeURL`` GETs. The fetcher handed to ``create_app`` maps the
real https URLs onto it, so the adapters still check the URL text they were given; any other
URL is refused by the fetcher and recorded.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.base import Fetcher
from adapters.testing_keys import pubsub_test_certificate_pem, sns_test_certificate_pem
from gateway.app import METRICS, create_app, is_ready
from gateway.metrics import Metrics
from gateway.settings import Settings, load_settings
from gateway.sinks.memory import MemorySink
from tests.asymmetric_support import (
    PUBSUB_AUDIENCE,
    PUBSUB_EMAIL,
    SNS_CERT_URL,
    SNS_TOPIC,
    certificate_pem,
    google_certs,
    google_token,
    pubsub_body,
    pubsub_claims,
    sns_body,
    sns_headers,
    sns_message,
    sns_signed,
)
from tests.gateway_process import gateway_process, wait_ready
from tests.kafka_broker import free_port
from tests.support import ROOT, run_check_config

Client = TestClient[Any, web.Application]
AiohttpServer = Callable[[web.Application], Awaitable[TestServer]]
AiohttpClient = Callable[[web.Application], Awaitable[Client]]

ASYMMETRIC_CONFIG = ROOT / "deploy" / "gateway.asymmetric.example.yaml"
JSON = {"Content-Type": "application/json"}
REAL_HOSTS = ("https://sns.eu-west-1.amazonaws.com", "https://www.googleapis.com")


@dataclass
class StandIn:
    """The AWS and Google endpoints the gateway talks to, on loopback."""

    seen: list[str] = field(default_factory=list)
    confirmations: list[dict[str, str]] = field(default_factory=list)
    confirm_status: int = 200
    cert_status: int = 200
    fetched: list[str] = field(default_factory=list)
    base: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/SimpleNotificationService-0123456789abcdef.pem", self.certificate)
        app.router.add_get("/", self.confirm)
        app.router.add_get("/oauth2/v1/certs", self.google)
        return app

    async def certificate(self, request: web.Request) -> web.Response:
        self.seen.append(request.path)
        if self.cert_status != 200:
            return web.Response(status=self.cert_status)
        return web.Response(text=certificate_pem("sns"))

    async def confirm(self, request: web.Request) -> web.Response:
        self.seen.append(request.path_qs)
        if self.confirm_status != 200:
            return web.Response(status=self.confirm_status)
        self.confirmations.append(dict(request.query))
        return web.Response(
            text="<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>"
            f"{SNS_TOPIC}:1</SubscriptionArn></ConfirmSubscriptionResult>"
            "</ConfirmSubscriptionResponse>",
            content_type="text/xml",
        )

    async def google(self, request: web.Request) -> web.Response:
        self.seen.append(request.path)
        return web.Response(body=google_certs(), content_type="application/json")

    def aws_fetches(self) -> list[str]:
        """What was fetched from the AWS stand-in (Google's keys are fetched at startup)."""
        return [url for url in self.fetched if url.startswith(REAL_HOSTS[0])]

    def fetcher(self) -> Fetcher:
        async def fetch(url: str) -> bytes:
            self.fetched.append(url)
            for host in REAL_HOSTS:
                if url.startswith(host + "/"):
                    local = self.base + url[len(host) :]
                    break
            else:
                raise ConnectionError(f"the test fetcher serves no {url}")
            async with aiohttp.ClientSession() as session, session.get(local) as response:
                response.raise_for_status()
                return await response.read()

        return fetch


def asymmetric_settings() -> Settings:
    return load_settings(
        None,
        sources={
            "sns": {"provider": "aws-sns", "topic_arns": [SNS_TOPIC]},
            "pubsub": {
                "provider": "gcp-pubsub",
                "public_url": PUBSUB_AUDIENCE,
                "service_account_emails": [PUBSUB_EMAIL],
            },
        },
    )


@pytest.fixture
async def stand_in(aiohttp_server: AiohttpServer) -> StandIn:
    hosts = StandIn()
    server = await aiohttp_server(hosts.app())
    hosts.base = str(server.make_url("")).rstrip("/")
    return hosts


@pytest.fixture
async def gateway(aiohttp_client: AiohttpClient, stand_in: StandIn, sink: MemorySink) -> Client:
    app = create_app(
        asymmetric_settings(), sink=sink, metrics=Metrics(), fetcher=stand_in.fetcher()
    )
    return await aiohttp_client(app)


async def post_sns(gateway: Client, message: dict[str, Any]) -> aiohttp.ClientResponse:
    return await gateway.post("/webhooks/sns", data=sns_body(message), headers=sns_headers(message))


def counter(gateway: Client, name: str, labels: dict[str, str]) -> float | None:
    value: float | None = gateway.app[METRICS].registry.get_sample_value(name, labels)
    return value


# ------------------------------------------------------------------------------------- SNS
async def test_sns_notification_is_published_once(
    gateway: Client, stand_in: StandIn, sink: MemorySink
) -> None:
    message = sns_signed(sns_message(time.time()))
    first = await post_sns(gateway, message)
    assert first.status == 200
    answer = await first.json()
    again = await post_sns(gateway, message)
    assert await again.json() == {**answer, "duplicate": True}
    assert len(sink.webhook_events) == 1
    assert sink.events == []
    _, event = sink.webhook_events[0]
    assert event.event_id == answer["event_id"]
    assert event.provider == "aws-sns"
    assert event.event_type == "Notification"
    assert event.delivery.id == message["MessageId"]
    assert event.delivery.scheme == "aws-sns-v2"
    assert event.raw == message
    assert stand_in.aws_fetches() == [SNS_CERT_URL]  # cached for the second delivery


async def test_sns_subscription_confirmation_is_answered_by_getting_the_url(
    gateway: Client, stand_in: StandIn, sink: MemorySink
) -> None:
    message = sns_signed(sns_message(time.time(), "SubscriptionConfirmation"))
    response = await post_sns(gateway, message)
    assert response.status == 200
    assert await response.json() == {"confirmed": True, "topic_arn": SNS_TOPIC}
    assert stand_in.confirmations == [
        {"Action": "ConfirmSubscription", "TopicArn": SNS_TOPIC, "Token": message["Token"]}
    ]
    assert sink.webhook_events == []
    labels = {"source": "sns", "kind": "fetch_url"}
    assert counter(gateway, "webhook_gateway_handshakes_total", labels) == 1


async def test_sns_confirmation_for_another_topic_fetches_nothing(
    gateway: Client, stand_in: StandIn, sink: MemorySink
) -> None:
    other = "arn:aws:sns:eu-west-1:999999999999:someone-elses"
    message = sns_signed(sns_message(time.time(), "SubscriptionConfirmation", TopicArn=other))
    response = await post_sns(gateway, message)
    assert response.status == 401
    assert await response.json() == {"error": "topic_not_allowed"}
    assert stand_in.aws_fetches() == []
    labels = {"source": "sns", "reason": "topic_not_allowed"}
    assert counter(gateway, "webhook_gateway_verification_failures_total", labels) == 1


async def test_sns_confirmation_that_fails_is_retried_by_sns(
    gateway: Client, stand_in: StandIn
) -> None:
    message = sns_signed(sns_message(time.time(), "SubscriptionConfirmation"))
    stand_in.confirm_status = 500
    failed = await post_sns(gateway, message)
    assert failed.status == 503
    assert failed.headers["Retry-After"]
    assert await failed.json() == {"error": "subscribe_failed"}
    stand_in.confirm_status = 200
    retried = await post_sns(gateway, message)
    assert retried.status == 200
    assert len(stand_in.confirmations) == 1


async def test_sns_certificate_host_down_is_503(gateway: Client, stand_in: StandIn) -> None:
    stand_in.cert_status = 404
    response = await post_sns(gateway, sns_signed(sns_message(time.time())))
    assert response.status == 503
    assert await response.json() == {"error": "keys_unavailable"}
    assert response.headers["Retry-After"]


async def test_sns_forgeries_are_refused(
    gateway: Client, stand_in: StandIn, sink: MemorySink
) -> None:
    now = time.time()
    local_url = stand_in.base + "/SimpleNotificationService-0123456789abcdef.pem"
    cases = {
        "signature_mismatch": sns_signed(sns_message(now), label="forger"),
        "bad_certificate_url": sns_signed(sns_message(now), cert_url=local_url),
        "timestamp_out_of_window": sns_signed(sns_message(now - 3600)),
    }
    for reason, message in cases.items():
        response = await post_sns(gateway, message)
        assert response.status == 401, reason
        assert await response.json() == {"error": reason}
    assert local_url not in stand_in.fetched
    assert stand_in.aws_fetches() == [SNS_CERT_URL]  # only for the forged signature
    assert sink.webhook_events == []


async def test_sns_unsubscribe_confirmation_is_passed_through(
    gateway: Client, stand_in: StandIn, sink: MemorySink
) -> None:
    message = sns_signed(sns_message(time.time(), "UnsubscribeConfirmation"))
    response = await post_sns(gateway, message)
    assert response.status == 200
    [(_, event)] = sink.webhook_events
    assert event.event_type == "UnsubscribeConfirmation"
    assert stand_in.confirmations == []  # nothing is re-subscribed


async def test_sns_body_that_is_not_a_message_is_401_not_500(gateway: Client) -> None:
    for body in (b"", b"\xff\xfe", b"{}", b'{"Type": "Notification"}', b"[" * 5000):
        response = await gateway.post(
            "/webhooks/sns", data=body, headers={"Content-Type": "text/plain; charset=UTF-8"}
        )
        assert response.status == 401, body[:20]
        assert await response.json() == {"error": "malformed_message"}


# --------------------------------------------------------------------------------- Pub/Sub
async def test_pubsub_keys_are_loaded_at_startup(gateway: Client, stand_in: StandIn) -> None:
    ready, checks = is_ready(gateway.app)
    assert ready
    assert checks["source:pubsub"] is True
    assert stand_in.seen == ["/oauth2/v1/certs"]


async def test_pubsub_push_is_published_once(
    gateway: Client, stand_in: StandIn, sink: MemorySink
) -> None:
    now = time.time()
    body = pubsub_body(eventType="OBJECT_FINALIZE")
    headers = {"Authorization": "Bearer " + google_token(pubsub_claims(now)), **JSON}
    first = await gateway.post("/webhooks/pubsub", data=body, headers=headers)
    assert first.status == 200
    # Pub/Sub redelivers with a fresh token: the message id still dedupes it.
    headers = {
        "Authorization": "Bearer " + google_token(pubsub_claims(now, iat=int(now) - 5)),
        **JSON,
    }
    again = await gateway.post("/webhooks/pubsub", data=body, headers=headers)
    assert (await again.json())["duplicate"] is True
    [(_, event)] = sink.webhook_events
    assert event.provider == "gcp-pubsub"
    assert event.event_type == "OBJECT_FINALIZE"
    assert event.delivery.id == "2070443601311540"
    assert event.delivery.scheme == "google-oidc-rs256"
    assert event.occurred_at is not None
    assert event.raw == json.loads(body)
    assert stand_in.seen == ["/oauth2/v1/certs"]


async def test_pubsub_refusals(gateway: Client, sink: MemorySink) -> None:
    now = time.time()
    token = google_token(pubsub_claims(now))
    cases: dict[str, dict[str, str]] = {
        "missing_header": {},
        "malformed_header": {"Authorization": "Basic " + token},
        "email_not_allowed": {
            "Authorization": "Bearer "
            + google_token(pubsub_claims(now, email="x@other.iam.gserviceaccount.com"))
        },
        "audience_mismatch": {
            "Authorization": "Bearer " + google_token(pubsub_claims(now, aud="https://other"))
        },
        "signature_mismatch": {"Authorization": "Bearer " + token[:-8] + "AAAAAAAA"},
    }
    for reason, headers in cases.items():
        response = await gateway.post(
            "/webhooks/pubsub", data=pubsub_body(), headers={**headers, **JSON}
        )
        assert response.status == 401, reason
        assert await response.json() == {"error": reason}
    assert sink.webhook_events == []


async def test_pubsub_body_that_is_not_a_push_is_a_dead_letter_without_the_token(
    gateway: Client, sink: MemorySink
) -> None:
    token = google_token(pubsub_claims(time.time()))
    response = await gateway.post(
        "/webhooks/pubsub",
        data=b'{"hello": 1}',
        headers={"Authorization": "Bearer " + token, **JSON},
    )
    assert response.status == 200
    assert (await response.json())["dead_letter"] is True
    [record] = sink.dead_letters
    assert record.reason == "unexpected_shape"
    assert token not in json.dumps(record.model_dump(mode="json"))


# ------------------------------------------------------------------- send, the example config
def test_the_example_config_pins_the_published_test_certificates() -> None:
    data = yaml.safe_load(ASYMMETRIC_CONFIG.read_text(encoding="utf-8"))
    sources = data["sources"]
    assert sources["aws-sns"]["certificate_pem"] == sns_test_certificate_pem()
    [key] = sources["gcp-pubsub"]["public_keys"]
    assert key["value"] == pubsub_test_certificate_pem()


def test_the_example_config_is_refused_in_production(tmp_path: Path) -> None:
    data = yaml.safe_load(ASYMMETRIC_CONFIG.read_text(encoding="utf-8"))
    for source, reason in (("aws-sns", "development_only_option"), ("gcp-pubsub", "test_key")):
        path = tmp_path / f"{source}.yaml"
        one = {**data, "mode": "production", "sources": {source: data["sources"][source]}}
        path.write_text(yaml.safe_dump(one), encoding="utf-8")
        result = run_check_config(path, {})
        assert result.returncode == 2, result.stdout
        assert reason in result.stderr


def test_send_every_example_to_a_running_gateway(tmp_path: Path) -> None:
    data = yaml.safe_load(ASYMMETRIC_CONFIG.read_text(encoding="utf-8"))
    data["listen"] = {"host": "127.0.0.1", "port": free_port()}
    data["admin"] = {"host": "127.0.0.1", "port": free_port()}
    data["sink"] = {"kind": "local", "local": {"directory": str(tmp_path / "events")}}
    data["logging"] = {"level": "info", "format": "json"}
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    examples = {
        "aws-sns": ["notification", "notification-v1", "unsubscribe-confirmation"],
        "gcp-pubsub": ["message", "storage-object-finalize"],
    }
    log = tmp_path / "gateway.log"
    with gateway_process(config, log=log) as proc:
        wait_ready(data["admin"]["port"], proc=proc)
        for source, names in examples.items():
            for name in names:
                sent = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "gateway.cli",
                        "send",
                        source,
                        "-e",
                        name,
                        "-c",
                        str(config),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                    cwd=ROOT,
                )
                assert sent.returncode == 0, sent.stdout + sent.stderr
                assert sent.stdout.startswith("200 "), sent.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    lines = (tmp_path / "events" / "webhook-events.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["event_type"] for e in events] == [
        "job.succeeded",  # the notification's `event` attribute (event_type_attribute)
        "Notification",
        "UnsubscribeConfirmation",
        "job.succeeded",
        "OBJECT_FINALIZE",
    ]
    assert {e["delivery"]["scheme"] for e in events} == {
        "aws-sns-v1",
        "aws-sns-v2",
        "google-oidc-rs256",
    }
    assert "Bearer" not in log.read_text(encoding="utf-8")
