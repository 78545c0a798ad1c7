"""Verified passthrough presets: senders whose events are not jobs (published as WebhookEvent).

Each preset is the sender's scheme written as engine blocks, plus how to read its event type
and time. The facts (headers, signed bytes, delivery ids, retries) come from each provider's
documentation and official SDK; ``ProviderInfo`` says where a fact is not confirmed. Where a
delivery id is unconfirmed no id is configured: the event id is then the body's hash, which can
publish a redelivery twice (consumers dedupe by ``event_id``) but never drops a distinct event.
"""

from __future__ import annotations

from typing import Any

from adapters.base import ProviderInfo
from adapters.presets.base import Preset

NO_SIGNED_TIME = "none signed: a replay is refused only while dedupe remembers it"
NO_SDK = "none (no official Python verifier): vectors computed from the documented formula"
#: Standard Webhooks as Svix sends it (Clerk, Resend): ``svix-*`` headers, ``webhook-*`` too.
SVIX_SCHEME: dict[str, Any] = {
    "auth": "hmac",
    "name": "standard-webhooks-v1",
    "header": ["svix-signature", "webhook-signature"],
    "encoding": "base64",
    "signature_format": {"pair_separator": " ", "kv_separator": ",", "signature_key": "v1"},
    "signed_content": "{id}.{timestamp}.{body}",
    "secret_encoding": "base64",
    "secret_prefix": "whsec_",
    "timestamp": {"source": "header", "header": ["svix-timestamp", "webhook-timestamp"]},
    "delivery_id": {"header": ["svix-id", "webhook-id"]},
}


def _twilio(algorithm: str) -> dict[str, Any]:
    return {
        "scheme": {
            "auth": "hmac",
            "name": f"twilio-{algorithm}",
            "header": "X-Twilio-Signature",
            "algorithm": algorithm,
            "encoding": "base64",
            "signed_content": "{url}{form_sorted}",
            "url_port_variants": True,
            "body_sha256_param": "bodySHA256",
        },
        "body_format": "auto",
        "mapping": {"kind": "passthrough", "event_type": "type"},
    }


STRIPE = Preset(
    name="stripe",
    info=ProviderInfo(
        title="Stripe",
        kind="passthrough",
        scheme="HMAC-SHA256 hex over `{t}.{body}`; the `whsec_` secret is used as it is, "
        "prefix included (`stripe-v1`)",
        headers="`Stripe-Signature: t=..,v1=..[,v1=..]`",
        delivery_id="body `id` (the event id)",
        replay_window="±300 s (`tolerance_seconds`) both ways; Stripe's SDK bounds only the "
        "past, here a future `t` is refused too",
        retries="up to 3 days (live mode)",
        oracle="`stripe` 16.1.0: `WebhookSignature.generate_signature_header` signs, "
        "`verify_header` verifies (both ways)",
        notes="any of several `v1` may match; `v0` is ignored",
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "stripe-v1",
            "header": "Stripe-Signature",
            "signature_format": {"signature_key": "v1", "timestamp_key": "t"},
            "signed_content": "{timestamp}.{body}",
            "timestamp": {"source": "signature_header"},
            "delivery_id": {"path": "id"},
        },
        "mapping": {"kind": "passthrough", "event_type": "type", "occurred_at": "created"},
    },
)

GITHUB = Preset(
    name="github",
    info=ProviderInfo(
        title="GitHub",
        kind="passthrough",
        scheme="HMAC-SHA256 hex of the body, `sha256=` prefix",
        headers="`X-Hub-Signature-256`, `X-GitHub-Delivery`, `X-GitHub-Event`",
        delivery_id="`X-GitHub-Delivery`",
        replay_window="none signed: dedupe by delivery id",
        retries="no automatic retry; 10 s timeout",
        oracle="official vector (docs.github.com); `githubkit` 0.16.1 `webhooks.sign` / "
        "`verify` (both ways)",
        notes="event type from `X-GitHub-Event` (not signed); the legacy SHA-1 header: "
        "`github-sha1`",
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "github-sha256",
            "header": "X-Hub-Signature-256",
            "prefix": "sha256=",
            "delivery_id": {"header": "X-GitHub-Delivery"},
        },
        "mapping": {"kind": "passthrough", "event_type_header": "X-GitHub-Event"},
    },
)

