"""fal.ai: Ed25519 over request id, user id, timestamp and the body's SHA-256, keys from a JWKS."""

from __future__ import annotations

import pytest

from adapters import (
    Adapter,
    AdapterServices,
    ConfigError,
    TemporaryError,
    VerificationError,
    build_adapter,
)
from adapters.testing_keys import FAL_TEST_PUBLIC_X
from tests.helpers_adapters import (
    FAL_BODY,
    FAL_JWKS_URL,
    FAL_KEY,
    FAL_KID,
    FAL_REQUEST_ID,
    FAL_TS,
    FAL_USER_ID,
    FAL_X,
    FakeFetcher,
    fal_headers,
    fal_sign,
    jwk,
    jwks_bytes,
    make_adapter,
    make_spec,
    signing_key,
)

ROTATED = signing_key("tests: fal rotated key")


def jwks_adapter(
    fetcher: FakeFetcher, reports: list[str] | None = None, **options: object
) -> Adapter:
    spec = make_spec("fal", options={"jwks_urls": [FAL_JWKS_URL], **options})
    services = AdapterServices(
        fetcher=fetcher, on_key_refresh=reports.append if reports is not None else None
    )
    return build_adapter(spec, services)


@pytest.mark.parametrize(
    ("public_keys", "options", "reason"),
    [
        ([], {}, "no_keys"),
        ([], {"jwks_urls": [FAL_JWKS_URL]}, "no_fetcher"),
        ([("k", "not-a-key")], {}, "invalid_public_key"),
        ([("k", FAL_X)], {"user_id": 5}, "invalid_options"),
    ],
)
def test_configuration_errors(
    public_keys: list[tuple[str, str]], options: dict[str, object], reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_adapter("fal", public_keys=public_keys, options=options)
    assert caught.value.reason == reason


async def test_start_loads_the_jwks_and_reports_it() -> None:
    reports: list[str] = []
    fetcher = FakeFetcher().serve(FAL_JWKS_URL, jwks_bytes(jwk(FAL_KEY, FAL_KID)))
    adapter = jwks_adapter(fetcher, reports)
    assert not adapter.ready()
    await adapter.start()
    assert adapter.ready()
    assert reports == ["ok"]
    verified = await adapter.verify(FAL_BODY, fal_headers(), FAL_TS)
    assert verified.key_id == FAL_KID
    assert fetcher.calls == [FAL_JWKS_URL]
    await adapter.close()


async def test_static_key_adapter_is_ready_without_start() -> None:
    adapter = make_adapter("fal", public_keys=[(FAL_KID, FAL_X)])
    assert adapter.ready()
    verified = await adapter.verify(FAL_BODY, fal_headers(), FAL_TS)
    assert verified.bound == {"request_id": FAL_REQUEST_ID, "user_id": FAL_USER_ID}
    assert verified.signed_at == FAL_TS


async def test_rotated_key_is_found_by_refetching() -> None:
    fetcher = FakeFetcher().serve(
        FAL_JWKS_URL,
        jwks_bytes(jwk(FAL_KEY, FAL_KID)),
        jwks_bytes(jwk(FAL_KEY, FAL_KID), jwk(ROTATED, "rotated")),
    )
    adapter = jwks_adapter(fetcher, jwks_min_refresh_seconds=0)
    await adapter.start()
    signature = fal_sign(ROTATED, FAL_BODY)
    verified = await adapter.verify(FAL_BODY, fal_headers(signature), FAL_TS)
    assert verified.key_id == "rotated"
    assert len(fetcher.calls) == 2


async def test_unreachable_jwks_is_a_temporary_error() -> None:
    reports: list[str] = []
    adapter = jwks_adapter(FakeFetcher().serve(FAL_JWKS_URL, OSError("down")), reports)
    await adapter.start()
    assert not adapter.ready()
    with pytest.raises(TemporaryError) as caught:
        await adapter.verify(FAL_BODY, fal_headers(), FAL_TS)
    assert caught.value.reason == "keys_unavailable"
    assert reports[0] == "error"


async def test_checks_run_before_any_key_fetch() -> None:
    """A delivery refused on its headers or clock never costs a JWKS fetch."""
    fetcher = FakeFetcher().serve(FAL_JWKS_URL, jwks_bytes(jwk(FAL_KEY, FAL_KID)))
    adapter = jwks_adapter(fetcher)
    for headers, now in (
        (fal_headers(ts="12a"), FAL_TS),
        (fal_headers(), FAL_TS + 301),
        (fal_headers("zz" * 64), FAL_TS),
    ):
        with pytest.raises(VerificationError):
            await adapter.verify(FAL_BODY, headers, now)
    assert fetcher.calls == []


async def test_user_id_is_checked_only_after_the_signature() -> None:
    adapter = make_adapter("fal", public_keys=[(FAL_KID, FAL_X)], options={"user_id": "mine"})
    with pytest.raises(VerificationError) as forged:
        await adapter.verify(FAL_BODY, fal_headers("00" * 64, user_id="someone"), FAL_TS)
    assert forged.value.reason == "signature_mismatch"
    with pytest.raises(VerificationError) as other:
        await adapter.verify(FAL_BODY, fal_headers(), FAL_TS)
    assert other.value.reason == "user_id_mismatch"


async def test_sign_uses_the_configured_user_id() -> None:
    adapter = make_adapter(
        "fal", public_keys=[("local", FAL_TEST_PUBLIC_X)], options={"user_id": "user_mine"}
    )
    signed = adapter.sign(b"{}", FAL_TS, delivery_id="req-9")
    assert signed["X-Fal-Webhook-User-Id"] == "user_mine"
    verified = await adapter.verify(b"{}", fal_headers(**_as_kwargs(signed)), FAL_TS)
    assert verified.delivery_id == "req-9"


def _as_kwargs(signed: dict[str, str]) -> dict[str, str]:
    return {
        "sig": signed["X-Fal-Webhook-Signature"],
        "request_id": signed["X-Fal-Webhook-Request-Id"],
        "user_id": signed["X-Fal-Webhook-User-Id"],
        "ts": signed["X-Fal-Webhook-Timestamp"],
    }


@pytest.mark.parametrize("field", ["request_id", "user_id"])
async def test_multi_line_ids_are_malformed(field: str) -> None:
    adapter = make_adapter("fal", public_keys=[(FAL_KID, FAL_X)])
    with pytest.raises(VerificationError) as caught:
        await adapter.verify(FAL_BODY, fal_headers(**{field: "a\nb"}), FAL_TS)
    assert caught.value.reason == "malformed_header"


@pytest.mark.parametrize("field", ["request_id", "user_id"])
async def test_undecodable_header_bytes_are_malformed(field: str) -> None:
    """Header bytes that are not UTF-8 must be refused like any other bad header.

    aiohttp decodes header values with ``errors="surrogateescape"`` (``http_parser.py``), so a
    request id sent as the byte 0xff reaches the adapter as the lone surrogate ``"\\udcff"``.
    BUG (adapters/providers/fal.py ``_message``): ``str.encode()`` then raises
    ``UnicodeEncodeError``, which escapes ``verify`` as a 500 instead of a 401.
    """
    adapter = make_adapter("fal", public_keys=[(FAL_KID, FAL_X)])
    with pytest.raises(VerificationError) as caught:
        await adapter.verify(FAL_BODY, fal_headers(**{field: "req-\udcff"}), FAL_TS)
    assert caught.value.reason == "malformed_header"
