"""The verified passthrough presets as a user configures them: ``provider: <name>`` plus a secret.

For every preset: it builds from nothing but its secret (and, for senders that sign their URL,
the URL), its shipped samples sign and verify, normalize into a ``WebhookEvent`` that validates
against the published JSON Schema with the event type and time the sender gave, and its row in
``docs/providers.md`` is the registry's. Handshakes (Slack, Zoom) are answered from the preset
alone. Vectors (``tests/vectors/<preset>/``) and the providers' SDKs (``test_presets_oracles``)
check the signatures independently.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from multidict import CIMultiDict

from adapters import ADAPTERS, ConfigError, VerificationError, build_adapter
from adapters.base import Passthrough, Verified
from adapters.examples import render as render_example
from adapters.presets import PRESETS, events
from tests.presets_support import (
    NOW,
    PASSTHROUGH,
    PUBLIC_URLS,
    SAMPLES,
    SECRETS,
    SVIX_OTHER,
    Sample,
    minimal_spec,
    preset,
    request_for,
    sample_body,
    sample_id,
    shipped_samples,
    webhook_event,
    with_secret,
)
from tests.support import ROOT

PROVIDER_DOCS = ROOT / "docs" / "providers.md"


def test_every_passthrough_preset_is_registered() -> None:
    assert {p.name for p in events.PRESETS} <= {p.name for p in PRESETS}
    assert len(set(PASSTHROUGH)) == len(PASSTHROUGH)
    for item in events.PRESETS:
        cls = ADAPTERS[item.name]
        assert cls.provider == item.name
        assert cls.info == item.info
        assert item.info.kind == "passthrough"


@pytest.mark.parametrize("name", PASSTHROUGH)
def test_each_preset_row_is_in_the_provider_docs(name: str) -> None:
    info = events.PRESETS[PASSTHROUGH.index(name)].info
    text = PROVIDER_DOCS.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith(f"| `{name}` |")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split(" | ")]
    assert cells[1:4] == [info.title, "passthrough", info.scheme.replace("|", "\\|")]
    assert info.oracle in rows[0]
    for field in (info.headers, info.delivery_id, info.replay_window, info.retries):
        assert field in rows[0]


def test_every_preset_ships_a_sample_and_every_sample_is_checked() -> None:
    checked = {(s.provider, s.name) for s in SAMPLES}
    assert checked == shipped_samples()
    assert {s.provider for s in SAMPLES} == set(PASSTHROUGH)


@pytest.mark.parametrize("name", PASSTHROUGH)
def test_a_secret_is_all_a_preset_needs(name: str) -> None:
    adapter = preset(name)
    assert adapter.provider == name
    assert adapter.may_pass_through
    assert adapter.scheme.auth == "hmac"
    # the signature header is never logged nor kept on a dead letter
    assert {h.lower() for h in adapter.scheme.headers} <= adapter.sensitive_headers
    assert adapter.scheme.name == adapter.scheme_name


@pytest.mark.parametrize("name", sorted(PUBLIC_URLS))
def test_senders_that_sign_their_url_need_it(name: str) -> None:
    spec = minimal_spec(name)
    bare = type(spec)(name=spec.name, provider=spec.provider, secrets=spec.secrets)
    with pytest.raises(ConfigError) as caught:
        build_adapter(bare)
    assert caught.value.reason == "invalid_template"
    assert "public_url" in caught.value.detail


def test_a_preset_without_a_secret_is_refused() -> None:
    spec = minimal_spec("stripe")
    with pytest.raises(ConfigError) as caught:
        build_adapter(type(spec)(name="s", provider="stripe"))
    assert caught.value.reason == "no_secret"


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample_id(s) for s in SAMPLES])
async def test_shipped_sample_signs_verifies_and_becomes_a_webhook_event(sample: Sample) -> None:
    adapter = preset(sample.provider)
    raw = sample_body(sample)
    headers = CIMultiDict(adapter.sign(raw, NOW, delivery_id="dlv_1"))
    request = request_for(adapter, raw)
    verified = await adapter.verify(raw, headers, NOW, request)
    assert verified.scheme == adapter.scheme_name
    assert verified.key_id == "primary"
    if adapter.scheme.timestamp is not None and adapter.scheme.timestamp.source != "body":
        assert verified.signed_at == NOW

    payload = adapter.parse(raw, request)
    reply = await adapter.handshake(payload, verified, request)
    assert (reply is not None) == sample.handshake
    facts = adapter.normalize(payload, verified, NOW)
    assert isinstance(facts, Passthrough)
    assert facts.event_type == sample.event_type
    assert facts.occurred_at == sample.occurred_at
    event, document = webhook_event(
        facts, verified, provider=adapter.event_provider, raw=raw, payload=payload
    )
    assert document["provider"] == sample.provider
    assert document["delivery"]["scheme"] == adapter.scheme_name
    assert event.raw == payload

    # the signature binds the body
    with pytest.raises(VerificationError) as caught:
        await adapter.verify(raw + b" ", headers, NOW, request)
    assert caught.value.reason in ("signature_mismatch", "body_hash_mismatch")
    # and the secret
    other = with_secret(sample.provider, SVIX_OTHER if sample.provider in ("clerk", "resend")
                        else "another-secret")  # fmt: skip
    with pytest.raises(VerificationError) as caught:
        await other.verify(raw, headers, NOW, request)
    assert caught.value.reason == "signature_mismatch"


@pytest.mark.parametrize(
    ("name", "header", "value", "event_type"),
    [
        ("github", "X-GitHub-Event", "push", "push"),
        ("github-sha1", "X-GitHub-Event", "issues", "issues"),
        ("shopify", "X-Shopify-Topic", "orders/create", "orders/create"),
    ],
)
async def test_event_type_from_an_unsigned_header(
    name: str, header: str, value: str, event_type: str
) -> None:
    adapter = preset(name)
    raw = b'{"id": 1}'
    headers = CIMultiDict(adapter.sign(raw, NOW, delivery_id="d-1"))
    headers[header] = value
    verified = await adapter.verify(raw, headers, NOW)
    facts = adapter.normalize(adapter.parse(raw, request_for(adapter, raw)), verified, NOW)
    assert isinstance(facts, Passthrough)
    assert facts.event_type == event_type


async def test_linear_event_type_falls_back_to_its_header() -> None:
    adapter = preset("linear")
    raw = json.dumps({"webhookTimestamp": NOW * 1000, "data": {"id": "x"}}).encode()
    headers = CIMultiDict(adapter.sign(raw, NOW, delivery_id="d-1"))
    headers["Linear-Event"] = "Comment"
    verified = await adapter.verify(raw, headers, NOW)
    facts = adapter.normalize(adapter.parse(raw, request_for(adapter, raw)), verified, NOW)
    assert isinstance(facts, Passthrough)
    assert facts.event_type == "Comment"


async def test_slack_url_verification_is_answered_with_the_challenge() -> None:
    adapter = preset("slack")
    sample = next(s for s in SAMPLES if s.name == "url_verification")
    raw = sample_body(sample)
    headers = CIMultiDict(adapter.sign(raw, NOW, delivery_id="unused"))
    verified = await adapter.verify(raw, headers, NOW)
    request = request_for(adapter, raw)
    reply = await adapter.handshake(adapter.parse(raw, request), verified, request)
    assert reply is not None
    assert reply.kind == "json_echo"
    assert reply.status == 200
    assert json.loads(reply.body) == {"challenge": json.loads(raw)["challenge"]}


async def test_slack_events_are_not_mistaken_for_the_handshake() -> None:
    adapter = preset("slack")
    raw = sample_body(next(s for s in SAMPLES if s.name == "event_callback"))
    verified = Verified(scheme="slack-v0", key_id="primary", delivery_id=None)
    reply = await adapter.handshake(json.loads(raw), verified, request_for(adapter, raw))
    assert reply is None


async def test_zoom_url_validation_is_answered_with_the_hmac_of_the_token() -> None:
    adapter = preset("zoom")
    sample = next(s for s in SAMPLES if s.name == "endpoint.url_validation")
    raw = sample_body(sample)
    headers = CIMultiDict(adapter.sign(raw, NOW, delivery_id="unused"))
    request = request_for(adapter, raw)
    verified = await adapter.verify(raw, headers, NOW, request)
    reply = await adapter.handshake(adapter.parse(raw, request), verified, request)
    assert reply is not None
    assert reply.kind == "hmac_challenge"
    token = json.loads(raw)["payload"]["plainToken"]
    expected = hmac.new(SECRETS["zoom"].encode(), token.encode(), hashlib.sha256).hexdigest()
    assert json.loads(reply.body) == {"plainToken": token, "encryptedToken": expected}


async def test_zoom_url_validation_must_be_signed() -> None:
    adapter = preset("zoom")
    raw = sample_body(next(s for s in SAMPLES if s.name == "endpoint.url_validation"))
    headers = CIMultiDict(adapter.sign(raw, NOW, delivery_id="unused"))
    headers["x-zm-signature"] = "v0=" + "0" * 64
    with pytest.raises(VerificationError) as caught:
        await adapter.verify(raw, headers, NOW)
    assert caught.value.reason == "signature_mismatch"


async def test_a_preset_block_can_be_overridden_per_source() -> None:
    # Shopify's Events preview, or a proxy that renames headers: one key changes, the rest stays.
    adapter = preset("shopify", options={"scheme": {"header": "X-Relay-Hmac"}})
    assert adapter.scheme.encoding == "base64"
    raw = b'{"id": 7}'
    headers = CIMultiDict(adapter.sign(raw, NOW, delivery_id="w-1"))
    assert "X-Relay-Hmac" in headers
    verified = await adapter.verify(raw, headers, NOW)
    assert verified.delivery_id == "w-1"


async def test_paddle_window_is_five_seconds_unless_widened() -> None:
    raw = b'{"event_id": "evt_1", "event_type": "x"}'
    strict = preset("paddle")
    headers = CIMultiDict(strict.sign(raw, NOW, delivery_id="unused"))
    await strict.verify(raw, headers, NOW + 5)
    with pytest.raises(VerificationError) as caught:
        await strict.verify(raw, headers, NOW + 6)
    assert caught.value.reason == "timestamp_out_of_window"
    wide = preset("paddle", options={"scheme": {"timestamp": {"max_age_seconds": 60}}})
    await wide.verify(raw, headers, NOW + 60)
    assert wide.replay_window_seconds() == 60


@pytest.mark.parametrize(
    "sample", [s for s in SAMPLES if not s.handshake], ids=lambda s: sample_id(s)
)
def test_each_send_of_a_sample_is_a_new_event(sample: Sample) -> None:
    """``send`` fills a fresh id or time in, so two sends are two events, not a duplicate."""
    first = render_example(sample.provider, sample.name, job_id="a" * 20, now=NOW)
    second = render_example(sample.provider, sample.name, job_id="b" * 20, now=NOW + 1)
    assert first != second
