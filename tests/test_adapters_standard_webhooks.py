"""Standard Webhooks senders (generic, Replicate, OpenAI): what the vector files cannot say."""

from __future__ import annotations

import pytest

from adapters import ConfigError, VerificationError
from adapters.primitives.standard_webhooks import SENSITIVE_HEADERS
from tests.helpers_adapters import (
    SW_BODY,
    SW_ID,
    SW_SECRET,
    SW_SIG,
    SW_TS,
    V1A_PUBLIC,
    V1A_SIG,
    make_adapter,
    sw_headers,
    sw_sign,
)

SW_PROVIDERS = ("standard-webhooks", "replicate", "openai")
OPENAI_SECRET = "whsec_RdvaYFYUXuIFuEbvZHwMfYFhUf7aMYjYcmM24+Aj40c="
OPENAI_ID = "wh_685c059ae39c8190af8c71ed1022a24d"
OPENAI_TS = 1750861210
OPENAI_BODY = (
    b'{"id": "evt_685c059ae3a481909bdc86819b066fb6", "object": "event", "created_at": 1750861210,'
    b' "type": "response.completed", "data": {"id": "resp_123"}}'
)
OPENAI_SIG = "v1,gUAg4R2hWouRZqRQG4uJypNS8YK885G838+EHb4nKBY="


@pytest.mark.parametrize("provider", SW_PROVIDERS)
async def test_official_vector_through_every_standard_webhooks_adapter(provider: str) -> None:
    adapter = make_adapter(provider, secrets=[("primary", SW_SECRET)])
    verified = await adapter.verify(SW_BODY, sw_headers(), SW_TS)
    assert (verified.scheme, verified.key_id, verified.delivery_id, verified.signed_at) == (
        "standard-webhooks-v1",
        "primary",
        SW_ID,
        SW_TS,
    )
    assert adapter.sensitive_headers == SENSITIVE_HEADERS


@pytest.mark.parametrize("provider", SW_PROVIDERS)
def test_a_source_needs_a_secret_or_a_key(provider: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_adapter(provider)
    assert caught.value.reason == "no_keys"


def test_raw_secret_is_base64_for_the_generic_adapter_and_utf8_for_openai() -> None:
    with pytest.raises(ConfigError) as caught:
        make_adapter("standard-webhooks", secrets=[("p", "synthetic-webhook-secret")])
    assert caught.value.reason == "invalid_secret"
    make_adapter("openai", secrets=[("p", "synthetic-webhook-secret")])


async def test_openai_official_vector_also_verifies_as_generic_standard_webhooks() -> None:
    headers = sw_headers(OPENAI_SIG, OPENAI_ID, OPENAI_TS)
    for provider in SW_PROVIDERS:
        adapter = make_adapter(provider, secrets=[("p", OPENAI_SECRET)])
        assert (await adapter.verify(OPENAI_BODY, headers, OPENAI_TS)).delivery_id == OPENAI_ID


async def test_timestamp_text_is_signed_as_received() -> None:
    """Leading zeros are digits: the signature must cover the text exactly as sent."""
    adapter = make_adapter("openai", secrets=[("p", SW_SECRET)])
    text = "0" + str(SW_TS)
    signature = sw_sign(SW_SECRET, SW_ID, text, SW_BODY)
    verified = await adapter.verify(SW_BODY, sw_headers(signature, ts=text), SW_TS)
    assert verified.signed_at == SW_TS


@pytest.mark.parametrize(
    ("signature", "ts"),
    [
        (SW_SIG.removeprefix("v1,"), str(SW_TS)),  # the OpenAI SDK accepts a bare signature
        (SW_SIG, "+" + str(SW_TS)),  # the OpenAI SDK accepts int("+1614265330")
        (SW_SIG, f" {SW_TS}x"),
    ],
)
async def test_openai_is_stricter_than_its_sdk_on_purpose(signature: str, ts: str) -> None:
    """OpenAI always sends ``v1,`` and plain digits; the gateway accepts nothing looser."""
    adapter = make_adapter("openai", secrets=[("p", SW_SECRET)])
    with pytest.raises(VerificationError) as caught:
        await adapter.verify(SW_BODY, sw_headers(signature, ts=ts), SW_TS)
    assert caught.value.reason == "malformed_header"


async def test_tolerance_is_configurable() -> None:
    adapter = make_adapter("replicate", secrets=[("p", SW_SECRET)], tolerance_seconds=30)
    await adapter.verify(SW_BODY, sw_headers(), SW_TS + 30)
    with pytest.raises(VerificationError) as caught:
        await adapter.verify(SW_BODY, sw_headers(), SW_TS + 31)
    assert caught.value.reason == "timestamp_out_of_window"


async def test_v1_and_v1a_entries_in_one_header() -> None:
    adapter = make_adapter(
        "standard-webhooks", secrets=[("hmac", SW_SECRET)], public_keys=[("ed", V1A_PUBLIC)]
    )
    both = await adapter.verify(SW_BODY, sw_headers(f"{V1A_SIG} {SW_SIG}"), SW_TS)
    assert both.scheme == "standard-webhooks-v1"  # v1 is checked first
    broken_v1 = "v1," + "A" * 43 + "="
    v1a_only = await adapter.verify(SW_BODY, sw_headers(f"{broken_v1} {V1A_SIG}"), SW_TS)
    assert (v1a_only.scheme, v1a_only.key_id) == ("standard-webhooks-v1a", "ed")


async def test_order_of_checks() -> None:
    """Missing headers first, then the id, then the clock, then the signature."""
    adapter = make_adapter("standard-webhooks", secrets=[("p", SW_SECRET)])
    cases = [
        (sw_headers("v2,x", "msg.1", "12a"), SW_TS, "malformed_header"),  # id has a dot
        (sw_headers("v2,x", ts="12a"), SW_TS, "malformed_header"),  # timestamp text
        (sw_headers("v2,x"), SW_TS + 1000, "timestamp_out_of_window"),
        (sw_headers("v2,x"), SW_TS, "unsupported_signature_version"),
    ]
    for headers, now, reason in cases:
        with pytest.raises(VerificationError) as caught:
            await adapter.verify(SW_BODY, headers, now)
        assert caught.value.reason == reason


@pytest.mark.parametrize("provider", SW_PROVIDERS)
async def test_undecodable_webhook_id_bytes_are_malformed(provider: str) -> None:
    """A ``webhook-id`` that was not UTF-8 on the wire must be refused, not crash.

    aiohttp decodes header values with ``errors="surrogateescape"``, so the byte 0xff arrives
    as ``"\\udcff"``. BUG (adapters/primitives/standard_webhooks.py ``signed_content``):
    ``msg_id.encode()`` raises ``UnicodeEncodeError`` out of ``verify`` (a 500, not a 401).
    """
    adapter = make_adapter(provider, secrets=[("p", SW_SECRET)])
    with pytest.raises(VerificationError) as caught:
        await adapter.verify(SW_BODY, sw_headers(msg_id="msg_\udcff"), SW_TS)
    assert caught.value.reason == "malformed_header"