GITHUB_SHA1 = Preset(
    name="github-sha1",
    info=ProviderInfo(
        title="GitHub (legacy SHA-1 signature)",
        kind="passthrough",
        scheme="HMAC-SHA1 hex of the body, `sha1=` prefix",
        headers="`X-Hub-Signature`, `X-GitHub-Delivery`, `X-GitHub-Event`",
        delivery_id="`X-GitHub-Delivery`",
        replay_window="none signed: dedupe by delivery id",
        retries="no automatic retry; 10 s timeout",
        oracle='`githubkit` 0.16.1 `webhooks.sign(..., "sha1")` / `verify` (both ways)',
        notes="opt-in, for senders that only send the legacy header; prefer `github`",
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "github-sha1",
            "header": "X-Hub-Signature",
            "algorithm": "sha1",
            "prefix": "sha1=",
            "delivery_id": {"header": "X-GitHub-Delivery"},
        },
        "mapping": {"kind": "passthrough", "event_type_header": "X-GitHub-Event"},
    },
)

SHOPIFY = Preset(
    name="shopify",
    info=ProviderInfo(
        title="Shopify",
        kind="passthrough",
        scheme="HMAC-SHA256 **base64** of the body, keyed with the app's client secret",
        headers="`X-Shopify-Hmac-Sha256` (Events preview: `Shopify-Hmac-Sha256`), "
        "`X-Shopify-Webhook-Id`, `X-Shopify-Topic`",
        delivery_id="`X-Shopify-Webhook-Id`",
        replay_window="none signed (`X-Shopify-Triggered-At` is not signed): dedupe by webhook id",
        retries="8 retries over 4 h",
        oracle=NO_SDK,
        notes="a rotated secret takes up to 1 h to apply: list the old and the new one; "
        "event type from `X-Shopify-Topic` (not signed)",
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "shopify-hmac-sha256",
            "header": ["X-Shopify-Hmac-Sha256", "Shopify-Hmac-Sha256"],
            "encoding": "base64",
            "delivery_id": {"header": "X-Shopify-Webhook-Id"},
        },
        "mapping": {"kind": "passthrough", "event_type_header": "X-Shopify-Topic"},
    },
)

SLACK = Preset(
    name="slack",
    info=ProviderInfo(
        title="Slack",
        kind="passthrough",
        scheme="HMAC-SHA256 hex over `v0:{ts}:{body}`, `v0=` prefix (`slack-v0`)",
        headers="`X-Slack-Signature`, `X-Slack-Request-Timestamp`",
        delivery_id="body `event_id` (Events API); slash commands and interactions: the body hash",
        replay_window="±300 s",
        retries="3 (now, ~1 min, ~5 min)",
        oracle="`slack_sdk` 3.48.0: `SignatureVerifier.generate_signature` signs, `is_valid` "
        "verifies (both ways)",
        notes='`url_verification` answered with `{"challenge": ...}`; JSON and form bodies',
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "slack-v0",
            "header": "X-Slack-Signature",
            "prefix": "v0=",
            "signed_content": "v0:{timestamp}:{body}",
            "timestamp": {"source": "header", "header": "X-Slack-Request-Timestamp"},
            "delivery_id": {"path": "event_id"},
        },
        "body_format": "auto",
        "mapping": {
            "kind": "passthrough",
            "event_type": "event.type || type || command",
            "occurred_at": "event_time",
        },
        "handshakes": [
            {"kind": "json_echo", "when": "type == 'url_verification'", "field": "challenge"}
        ],
    },
)

