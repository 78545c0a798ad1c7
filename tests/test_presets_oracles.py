"""The passthrough presets checked against each provider's own Python SDK, both ways.

For each provider with an official package: the SDK signs (or computes the signature with its
own function) and the preset verifies; the preset signs (``adapter.sign``, what ``send`` sends)
and the SDK verifies. Where an SDK is laxer than the preset (Stripe accepts a ``t`` from the
future), a test pins the stricter behaviour. Every SDK object is built offline: no test here
reaches the network, and SDKs that read the wall clock are given deliveries signed just now.
"""

from __future__ import annotations

import importlib
import json
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import resend
import stripe
from githubkit.webhooks import sign as githubkit_sign
from githubkit.webhooks import verify as githubkit_verify
from multidict import CIMultiDict
from paddle_billing.Notifications import PaddleSignature, Secret, Verifier
from slack_sdk.signature import Clock, SignatureVerifier
from square.utils.webhooks_helper import verify_signature as square_verify
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError
from twilio.request_validator import RequestValidator, get_signature_algorithm

from adapters import VerificationError
from adapters.declarative.adapter import GenericAdapter
from tests.presets_support import NOW, PUBLIC_URLS, SECRETS, preset, request_for

BODY = (
    b'{"id":"evt_1","type":"invoice.paid","created":1767225600,'
    b'"data":{"object":{"id":"in_1","amount_paid":2000,"note":"caf\xc3\xa9"}}}'
)
TEXT = BODY.decode()


async def verify(adapter: GenericAdapter, raw: bytes, headers: dict[str, str], now: int) -> str:
    """Verify with the preset; the matching key id."""
    verified = await adapter.verify(raw, CIMultiDict(headers), now, request_for(adapter, raw))
    return verified.key_id


async def verdict(
    adapter: GenericAdapter, raw: bytes, headers: dict[str, str], now: int
) -> str | None:
    """``None`` when the preset accepts the delivery, else the reason it refuses it."""
    try:
        await verify(adapter, raw, headers, now)
    except VerificationError as exc:
        return exc.reason
    return None


async def refused(adapter: GenericAdapter, raw: bytes, headers: dict[str, str], now: int) -> str:
    with pytest.raises(VerificationError) as caught:
        await verify(adapter, raw, headers, now)
    return caught.value.reason


# ---------------------------------------------------------------------------------- Stripe
async def test_stripe_sdk_signs_and_the_preset_verifies() -> None:
    header = stripe.WebhookSignature.generate_signature_header(TEXT, SECRETS["stripe"], NOW)
    assert await verify(preset("stripe"), BODY, {"Stripe-Signature": header}, NOW) == "primary"
    tampered = BODY.replace(b"2000", b"2001")
    assert await refused(preset("stripe"), tampered, {"Stripe-Signature": header}, NOW) == (
        "signature_mismatch"
    )


def test_preset_signs_and_stripe_sdk_verifies() -> None:
    now = int(time.time())
    header = preset("stripe").sign(BODY, now, delivery_id="unused")["Stripe-Signature"]
    assert stripe.WebhookSignature.verify_header(TEXT, header, SECRETS["stripe"], 300) is True
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(TEXT + " ", header, SECRETS["stripe"], 300)


async def test_stripe_sdk_accepts_a_future_timestamp_the_preset_refuses() -> None:
    now = int(time.time())
    ahead = now + 3600
    header = stripe.WebhookSignature.generate_signature_header(TEXT, SECRETS["stripe"], ahead)
    # Stripe's SDK bounds only the past: an hour in the future passes its 300 s tolerance.
    assert stripe.WebhookSignature.verify_header(TEXT, header, SECRETS["stripe"], 300) is True
    reason = await refused(preset("stripe"), BODY, {"Stripe-Signature": header}, now)
    assert reason == "timestamp_out_of_window"
    # the past is bounded the same way by both
    old = stripe.WebhookSignature.generate_signature_header(TEXT, SECRETS["stripe"], now - 301)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(TEXT, old, SECRETS["stripe"], 300)
    assert await refused(preset("stripe"), BODY, {"Stripe-Signature": old}, now) == (
        "timestamp_out_of_window"
    )


# ----------------------------------------------------------------------------------- Slack
class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


