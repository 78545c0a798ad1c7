"""AWS SNS: the certificate URL rules, the certificate cache, the confirmation handshake,
``send``'s signing, and hostile input. Messages are signed here with ``cryptography`` and a
self-signed certificate made by the test; nothing reaches the network."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from adapters import (
    AdapterServices,
    ConfigError,
    GatewayError,
    TemporaryError,
    VerificationError,
    build_adapter,
)
from adapters.base import NO_REQUEST, Passthrough, Reply
from adapters.errors import NormalizationError
from adapters.primitives.cert_cache import CertificateCache
from adapters.providers.aws_sns import SnsAdapter, sns_url_region
from adapters.testing_keys import SNS_TEST_CERT_URL, sns_test_certificate_pem
from tests.asymmetric_support import (
    SNS_CERT_URL,
    SNS_SUBSCRIBE_URL,
    SNS_TOPIC,
    certificate_pem,
    sns_body,
    sns_headers,
    sns_message,
    sns_signed,
)
from tests.helpers_adapters import FakeClock, FakeFetcher, make_spec

NOW = 1_767_225_600.0


def sns_adapter(
    fetcher: FakeFetcher | None = None,
    *,
    production: bool = True,
    reports: list[str] | None = None,
    **options: Any,
) -> SnsAdapter:
    spec = make_spec("aws-sns", options={"topic_arns": [SNS_TOPIC], **options})
    services = AdapterServices(
        fetcher=fetcher, on_key_refresh=reports.append if reports is not None else None
    )
    adapter = build_adapter(dataclasses.replace(spec, production=production), services)
    assert isinstance(adapter, SnsAdapter)
    return adapter


def cert_fetcher(label: str = "sns") -> FakeFetcher:
    return FakeFetcher().serve(SNS_CERT_URL, certificate_pem(label).encode())


async def verify(adapter: SnsAdapter, message: dict[str, Any], now: float = NOW) -> Any:
    return await adapter.verify(sns_body(message), CIMultiDict(sns_headers(message)), now)


# ------------------------------------------------------------------------------ URL rules
GOOD_CERT_URLS = [
    (SNS_CERT_URL, "eu-west-1"),
    ("https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem", "us-gov-west-1"),
    ("https://sns.ap-southeast-4.amazonaws.com/SimpleNotificationService-0a.pem", "ap-southeast-4"),
    (
        "https://sns.cn-northwest-1.amazonaws.com.cn/SimpleNotificationService-1.pem",
        "cn-northwest-1",
    ),
]
BAD_CERT_URLS = [
    "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0.pem",
    "HTTPS://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0.pem",
    "https://sns.eu-west-1.amazonaws.com.attacker.example/SimpleNotificationService-0.pem",
    "https://attacker.example/sns.eu-west-1.amazonaws.com/SimpleNotificationService-0.pem",
    "https://sns.eu-west-1.amazonaws.com@attacker.example/SimpleNotificationService-0.pem",
    "https://a:b@sns.eu-west-1.amazonaws.com/SimpleNotificationService-0.pem",
    "https://sns.eu-west-1.amazonaws.com:443/SimpleNotificationService-0.pem",
    "https://sns.eu-west-1.amazonaws.com:/SimpleNotificationService-0.pem",
    "https://sns.eu-west-1.amazonaws.com./SimpleNotificationService-0.pem",
    "https://sns.eu-west-1.amazonaws.cn/SimpleNotificationService-0.pem",
    "https://sns.eu-west-1.amazonaws.com.cn/SimpleNotificationService-0.pem",
    "https://sns.cn-north-1.amazonaws.com/SimpleNotificationService-0.pem",
    "https://sqs.eu-west-1.amazonaws.com/SimpleNotificationService-0.pem",
    "https://sns.eu_west_1.amazonaws.com/SimpleNotificationService-0.pem",
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0.pem?x",
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0.pem#",
    "https://sns.eu-west-1.amazonaws.com/a/SimpleNotificationService-0.pem",
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0.pem/",
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-.pem",
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0%2e.pem",
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0.pem\n",
    "https://sns.eu-west-1.amazonaws.com\t/SimpleNotificationService-0.pem",
    "https://sns.eu-west-1.amazonaws.com\\@x/SimpleNotificationService-0.pem",
    "https://sn\u0455.eu-west-1.amazonaws.com/SimpleNotificationService-0.pem",  # Cyrillic s
    "https://[::1]/SimpleNotificationService-0.pem",
    "https://sns.eu-west-1.amazonaws.com/" + "SimpleNotificationService-" + "a" * 3000 + ".pem",
    "",
]


@pytest.mark.parametrize(("url", "region"), GOOD_CERT_URLS)
def test_certificate_urls_accepted(url: str, region: str) -> None:
    assert sns_url_region(url, certificate=True) == region
    assert sns_url_region(url, certificate=False) is None  # a certificate URL confirms nothing


@pytest.mark.parametrize("url", BAD_CERT_URLS)
def test_certificate_urls_refused(url: str) -> None:
    assert sns_url_region(url, certificate=True) is None


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        (SNS_SUBSCRIBE_URL, True),
        ("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=1", True),
        ("https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x", False),
        ("https://sns.eu-west-1.amazonaws.com/?Action=ListTopics", False),
        ("https://sns.eu-west-1.amazonaws.com/x?Action=ConfirmSubscription", False),
        ("http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription", False),
        ("https://sns.eu-west-1.amazonaws.com:8443/?Action=ConfirmSubscription", False),
        ("https://127.0.0.1/?Action=ConfirmSubscription", False),
        ("https://u@sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription", False),
    ],
)
def test_subscribe_urls(url: str, ok: bool) -> None:
    assert (sns_url_region(url, certificate=False) is not None) is ok


# --------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({}, "invalid_options"),
        ({"topic_arns": []}, "invalid_options"),
        ({"topic_arns": ["arn:aws:sqs:eu-west-1:123456789012:q"]}, "invalid_options"),
        ({"topic_arns": ["arn:aws:sns:eu-west-1:1234:t"]}, "invalid_options"),
        ({"topic_arns": [SNS_TOPIC], "certificate_max_age_seconds": 1}, "invalid_options"),
        (
            {"topic_arns": [SNS_TOPIC], "certificate_pem": sns_test_certificate_pem()},
            "development_only_option",
        ),
    ],
)
def test_configuration_errors(options: dict[str, Any], reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_adapter(make_spec("aws-sns", options=options))
    assert caught.value.reason == reason


def test_pinned_certificate_must_be_a_certificate() -> None:
    with pytest.raises(ConfigError) as caught:
        sns_adapter(production=False, certificate_pem="not a certificate")
    assert caught.value.reason == "invalid_public_key"


def test_adapter_flags() -> None:
    adapter = sns_adapter(cert_fetcher())
    assert adapter.has_handshake
    assert adapter.may_pass_through
    assert "text/plain" in adapter.extra_content_types
    assert adapter.ready()
    assert adapter.warnings() == []


# ------------------------------------------------------------------------------- verifying
async def test_both_signature_versions_verify() -> None:
    fetcher = cert_fetcher()
    adapter = sns_adapter(fetcher)
    for version, scheme in (("1", "aws-sns-v1"), ("2", "aws-sns-v2")):
        message = sns_signed(sns_message(NOW), version=version)
        verified = await verify(adapter, message)
        assert verified.scheme == scheme
        assert verified.delivery_id == message["MessageId"]
        assert verified.key_id == "eu-west-1:SimpleNotificationService-0123456789abcdef"
        assert verified.signed_at == int(NOW) - 2
    assert fetcher.calls == [SNS_CERT_URL]  # cached across deliveries


async def test_concurrent_deliveries_share_one_fetch() -> None:
    fetcher = cert_fetcher()
    fetcher.gate = asyncio.Event()
    adapter = sns_adapter(fetcher)
    message = sns_signed(sns_message(NOW))
    waiting = [asyncio.ensure_future(verify(adapter, message)) for _ in range(20)]
    await asyncio.sleep(0.01)
    fetcher.gate.set()
    results = await asyncio.gather(*waiting)
    assert {r.delivery_id for r in results} == {message["MessageId"]}
    assert fetcher.calls == [SNS_CERT_URL]


async def test_a_waiter_giving_up_does_not_cancel_the_fetch() -> None:
    fetcher = cert_fetcher()
    fetcher.gate = asyncio.Event()
    adapter = sns_adapter(fetcher)
    message = sns_signed(sns_message(NOW))
    first = asyncio.ensure_future(verify(adapter, message))
    second = asyncio.ensure_future(verify(adapter, message))
    await asyncio.sleep(0.01)
    first.cancel()
    fetcher.gate.set()
    assert (await second).delivery_id == message["MessageId"]
    assert first.cancelled()
    assert fetcher.calls == [SNS_CERT_URL]


async def test_nothing_is_fetched_for_refused_messages() -> None:
    fetcher = cert_fetcher()
    adapter = sns_adapter(fetcher)
    refused = {
        "topic_not_allowed": sns_signed(
            sns_message(NOW, TopicArn="arn:aws:sns:eu-west-1:999999999999:other")
        ),
        "timestamp_out_of_window": sns_signed(sns_message(NOW - 3600)),
        "bad_certificate_url": sns_signed(
            sns_message(NOW), cert_url="https://127.0.0.1/SimpleNotificationService-1.pem"
        ),
    }
    for reason, message in refused.items():
        with pytest.raises(VerificationError) as caught:
            await verify(adapter, message)
        assert caught.value.reason == reason
    assert fetcher.calls == []


async def test_unreachable_certificate_is_temporary_and_not_refetched_at_once() -> None:
    fetcher = FakeFetcher().serve(SNS_CERT_URL, ConnectionError("down"))
    reports: list[str] = []
    adapter = sns_adapter(fetcher, reports=reports, certificate_retry_seconds=3600)
    message = sns_signed(sns_message(NOW))
    for _ in range(3):
        with pytest.raises(TemporaryError) as caught:
            await verify(adapter, message)
        assert caught.value.reason == "keys_unavailable"
    assert fetcher.calls == [SNS_CERT_URL]
    assert reports == ["error"]


async def test_a_different_signer_is_refused() -> None:
    adapter = sns_adapter(cert_fetcher("sns"))
    with pytest.raises(VerificationError) as caught:
        await verify(adapter, sns_signed(sns_message(NOW), label="forger"))
    assert caught.value.reason == "signature_mismatch"


async def test_pinned_certificate_in_development_fetches_nothing() -> None:
    fetcher = FakeFetcher()
    adapter = sns_adapter(fetcher, production=False, certificate_pem=certificate_pem("sns"))
    assert adapter.warnings()
    verified = await verify(adapter, sns_signed(sns_message(NOW)))
    assert verified.scheme == "aws-sns-v2"
    assert fetcher.calls == []
    with pytest.raises(VerificationError) as caught:  # the URL text is still checked
        await verify(adapter, sns_signed(sns_message(NOW), cert_url="https://x.example/a.pem"))
    assert caught.value.reason == "bad_certificate_url"


# ------------------------------------------------------------------------- the cache itself
async def test_cache_refetches_after_max_age_and_stays_bounded() -> None:
    clock = FakeClock()
    urls = [f"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-{i}.pem" for i in "abc"]
    fetcher = FakeFetcher()
    for url in urls:
        fetcher.serve(url, certificate_pem("sns").encode())
    cache = CertificateCache(
        fetcher, max_entries=2, max_age_seconds=100, retry_seconds=10, clock=clock
    )
    await cache.key(urls[0])
    await cache.key(urls[0])
    assert fetcher.calls == [urls[0]]
    clock.advance(101)
    await cache.key(urls[0])
    assert fetcher.calls == [urls[0], urls[0]]
    await cache.key(urls[1])
    await cache.key(urls[2])  # evicts urls[0], the least recently used
    assert len(cache) == 2
    await cache.key(urls[0])
    assert fetcher.calls[-1] == urls[0]
    assert len(fetcher.calls) == 5


async def test_cache_caps_the_size_and_refuses_non_certificates() -> None:
    clock = FakeClock()
    big = certificate_pem("sns").encode() + b"\n" * 70_000
    fetcher = (
        FakeFetcher()
        .serve("u-big", big)
        .serve("u-junk", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        .serve("u-ok", b"not yet", certificate_pem("sns").encode())
    )
    cache = CertificateCache(
        fetcher, max_entries=4, max_age_seconds=100, retry_seconds=10, clock=clock
    )
    for url in ("u-big", "u-junk", "u-ok"):
        with pytest.raises(VerificationError) as caught:
            await cache.key(url)
        assert caught.value.reason == "invalid_certificate"
    with pytest.raises(VerificationError):  # remembered for retry_seconds, not fetched again
        await cache.key("u-ok")
    assert fetcher.calls.count("u-ok") == 1
    clock.advance(11)
    assert await cache.key("u-ok") is not None
    assert fetcher.calls.count("u-ok") == 2


async def test_cache_without_a_fetcher_is_temporary() -> None:
    cache = CertificateCache(
        None, max_entries=1, max_age_seconds=1, retry_seconds=1, clock=FakeClock()
    )
    with pytest.raises(TemporaryError):
        await cache.key(SNS_CERT_URL)


# ------------------------------------------------------------------------------- handshake
async def test_subscription_confirmation_gets_the_subscribe_url() -> None:
    fetcher = cert_fetcher().serve(SNS_SUBSCRIBE_URL, b"<ConfirmSubscriptionResponse/>")
    adapter = sns_adapter(fetcher)
    message = sns_signed(sns_message(NOW, "SubscriptionConfirmation"))
    verified = await verify(adapter, message)
    reply = await adapter.handshake(message, verified, NO_REQUEST)
    assert isinstance(reply, Reply)
    assert reply.kind == "fetch_url"
    assert reply.status == 200
    assert json.loads(reply.body) == {"confirmed": True, "topic_arn": SNS_TOPIC}
    assert fetcher.calls == [SNS_CERT_URL, SNS_SUBSCRIBE_URL]


async def test_confirmation_that_cannot_be_fetched_is_temporary() -> None:
    fetcher = cert_fetcher().serve(SNS_SUBSCRIBE_URL, ConnectionError("down"))
    adapter = sns_adapter(fetcher)
    message = sns_signed(sns_message(NOW, "SubscriptionConfirmation"))
    verified = await verify(adapter, message)
    with pytest.raises(TemporaryError) as caught:
        await adapter.handshake(message, verified, NO_REQUEST)
    assert caught.value.reason == "subscribe_failed"


async def test_confirmation_with_a_foreign_subscribe_url_is_refused() -> None:
    url = "https://attacker.example/?Action=ConfirmSubscription"
    fetcher = cert_fetcher()
    adapter = sns_adapter(fetcher)
    message = sns_signed(sns_message(NOW, "SubscriptionConfirmation", SubscribeURL=url))
    verified = await verify(adapter, message)  # AWS would never sign this, but if it did...
    with pytest.raises(VerificationError) as caught:
        await adapter.handshake(message, verified, NO_REQUEST)
    assert caught.value.reason == "bad_subscribe_url"
    assert url not in fetcher.calls


async def test_notifications_and_unsubscribes_are_passed_through() -> None:
    adapter = sns_adapter(cert_fetcher())
    for kind in ("Notification", "UnsubscribeConfirmation"):
        message = sns_signed(sns_message(NOW, kind))
        verified = await verify(adapter, message)
        assert await adapter.handshake(message, verified, NO_REQUEST) is None
        result = adapter.normalize(message, verified, NOW)
        assert isinstance(result, Passthrough)
        assert result.event_type == kind
        assert result.occurred_at is not None
        assert int(result.occurred_at.timestamp()) == int(NOW) - 2
    with pytest.raises(NormalizationError):
        adapter.normalize([1], verified, NOW)


# ------------------------------------------------------------------------------------ send
@pytest.mark.parametrize("version", ["1", "2"])
async def test_sign_delivery_round_trips_with_the_local_test_certificate(version: str) -> None:
    fetcher = FakeFetcher().serve(SNS_TEST_CERT_URL, sns_test_certificate_pem().encode())
    adapter = sns_adapter(fetcher)
    template = json.dumps({"Message": "hi", "SignatureVersion": version}).encode()
    body, headers = adapter.sign_delivery(template, int(NOW), delivery_id="d-1")
    message = json.loads(body)
    assert message["MessageId"] == "d-1"
    assert message["TopicArn"] == SNS_TOPIC
    assert headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert adapter.sign(template, int(NOW), delivery_id="d-1") == headers
    verified = await adapter.verify(body, CIMultiDict(headers), NOW)
    assert verified.scheme == f"aws-sns-v{version}"
    assert verified.delivery_id == "d-1"
    tampered = body.replace(b'"hi"', b'"ho"')
    with pytest.raises(VerificationError) as caught:
        await adapter.verify(tampered, CIMultiDict(headers), NOW)
    assert caught.value.reason == "signature_mismatch"


def test_sign_delivery_refuses_what_is_not_a_message() -> None:
    adapter = sns_adapter()
    for template in (b"[]", b"nope", b'{"Type": "Other"}'):
        with pytest.raises(ConfigError):
            adapter.sign_delivery(template, int(NOW), delivery_id="d")


# ----------------------------------------------------------------------------- hostile input
_text = st.text(max_size=40)
_values = st.one_of(_text, st.integers(), st.none(), st.lists(_text, max_size=2))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.dictionaries(
        st.sampled_from(
            [
                "Type",
                "MessageId",
                "Message",
                "Subject",
                "Timestamp",
                "TopicArn",
                "SignatureVersion",
                "Signature",
                "SigningCertURL",
            ]
        ),
        _values,
        max_size=4,
    ),
    raw=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_hostile_messages_raise_only_our_errors(changes: dict[str, Any], raw: bytes | None) -> None:
    async def check() -> None:
        adapter = sns_adapter(cert_fetcher())
        signed = sns_signed(sns_message(NOW))
        body = raw if raw is not None else json.dumps(signed | changes).encode()
        try:
            verified = await adapter.verify(body, CIMultiDict(), NOW)
        except GatewayError:
            return
        # Whatever got through is exactly what was signed: every change was no change at all.
        assert raw is None
        assert all(signed.get(name) == value for name, value in changes.items())
        assert verified.delivery_id == signed["MessageId"]

    asyncio.run(check())