TWILIO = Preset(
    name="twilio",
    info=ProviderInfo(
        title="Twilio (Auth Token)",
        kind="passthrough",
        scheme="HMAC-SHA1 **base64** over the URL + each form parameter's name and value, "
        "names sorted; JSON bodies: the URL carries `bodySHA256=<hex>`, which must equal the "
        "body's SHA-256",
        headers="`X-Twilio-Signature`",
        delivery_id="none used (`I-Twilio-Idempotency-Token` unconfirmed): the body hash",
        replay_window=NO_SIGNED_TIME,
        retries="unconfirmed",
        oracle="`twilio` 9.13.0: `RequestValidator.compute_signature` signs, `validate` "
        "verifies (both ways)",
        notes="needs `public_url` (the URL Twilio calls); accepted with and without the "
        "default port, as the SDK does; secret: the account Auth Token",
    ),
    options=_twilio("sha1"),
)

TWILIO_SHA256 = Preset(
    name="twilio-sha256",
    info=ProviderInfo(
        title="Twilio (SharedKey)",
        kind="passthrough",
        scheme="as `twilio`, HMAC-SHA256 keyed with a SharedKey secret",
        headers="`X-Twilio-Signature`, `X-Twilio-Webhooks-Signature-Settings: "
        "key=..,algorithm=HMAC_SHA256` (not required)",
        delivery_id="as `twilio`",
        replay_window=NO_SIGNED_TIME,
        retries="unconfirmed",
        oracle="`twilio` 9.13.0 with `algorithm=HMAC_SHA256` (both ways)",
        notes="needs `public_url`; secret: the SharedKey's secret",
    ),
    options=_twilio("sha256"),
)

PADDLE = Preset(
    name="paddle",
    info=ProviderInfo(
        title="Paddle Billing",
        kind="passthrough",
        scheme="HMAC-SHA256 hex over `{ts}:{body}` (`paddle-h1`)",
        headers="`Paddle-Signature: ts=..;h1=..`",
        delivery_id="body `event_id` (unconfirmed as the retry-stable id)",
        replay_window="±5 s, as Paddle's SDK (`Verifier(maximum_variance=5)`)",
        retries="60 in 3 days (live)",
        oracle="`paddle-python-sdk` 1.16.1: `PaddleSignature.calculate_hmac` signs, "
        "`PaddleSignature().verify` verifies (both ways)",
        notes="any of several `h1` may match; widen the window with "
        "`scheme.timestamp.max_age_seconds`",
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "paddle-h1",
            "header": "Paddle-Signature",
            "signature_format": {
                "pair_separator": ";",
                "signature_key": "h1",
                "timestamp_key": "ts",
            },
            "signed_content": "{timestamp}:{body}",
            "timestamp": {
                "source": "signature_header",
                "max_age_seconds": 5,
                "max_future_seconds": 5,
            },
            "delivery_id": {"path": "event_id"},
        },
        "mapping": {
            "kind": "passthrough",
            "event_type": "event_type",
            "occurred_at": "occurred_at",
        },
    },
)

SQUARE = Preset(
    name="square",
    info=ProviderInfo(
        title="Square",
        kind="passthrough",
        scheme="HMAC-SHA256 **base64** over the notification URL + the body, keyed with the "
        "subscription's signature key",
        headers="`x-square-hmacsha256-signature`",
        delivery_id="body `event_id`",
        replay_window=NO_SIGNED_TIME,
        retries="backoff up to 24 h",
        oracle="`squareup` 46.0.0.20260916: `verify_signature` verifies (signed here, checked "
        "there; the SDK does not sign)",
        notes="needs `public_url`: the notification URL exactly as in Square's dashboard",
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "square-hmac-sha256",
            "header": "x-square-hmacsha256-signature",
            "encoding": "base64",
            "signed_content": "{url}{body}",
            "delivery_id": {"path": "event_id"},
        },
        "mapping": {"kind": "passthrough", "event_type": "type", "occurred_at": "created_at"},
    },
)

