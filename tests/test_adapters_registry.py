"""What every adapter shares: the registry, configuration errors, and sign → verify round trips."""

from __future__ import annotations

import json

import pytest
from multidict import CIMultiDict

from adapters import (
    ADAPTERS,
    Adapter,
    AdapterServices,
    ConfigError,
    VerificationError,
    adapter_class,
    build_adapter,
)
from adapters.presets import PRESETS
from adapters.providers.fal import FalAdapter
from adapters.registry import _build
from adapters.testing_keys import FAL_TEST_PUBLIC_X, TEST_PUBLIC_KEYS, V1A_TEST_PUBLIC
from tests.helpers_adapters import (
    ASYMMETRIC_PROVIDERS,
    FAL_JWKS_URL,
    PROVIDERS,
    SIGNING_HEADERS,
    FakeFetcher,
    default_adapter,
    jwks_bytes,
    make_spec,
    v1a_adapter,
)

NOW = 1_750_000_000
BODY = json.dumps({"id": "job_1", "status": "succeeded", "request_id": "req-1"}).encode()


def test_registry_lists_every_provider() -> None:
    presets = {preset.name for preset in PRESETS}
    assert set(ADAPTERS) == {*PROVIDERS, *ASYMMETRIC_PROVIDERS, "generic", *presets}
    assert all(ADAPTERS[name].info is not None for name in ADAPTERS)
    for provider in PROVIDERS:
        cls = adapter_class(provider)
        assert cls.provider == provider
        assert type(default_adapter(provider)) is cls


def test_unknown_provider() -> None:
    with pytest.raises(ConfigError) as caught:
        build_adapter(make_spec("no-such-provider", secrets=[("p", "whsec_x")]))
    assert caught.value.reason == "unknown_provider"
    assert "fal" in caught.value.detail


def test_two_adapters_cannot_claim_one_name() -> None:
    with pytest.raises(RuntimeError):
        _build(FalAdapter, FalAdapter)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unknown_options_are_refused(provider: str) -> None:
    secrets = [] if provider == "fal" else [("p", "whsec_" + "A" * 32)]
    keys = [("k", FAL_TEST_PUBLIC_X)] if provider == "fal" else []
    spec = make_spec(provider, secrets=secrets, public_keys=keys, options={"tolerance": 5})
    with pytest.raises(ConfigError) as caught:
        build_adapter(spec)
    assert caught.value.reason == "invalid_options"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sensitive_headers_cover_the_signature(provider: str) -> None:
    cls = adapter_class(provider)
    assert cls.sensitive_headers
    assert all(name == name.lower() for name in cls.sensitive_headers)
    signature_headers = {h.lower() for h in SIGNING_HEADERS[provider] if "signature" in h.lower()}
    assert signature_headers <= cls.sensitive_headers


def round_trip_adapters() -> list[tuple[str, Adapter, str]]:
    """(label, adapter, expected scheme) for every signing path an adapter has."""
    cases = [(p, default_adapter(p), "") for p in PROVIDERS]
    cases.append(("standard-webhooks-v1a", v1a_adapter(), "standard-webhooks-v1a"))
    openai_raw = build_adapter(make_spec("openai", secrets=[("raw", "plain-utf8-secret")]))
    cases.append(("openai-raw-secret", openai_raw, "standard-webhooks-v1"))
    return cases


SCHEMES = {
    "fal": "ed25519-jwks",
    "standard-webhooks": "standard-webhooks-v1",
    "replicate": "standard-webhooks-v1",
    "openai": "standard-webhooks-v1",
    "abstrakt": "hmac-sha256-hex",
    "instantapi": "hmac-sha256-hex",
}


@pytest.mark.parametrize(
    ("label", "adapter", "scheme"),
    round_trip_adapters(),
    ids=[label for label, _, _ in round_trip_adapters()],
)
async def test_sign_round_trips_through_verify(label: str, adapter: Adapter, scheme: str) -> None:
    scheme = scheme or SCHEMES[adapter.provider]
    signed = adapter.sign(BODY, NOW, delivery_id="req-1")
    verified = await adapter.verify(BODY, CIMultiDict(signed), NOW)
    assert verified.scheme == scheme
    if scheme == "hmac-sha256-hex":
        assert verified.delivery_id is None
    else:
        assert verified.delivery_id == "req-1"
        assert verified.signed_at == NOW
    # the signature binds the body...
    with pytest.raises(VerificationError) as caught:
        await adapter.verify(BODY + b" ", CIMultiDict(signed), NOW)
    assert caught.value.reason == "signature_mismatch"
    # ...and every header it names is one the provider signs with
    known = {h.lower() for h in SIGNING_HEADERS[adapter.provider]}
    assert {h.lower() for h in signed} <= known


async def test_fal_sign_round_trips_through_a_jwks() -> None:
    fetcher = FakeFetcher().serve(
        FAL_JWKS_URL, jwks_bytes({"kty": "OKP", "crv": "Ed25519", "x": FAL_TEST_PUBLIC_X})
    )
    spec = make_spec("fal", options={"jwks_urls": [FAL_JWKS_URL]})
    adapter = build_adapter(spec, AdapterServices(fetcher=fetcher))
    await adapter.start()
    signed = adapter.sign(BODY, NOW, delivery_id="req-1")
    verified = await adapter.verify(BODY, CIMultiDict(signed), NOW)
    assert verified.key_id == "jwks[0]"


async def test_sign_uses_the_first_secret() -> None:
    for provider, first, second in (
        ("abstrakt", "first-secret", "second-secret"),
        ("standard-webhooks", "whsec_" + "A" * 32, "whsec_" + "B" * 32),
    ):
        adapter = build_adapter(make_spec(provider, secrets=[("one", first), ("two", second)]))
        signed = adapter.sign(BODY, NOW, delivery_id="msg_1")
        assert (await adapter.verify(BODY, CIMultiDict(signed), NOW)).key_id == "one"


def test_local_test_keys_are_the_published_ones() -> None:
    assert {FAL_TEST_PUBLIC_X, V1A_TEST_PUBLIC} == TEST_PUBLIC_KEYS
