"""Google Pub/Sub push: tokens signed by google-auth verified by us, ours verified by
google-auth, the key set's refresh rules, the claim checks, and hostile tokens. Keys and
certificates are made by the test; nothing reaches the network."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from adapters import (
    AdapterServices,
    ConfigError,
    GatewayError,
    NormalizationError,
    TemporaryError,
    VerificationError,
    build_adapter,
)
from adapters.base import Passthrough
from adapters.primitives.rsa_keyset import RsaKeySet, parse_key_document
from adapters.providers.gcp_pubsub import PubSubAdapter
from adapters.testing_keys import (
    PUBSUB_TEST_KEY_ID,
    pubsub_test_certificate_pem,
    sns_test_certificate_pem,
)
from tests.asymmetric_support import (
    GOOGLE_CERTS_URL,
    PUBSUB_AUDIENCE,
    PUBSUB_EMAIL,
    PUBSUB_KID,
    certificate_pem,
    google_certs,
    google_token,
    pubsub_body,
    pubsub_claims,
    rsa_key,
)
from tests.google_oracle import GoogleAuthError, google_decode
from tests.helpers_adapters import FakeClock, FakeFetcher, make_spec

NOW = 1_767_225_600.0


def pubsub_adapter(
    fetcher: FakeFetcher | None = None,
    *,
    public_keys: list[tuple[str, str]] | None = None,
    production: bool = True,
    public_url: str | None = None,
    reports: list[str] | None = None,
    **options: Any,
) -> PubSubAdapter:
    opts: dict[str, Any] = {
        "service_account_emails": [PUBSUB_EMAIL],
        "audience": PUBSUB_AUDIENCE,
        "certs_min_refresh_seconds": 0,
        **options,
    }
    spec = make_spec(
        "gcp-pubsub",
        public_keys=public_keys or [],
        options={k: v for k, v in opts.items() if v is not None or k == "certs_url"},
        public_url=public_url,
    )
    services = AdapterServices(
        fetcher=fetcher, on_key_refresh=reports.append if reports is not None else None
    )
    adapter = build_adapter(dataclasses.replace(spec, production=production), services)
    assert isinstance(adapter, PubSubAdapter)
    return adapter


def google_fetcher(*responses: bytes | Exception) -> FakeFetcher:
    return FakeFetcher().serve(GOOGLE_CERTS_URL, *(responses or (google_certs(),)))


def bearer(token: str) -> CIMultiDict[str]:
    return CIMultiDict({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


async def verify(adapter: PubSubAdapter, token: str, now: float = NOW, body: bytes = b"") -> Any:
    return await adapter.verify(body or pubsub_body(), bearer(token), now)


# ------------------------------------------------------------------ google-auth as the oracle
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"iss": "accounts.google.com"},
        {"exp": int(NOW) - 299, "iat": int(NOW) - 3899},  # expired, inside the skew
        {"extra": {"nested": [1, 2]}, "sub": "1"},
    ],
)
async def test_tokens_signed_by_google_auth_verify(changes: dict[str, Any]) -> None:
    adapter = pubsub_adapter(google_fetcher())
    claims = pubsub_claims(NOW, **changes)
    verified = await verify(adapter, google_token(claims))
    assert verified.scheme == "google-oidc-rs256"
    assert verified.key_id == PUBSUB_KID
    assert verified.delivery_id == "2070443601311540"
    assert verified.signed_at == claims["iat"]
    assert verified.bound == {"email": PUBSUB_EMAIL}


async def test_our_sign_is_accepted_by_google_auth_and_by_us() -> None:
    now = int(time.time())  # google-auth reads the real clock
    adapter = pubsub_adapter(
        None,
        public_keys=[(PUBSUB_TEST_KEY_ID, pubsub_test_certificate_pem())],
        production=False,
        certs_url=None,
    )
    header = adapter.sign(pubsub_body(), now, delivery_id="ignored")
    token = header["Authorization"].removeprefix("Bearer ")
    claims = google_decode(
        token, certs={PUBSUB_TEST_KEY_ID: pubsub_test_certificate_pem()}, audience=PUBSUB_AUDIENCE
    )
    assert claims["email"] == PUBSUB_EMAIL
    assert claims["email_verified"] is True
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["exp"] - claims["iat"] == 3600
    verified = await adapter.verify(pubsub_body(), CIMultiDict(header), now)
    assert verified.key_id == PUBSUB_TEST_KEY_ID
    with pytest.raises(GoogleAuthError):  # the oracle is not a rubber stamp
        google_decode(
            token, certs={PUBSUB_TEST_KEY_ID: certificate_pem("google")}, audience=PUBSUB_AUDIENCE
        )
    with pytest.raises(GoogleAuthError):
        google_decode(
            token, certs={PUBSUB_TEST_KEY_ID: pubsub_test_certificate_pem()}, audience="https://x"
        )


# ---------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"service_account_emails": []}, "invalid_options"),
        ({"certs_url": "http://www.googleapis.com/oauth2/v1/certs"}, "invalid_options"),
        ({"audience": None}, "no_audience"),
        ({"certs_url": None}, "no_keys"),
        ({"public_keys": [("k", "not a key")]}, "invalid_public_key"),
        ({"public_keys": [("k", sns_test_certificate_pem())]}, "test_key_in_production"),
        (
            {"public_keys": [(PUBSUB_TEST_KEY_ID, pubsub_test_certificate_pem())]},
            "test_key_in_production",
        ),
    ],
)
def test_configuration_errors(kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        pubsub_adapter(google_fetcher(), **kwargs)
    assert caught.value.reason == reason


def test_the_test_key_is_allowed_in_development() -> None:
    adapter = pubsub_adapter(
        None,
        production=False,
        certs_url=None,
        public_keys=[(PUBSUB_TEST_KEY_ID, pubsub_test_certificate_pem())],
    )
    assert adapter.ready()


async def test_audience_defaults_to_the_public_url() -> None:
    adapter = pubsub_adapter(google_fetcher(), audience=None, public_url=PUBSUB_AUDIENCE + "/x")
    assert adapter.audience == PUBSUB_AUDIENCE + "/x"
    with pytest.raises(VerificationError) as caught:
        await verify(adapter, google_token(pubsub_claims(NOW)))
    assert caught.value.reason == "audience_mismatch"


# ------------------------------------------------------------------------------- the key set
async def test_start_loads_the_keys_and_ready_follows() -> None:
    reports: list[str] = []
    adapter = pubsub_adapter(google_fetcher(), reports=reports)
    assert not adapter.ready()
    await adapter.start()
    try:
        assert adapter.ready()
        assert reports == ["ok"]
    finally:
        await adapter.close()


def test_background_refresh_comes_before_the_set_goes_stale() -> None:
    clock = FakeClock()
    keys = RsaKeySet(
        {},
        GOOGLE_CERTS_URL,
        google_fetcher(),
        max_age_seconds=600,
        min_refresh_seconds=30,
        clock=clock,
    )
    assert keys.refresh_delay() == 30  # nothing loaded yet: retry soon

    async def load() -> None:
        assert await keys.refresh(force=True)

    asyncio.run(load())
    assert keys.refresh_delay() == 300  # halfway through its life
    clock.advance(601)
    assert not keys.loaded()
    assert keys.refresh_delay() == 30


async def test_unknown_kid_refetches_once_then_finds_a_rotated_key() -> None:
    rotated = google_certs(("google", PUBSUB_KID), ("google-2", "kid-2"))
    fetcher = google_fetcher(google_certs(), rotated)
    adapter = pubsub_adapter(fetcher)
    await verify(adapter, google_token(pubsub_claims(NOW)))
    assert len(fetcher.calls) == 1
    verified = await verify(
        adapter, google_token(pubsub_claims(NOW), label="google-2", kid="kid-2")
    )
    assert verified.key_id == "kid-2"
    assert len(fetcher.calls) == 2


async def test_unknown_kids_are_rate_limited() -> None:
    fetcher = google_fetcher()
    adapter = pubsub_adapter(fetcher, certs_min_refresh_seconds=3600)
    await adapter.start()
    for i in range(5):
        with pytest.raises(VerificationError) as caught:
            await verify(adapter, google_token(pubsub_claims(NOW), kid=f"unknown-{i}"))
        assert caught.value.reason == "unknown_key"
    assert len(fetcher.calls) == 1


async def test_concurrent_deliveries_share_one_fetch() -> None:
    fetcher = google_fetcher()
    fetcher.gate = asyncio.Event()
    adapter = pubsub_adapter(fetcher)
    token = google_token(pubsub_claims(NOW))
    waiting = [asyncio.ensure_future(verify(adapter, token)) for _ in range(10)]
    await asyncio.sleep(0.01)
    fetcher.gate.set()
    assert len(await asyncio.gather(*waiting)) == 10
    assert len(fetcher.calls) == 1


async def test_keys_are_refetched_after_max_age_and_a_bad_document_keeps_the_old_set() -> None:
    clock = FakeClock()
    fetcher = google_fetcher(google_certs(), b"<html>oops</html>", google_certs())
    key = rsa_key("google").public_key()
    keys = RsaKeySet(
        {}, GOOGLE_CERTS_URL, fetcher, max_age_seconds=100, min_refresh_seconds=0, clock=clock
    )
    assert await keys.key_for(PUBSUB_KID) is not None
    clock.advance(50)
    assert await keys.key_for(PUBSUB_KID) is not None
    assert len(fetcher.calls) == 1
    assert await keys.refresh(force=True) is False  # the HTML page is not installed
    found = await keys.key_for(PUBSUB_KID)
    assert found is not None
    assert found.public_numbers() == key.public_numbers()
    clock.advance(51)  # past the max age of the first fetch: fetched again
    assert await keys.key_for(PUBSUB_KID) is not None
    assert len(fetcher.calls) == 3


async def test_google_unreachable_and_nothing_static_is_temporary() -> None:
    adapter = pubsub_adapter(google_fetcher(ConnectionError("down")))
    with pytest.raises(TemporaryError) as caught:
        await verify(adapter, google_token(pubsub_claims(NOW)))
    assert caught.value.reason == "keys_unavailable"


def test_key_documents_in_both_of_googles_forms() -> None:
    numbers = rsa_key("google").public_key().public_numbers()

    def b64(n: int) -> str:
        return (
            base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big"))
            .decode()
            .rstrip("=")
        )

    jwks = {
        "keys": [
            {"kty": "RSA", "kid": "a", "n": b64(numbers.n), "e": b64(numbers.e), "use": "sig"},
            {"kty": "RSA", "kid": "enc", "n": b64(numbers.n), "e": b64(numbers.e), "use": "enc"},
            {"kty": "RSA", "kid": "small", "n": b64(2**1023 + 1), "e": b64(3)},
            {"kty": "EC", "kid": "ec", "crv": "P-256"},
            "junk",
        ]
    }
    assert set(parse_key_document(json.dumps(jwks).encode())) == {"a"}
    assert set(parse_key_document(google_certs())) == {PUBSUB_KID}
    for junk in (b"[]", b"{", b'{"k": 5}', b'{"k": "-----BEGIN CERTIFICATE-----"}'):
        assert parse_key_document(junk) == {}


# ------------------------------------------------------------------------------------ claims
async def test_claims_are_not_read_before_the_signature_holds() -> None:
    adapter = pubsub_adapter(google_fetcher())
    head, _, signature = google_token(pubsub_claims(NOW)).split(".")
    not_json = base64.urlsafe_b64encode(b"{not json").decode().rstrip("=")
    with pytest.raises(VerificationError) as caught:
        await verify(adapter, f"{head}.{not_json}.{signature}")
    assert caught.value.reason == "signature_mismatch"  # not malformed_token: never decoded


async def test_normalize_reads_the_message() -> None:
    adapter = pubsub_adapter(google_fetcher())
    verified = await verify(adapter, google_token(pubsub_claims(NOW)))
    result = adapter.normalize(json.loads(pubsub_body(eventType="OBJECT_FINALIZE")), verified, NOW)
    assert isinstance(result, Passthrough)
    assert result.event_type == "OBJECT_FINALIZE"
    assert result.occurred_at is not None
    assert result.occurred_at.isoformat() == "2026-01-01T00:00:00.123456+00:00"
    shapes: list[Any] = [[], {"message": []}, {"message": {"data": ""}}]
    for shape in shapes:
        with pytest.raises(NormalizationError):
            adapter.normalize(shape, verified, NOW)


async def test_a_body_that_is_not_json_has_no_delivery_id() -> None:
    adapter = pubsub_adapter(google_fetcher())
    verified = await verify(adapter, google_token(pubsub_claims(NOW)), body=b"\xff not json")
    assert verified.delivery_id is None


# ----------------------------------------------------------------------------- hostile input
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    authorization=st.one_of(
        st.text(max_size=60),
        st.builds(lambda s: "Bearer " + s, st.text("abcXYZ019-_.=", max_size=80)),
    ),
    claims=st.dictionaries(
        st.sampled_from(["aud", "iss", "exp", "iat", "nbf", "email", "email_verified"]),
        st.one_of(st.text(max_size=10), st.integers(), st.booleans(), st.none(), st.floats()),
        max_size=3,
    ),
)
def test_hostile_tokens_raise_only_our_errors(authorization: str, claims: dict[str, Any]) -> None:
    async def check() -> None:
        adapter = pubsub_adapter(google_fetcher())
        candidates = [authorization, "Bearer " + google_token(pubsub_claims(NOW, **claims))]
        for value in candidates:
            try:
                verified = await adapter.verify(
                    pubsub_body(), CIMultiDict(Authorization=value), NOW
                )
            except GatewayError:
                continue
            assert value == candidates[1]
            assert verified.bound == {"email": PUBSUB_EMAIL}

    asyncio.run(check())