LINEAR = Preset(
    name="linear",
    info=ProviderInfo(
        title="Linear",
        kind="passthrough",
        scheme="HMAC-SHA256 hex of the body (bare hex)",
        headers="`Linear-Signature`, `Linear-Delivery`, `Linear-Event`",
        delivery_id="`Linear-Delivery`",
        replay_window="body `webhookTimestamp` (milliseconds, inside the signed body), ±60 s",
        retries="unconfirmed",
        oracle=NO_SDK,
        notes="event type: the body's `type` and `action` (`Issue.create`), else `Linear-Event`",
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "linear-sha256",
            "header": "Linear-Signature",
            "timestamp": {
                "source": "body",
                "path": "webhookTimestamp",
                "unit": "milliseconds",
                "max_age_seconds": 60,
                "max_future_seconds": 60,
            },
            "delivery_id": {"header": "Linear-Delivery"},
        },
        "mapping": {
            "kind": "passthrough",
            "event_type": "join('.', [type, action][?@ != null])",
            "event_type_header": "Linear-Event",
            "occurred_at": "createdAt",
        },
    },
)

INTERCOM = Preset(
    name="intercom",
    info=ProviderInfo(
        title="Intercom",
        kind="passthrough",
        scheme="HMAC-SHA1 hex of the body, `sha1=` prefix, keyed with the app's client secret",
        headers="`X-Hub-Signature`",
        delivery_id="unconfirmed: the body hash (override with `scheme.delivery_id`)",
        replay_window=NO_SIGNED_TIME,
        retries="unconfirmed",
        oracle='`githubkit` 0.16.1 `webhooks.sign(..., "sha1")`: the same format (both ways)',
        notes="the signed `ping` sent when the subscription is saved is accepted as an event",
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "intercom-sha1",
            "header": "X-Hub-Signature",
            "algorithm": "sha1",
            "prefix": "sha1=",
        },
        "mapping": {"kind": "passthrough", "event_type": "topic", "occurred_at": "created_at"},
    },
)

ZOOM = Preset(
    name="zoom",
    info=ProviderInfo(
        title="Zoom",
        kind="passthrough",
        scheme="HMAC-SHA256 hex over `v0:{ts}:{body}`, `v0=` prefix, keyed with the app's "
        "secret token",
        headers="`x-zm-signature`, `x-zm-request-timestamp`",
        delivery_id="unconfirmed: the body hash",
        replay_window="±300 s (Zoom's own tolerance is unconfirmed)",
        retries="3 (+5, +20, +60 min)",
        oracle=NO_SDK,
        notes="`endpoint.url_validation` answered with `plainToken` and `encryptedToken` "
        "(HMAC-SHA256 hex of it with the secret token)",
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "zoom-v0",
            "header": "x-zm-signature",
            "prefix": "v0=",
            "signed_content": "v0:{timestamp}:{body}",
            "timestamp": {"source": "header", "header": "x-zm-request-timestamp"},
        },
        "mapping": {
            "kind": "passthrough",
            "event_type": "event",
            "occurred_at": "event_ts",
            "occurred_at_unit": "milliseconds",
        },
        "handshakes": [
            {
                "kind": "hmac_challenge",
                "when": "event == 'endpoint.url_validation'",
                "token": "payload.plainToken",
            }
        ],
    },
)

CLERK = Preset(
    name="clerk",
    info=ProviderInfo(
        title="Clerk (Svix)",
        kind="passthrough",
        scheme="Standard Webhooks `v1` as Svix sends it: HMAC-SHA256 base64 over "
        "`{id}.{ts}.{body}`, `whsec_` + base64 secret",
        headers="`svix-id`, `svix-timestamp`, `svix-signature` (or `webhook-*`)",
        delivery_id="`svix-id`",
        replay_window="±300 s",
        retries="unconfirmed for Clerk (delivered through Svix)",
        oracle="`svix` 2.9.1: `Webhook.sign` signs, `Webhook.verify` verifies (both ways)",
        notes="any of several `v1` may match (secret rotation)",
    ),
    options={
        "scheme": SVIX_SCHEME,
        "mapping": {
            "kind": "passthrough",
            "event_type": "type",
            "occurred_at": "timestamp",
            "occurred_at_unit": "milliseconds",
        },
    },
)

