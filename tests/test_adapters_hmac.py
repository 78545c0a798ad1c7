"""Abstrakt and InstantAPI: HMAC-SHA256 hex of the raw body in one header."""

from __future__ import annotations

import json

import pytest

from adapters import ConfigError, VerificationError, build_adapter
from tests.helpers_adapters import HMAC_SECRET, headers, hmac_hex, make_adapter, make_spec

HEADER = {"abstrakt": "X-Abstrakt-Signature", "instantapi": "X-InstantAPI-Signature"}
BODY = json.dumps({"request_id": "abc123", "status": "completed"}).encode()


@pytest.mark.parametrize("provider", HEADER)
async def test_verifies_the_exact_bytes(provider: str) -> None:
    adapter = make_adapter(provider, secrets=[("primary", HMAC_SECRET)])
    verified = await adapter.verify(
        BODY, headers((HEADER[provider], hmac_hex(HMAC_SECRET, BODY))), 0
    )
    assert (verified.scheme, verified.key_id, verified.delivery_id) == (
        "hmac-sha256-hex",
        "primary",
        None,
    )
    reserialized = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
    with pytest.raises(VerificationError) as caught:
        await adapter.verify(
            reserialized, headers((HEADER[provider], hmac_hex(HMAC_SECRET, BODY))), 0
        )
    assert caught.value.reason == "signature_mismatch"


@pytest.mark.parametrize("provider", HEADER)
async def test_the_other_providers_header_is_not_accepted(provider: str) -> None:
    other = next(h for p, h in HEADER.items() if p != provider)
    adapter = make_adapter(provider, secrets=[("primary", HMAC_SECRET)])
    with pytest.raises(VerificationError) as caught:
        await adapter.verify(BODY, headers((other, hmac_hex(HMAC_SECRET, BODY))), 0)
    assert caught.value.reason == "missing_header"


@pytest.mark.parametrize("provider", HEADER)
def test_options(provider: str) -> None:
    make_adapter(provider, secrets=[("p", "s")], options={"max_age_seconds": 0})
    for bad in ({"max_age_seconds": "soon"}, {"max_age": 10}):
        with pytest.raises(ConfigError) as caught:
            make_adapter(provider, secrets=[("p", "s")], options=bad)
        assert caught.value.reason == "invalid_options"


@pytest.mark.parametrize("provider", HEADER)
def test_sign_without_a_secret_is_a_config_error(provider: str) -> None:
    spec = make_spec(provider)
    try:
        adapter = build_adapter(spec)
    except ConfigError:
        return  # refused at build time: also fine
    with pytest.raises(ConfigError) as caught:
        adapter.sign(BODY, 0, delivery_id="x")
    assert caught.value.reason == "no_secret"


@pytest.mark.parametrize("provider", HEADER)
def test_a_source_without_a_secret_is_refused_at_build_time(provider: str) -> None:
    """Like fal and Standard Webhooks (``no_keys``), a source that can never verify anything
    must fail ``check-config``. BUG (adapters/providers/hmac_body.py): ``HmacBodyAdapter`` builds
    happily with no secret and then answers every delivery ``signature_mismatch``.
    """
    with pytest.raises(ConfigError) as caught:
        build_adapter(make_spec(provider))
    assert caught.value.reason in {"no_secret", "no_keys"}