async def test_slack_sdk_signs_and_the_preset_verifies() -> None:
    signer = SignatureVerifier(SECRETS["slack"], FixedClock(NOW))
    signature = signer.generate_signature(timestamp=str(NOW), body=BODY)
    assert signature is not None
    headers = {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": str(NOW)}
    assert await verify(preset("slack"), BODY, headers, NOW) == "primary"


@pytest.mark.parametrize("offset", [-301, -300, -1, 0, 1, 300, 301])
async def test_preset_signs_and_slack_sdk_agrees_on_every_clock(offset: int) -> None:
    adapter = preset("slack")
    headers = adapter.sign(BODY, NOW, delivery_id="unused")
    sdk = SignatureVerifier(SECRETS["slack"], FixedClock(NOW + offset))
    sdk_accepts = sdk.is_valid_request(BODY, headers)
    reason = await verdict(adapter, BODY, headers, NOW + offset)
    assert reason in (None, "timestamp_out_of_window")
    assert (reason is None) == sdk_accepts == (abs(offset) <= 300)


# ---------------------------------------------------------------------------------- Twilio
FORM = (
    b"AccountSid=AC0123&Body=Hello+w%C3%B6rld&From=%2B15017122661&MessageSid=SM1"
    b"&MessageStatus=delivered&To=%2B15558675310"
)
PARAMS = {
    "AccountSid": "AC0123",
    "Body": "Hello wörld",
    "From": "+15017122661",
    "MessageSid": "SM1",
    "MessageStatus": "delivered",
    "To": "+15558675310",
}


@pytest.mark.parametrize(
    ("provider", "algorithm"), [("twilio", None), ("twilio-sha256", "HMAC_SHA256")]
)
@pytest.mark.parametrize("port", ["", ":443"])
async def test_twilio_sdk_signs_a_form_and_the_preset_verifies(
    provider: str, algorithm: str | None, port: str
) -> None:
    url = PUBLIC_URLS[provider].replace("example.com", "example.com" + port)
    signature = RequestValidator(SECRETS[provider]).compute_signature(url, PARAMS, algorithm)
    headers = {"X-Twilio-Signature": signature}
    assert await verify(preset(provider), FORM, headers, NOW) == "primary"
    changed = FORM.replace(b"delivered", b"failed")
    assert await refused(preset(provider), changed, headers, NOW) == "signature_mismatch"


@pytest.mark.parametrize(
    ("provider", "algorithm"), [("twilio", None), ("twilio-sha256", "HMAC_SHA256")]
)
async def test_twilio_sdk_signs_a_json_body_and_the_preset_verifies(
    provider: str, algorithm: str | None
) -> None:
    validator = RequestValidator(SECRETS[provider])
    query = "bodySHA256=" + validator.compute_hash(TEXT)
    url = PUBLIC_URLS[provider] + "?" + query
    signature = validator.compute_signature(url, {}, algorithm)
    assert validator.validate(url, TEXT, signature, algorithm) is True
    adapter = preset(provider)
    headers = CIMultiDict({"X-Twilio-Signature": signature})
    verified = await adapter.verify(BODY, headers, NOW, request_for(adapter, BODY, query))
    assert verified.key_id == "primary"
    # the SDK and the preset both refuse a body that no longer matches the signed hash
    tampered = TEXT.replace("2000", "2001")
    assert validator.validate(url, tampered, signature, algorithm) is False
    raw = tampered.encode()
    with pytest.raises(VerificationError) as caught:
        await adapter.verify(raw, headers, NOW, request_for(adapter, raw, query))
    assert caught.value.reason == "body_hash_mismatch"


@pytest.mark.parametrize("provider", ["twilio", "twilio-sha256"])
def test_preset_signs_and_twilio_sdk_validates(provider: str) -> None:
    headers = preset(provider).sign(FORM, NOW, delivery_id="unused")
    settings = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256" if provider != "twilio" else ""
    algorithm = get_signature_algorithm(settings)
    validator = RequestValidator(SECRETS[provider])
    url = PUBLIC_URLS[provider]
    assert validator.validate(url, PARAMS, headers["X-Twilio-Signature"], algorithm) is True
    # the SDK itself tries the URL with the port, as the preset does
    with_port = url.replace("example.com", "example.com:443")
    assert validator.validate(with_port, PARAMS, headers["X-Twilio-Signature"], algorithm)
    wrong = {**PARAMS, "MessageStatus": "failed"}
    assert validator.validate(url, wrong, headers["X-Twilio-Signature"], algorithm) is False


# ---------------------------------------------------------------------------------- Paddle
def paddle_header(timestamp: int) -> str:
    signed = f"{timestamp}:{TEXT}".encode()
    digest = PaddleSignature.calculate_hmac(SECRETS["paddle"], signed).hexdigest()
    return f"ts={timestamp};h1={digest}"


async def test_paddle_sdk_signs_and_the_preset_verifies() -> None:
    headers = {"Paddle-Signature": paddle_header(NOW)}
    assert await verify(preset("paddle"), BODY, headers, NOW) == "primary"


def test_preset_signs_and_paddle_sdk_verifies() -> None:
    header = preset("paddle").sign(BODY, NOW, delivery_id="unused")["Paddle-Signature"]
    assert PaddleSignature().verify(header, TEXT, Secret(SECRETS["paddle"])) is True
    assert PaddleSignature().verify(header, TEXT + " ", Secret(SECRETS["paddle"])) is False


@pytest.mark.parametrize("offset", [-6, -5, 0, 5, 6])
async def test_paddle_window_is_the_sdks(offset: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Verifier()`` (maximum_variance 5) and the preset accept the same clocks."""
    # The package's ``Verifier`` name is the class; its module holds the clock it reads.
    verifier_module = importlib.import_module("paddle_billing.Notifications.Verifier")
    monkeypatch.setattr(verifier_module, "time", lambda: float(NOW + offset))
    monkeypatch.delenv("TEST_MODE", raising=False)
    request = SimpleNamespace(headers={"Paddle-Signature": paddle_header(NOW)}, body=BODY)
    sdk_accepts = Verifier().verify(request, Secret(SECRETS["paddle"]))
    headers = {"Paddle-Signature": paddle_header(NOW)}
    reason = await verdict(preset("paddle"), BODY, headers, NOW + offset)
    assert reason in (None, "timestamp_out_of_window")
    assert (reason is None) == sdk_accepts == (abs(offset) <= 5)


# ---------------------------------------------------------------------------------- Square
def test_preset_signs_and_square_sdk_verifies() -> None:
    header = preset("square").sign(BODY, NOW, delivery_id="unused")
    signature = header["x-square-hmacsha256-signature"]
    arguments: dict[str, Any] = {
        "signature_header": signature,
        "signature_key": SECRETS["square"],
        "notification_url": PUBLIC_URLS["square"],
    }
    assert square_verify(request_body=TEXT, **arguments) is True
    assert square_verify(request_body=TEXT + " ", **arguments) is False
    assert square_verify(request_body=TEXT, **{**arguments, "notification_url": "https://x"}) is (
        False
    )


# ------------------------------------------------------------------------ Svix: Clerk, Resend
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


@pytest.mark.parametrize("provider", ["clerk", "resend"])
async def test_svix_sdk_signs_and_the_preset_verifies(provider: str) -> None:
    at = datetime.fromtimestamp(NOW, tz=UTC)
    signature = SvixWebhook(SECRETS[provider]).sign(MSG_ID, at, TEXT)
    headers = {"svix-id": MSG_ID, "svix-timestamp": str(NOW), "svix-signature": signature}
    assert await verify(preset(provider), BODY, headers, NOW) == "primary"


@pytest.mark.parametrize("provider", ["clerk", "resend"])
def test_preset_signs_and_svix_sdk_verifies(provider: str) -> None:
    headers = preset(provider).sign(BODY, int(time.time()), delivery_id=MSG_ID)
    assert headers["svix-id"] == MSG_ID
    SvixWebhook(SECRETS[provider]).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        SvixWebhook(SECRETS[provider]).verify(BODY + b" ", headers)


def test_preset_signs_and_resend_sdk_verifies() -> None:
    headers = preset("resend").sign(BODY, int(time.time()), delivery_id=MSG_ID)
    options: Any = {
        "payload": TEXT,
        "headers": {
            "id": headers["svix-id"],
            "timestamp": headers["svix-timestamp"],
            "signature": headers["svix-signature"],
        },
        "webhook_secret": SECRETS["resend"],
    }
    assert resend.Webhooks.verify(options) == json.loads(TEXT)
    tampered: Any = {**options, "payload": TEXT + " "}
    with pytest.raises(ValueError, match="no matching signature"):
        resend.Webhooks.verify(tampered)


# ------------------------------------------------------------- githubkit: GitHub, Intercom
@pytest.mark.parametrize(
    ("provider", "header", "method"),
    [
        ("github", "X-Hub-Signature-256", "sha256"),
        ("github-sha1", "X-Hub-Signature", "sha1"),
        ("intercom", "X-Hub-Signature", "sha1"),
    ],
)
async def test_githubkit_signs_and_the_preset_verifies(
    provider: str, header: str, method: Any
) -> None:
    signature = githubkit_sign(SECRETS[provider], BODY, method)
    headers = {header: signature, "X-GitHub-Delivery": "d-1"}
    assert await verify(preset(provider), BODY, headers, NOW) == "primary"


@pytest.mark.parametrize(
    ("provider", "header"),
    [("github", "X-Hub-Signature-256"), ("github-sha1", "X-Hub-Signature"),
     ("intercom", "X-Hub-Signature")],
)  # fmt: skip
def test_preset_signs_and_githubkit_verifies(provider: str, header: str) -> None:
    signature = preset(provider).sign(BODY, NOW, delivery_id="d-1")[header]
    assert githubkit_verify(SECRETS[provider], BODY, signature) is True
    assert githubkit_verify(SECRETS[provider], BODY + b" ", signature) is False