RESEND = Preset(
    name="resend",
    info=ProviderInfo(
        title="Resend (Svix)",
        kind="passthrough",
        scheme="Standard Webhooks `v1` as Svix sends it (as `clerk`)",
        headers="`svix-id`, `svix-timestamp`, `svix-signature` (or `webhook-*`)",
        delivery_id="`svix-id`",
        replay_window="±300 s",
        retries="now, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h",
        oracle="`svix` 2.9.1 `Webhook.sign` signs; `resend` 2.52.0 `Webhooks.verify` verifies "
        "(both ways)",
        notes="any of several `v1` may match (secret rotation)",
    ),
    options={
        "scheme": SVIX_SCHEME,
        "mapping": {"kind": "passthrough", "event_type": "type", "occurred_at": "created_at"},
    },
)

MUX = Preset(
    name="mux",
    info=ProviderInfo(
        title="Mux",
        kind="passthrough",
        scheme="HMAC-SHA256 hex over `{t}.{body}` (`mux-v1`)",
        headers="`Mux-Signature: t=..,v1=..`",
        delivery_id="unconfirmed: the body hash",
        replay_window="±300 s (Mux leaves the tolerance to the receiver)",
        retries="unconfirmed",
        oracle=NO_SDK,
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "mux-v1",
            "header": "Mux-Signature",
            "signature_format": {"signature_key": "v1", "timestamp_key": "t"},
            "signed_content": "{timestamp}.{body}",
            "timestamp": {"source": "signature_header"},
        },
        "mapping": {"kind": "passthrough", "event_type": "type", "occurred_at": "created_at"},
    },
)

CLOUDFLARE_STREAM = Preset(
    name="cloudflare-stream",
    info=ProviderInfo(
        title="Cloudflare Stream",
        kind="passthrough",
        scheme="HMAC-SHA256 hex over `{time}.{body}` (`cloudflare-stream-sig1`)",
        headers="`Webhook-Signature: time=..,sig1=..`",
        delivery_id="unconfirmed: the body hash",
        replay_window="±300 s (Cloudflare's own tolerance is unconfirmed)",
        retries="unconfirmed",
        oracle=NO_SDK,
        notes="secret: the one `PUT /stream/webhook` returns; event type: the video's "
        "`status.state`",
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "cloudflare-stream-sig1",
            "header": "Webhook-Signature",
            "signature_format": {"signature_key": "sig1", "timestamp_key": "time"},
            "signed_content": "{timestamp}.{body}",
            "timestamp": {"source": "signature_header"},
        },
        "mapping": {"kind": "passthrough", "event_type": "status.state", "occurred_at": "modified"},
    },
)

VERCEL = Preset(
    name="vercel",
    info=ProviderInfo(
        title="Vercel",
        kind="passthrough",
        scheme="HMAC-SHA1 hex of the body, keyed with the webhook's (or integration's client) "
        "secret",
        headers="`x-vercel-signature`",
        delivery_id="body `id`",
        replay_window=NO_SIGNED_TIME,
        retries="backoff up to 24 h",
        oracle=NO_SDK,
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "vercel-sha1",
            "header": "x-vercel-signature",
            "algorithm": "sha1",
            "delivery_id": {"path": "id"},
        },
        "mapping": {
            "kind": "passthrough",
            "event_type": "type",
            "occurred_at": "createdAt",
            "occurred_at_unit": "milliseconds",
        },
    },
)

PRESETS = (
    STRIPE,
    GITHUB,
    GITHUB_SHA1,
    SHOPIFY,
    SLACK,
    TWILIO,
    TWILIO_SHA256,
    PADDLE,
    SQUARE,
    LINEAR,
    INTERCOM,
    ZOOM,
    CLERK,
    RESEND,
    MUX,
    CLOUDFLARE_STREAM,
    VERCEL,
)
