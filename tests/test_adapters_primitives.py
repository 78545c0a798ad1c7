"""Unit tests of the signing primitives: headers, timestamps, encodings, HMAC, Standard Webhooks."""

from __future__ import annotations

import base64

import pytest
from multidict import CIMultiDict

from adapters import ConfigError, NamedKey, NamedSecret, SourceSpec, VerificationError
from adapters.primitives import hmac_body
from adapters.primitives import standard_webhooks as sw
from adapters.primitives.encoding import b64decode_lenient_padding, b64decode_strict, hexdecode
from adapters.primitives.headers import optional_header, require_header
from adapters.primitives.timestamps import check_window, parse_unix_seconds
from tests.helpers_adapters import (
    HMAC_SECRET,
    SW_BODY,
    SW_ID,
    SW_SECRET,
    SW_SIG,
    SW_TS,
    V1A_PUBLIC,
    V1A_SEED,
    V1A_SIG,
    headers,
    hmac_hex,
    sw_headers,
)


# ------------------------------------------------------------------------------------- headers
def test_require_header_is_case_insensitive_and_alias_aware() -> None:
    h = headers(("WEBHOOK-ID", " msg_1 "))
    assert require_header(h, ("webhook-id", "svix-id")) == "msg_1"
    assert require_header(headers(("Svix-Id", "msg_2")), ("webhook-id", "svix-id")) == "msg_2"


@pytest.mark.parametrize(
    ("pairs", "reason"),
    [
        ([], "missing_header"),
        ([("other", "x")], "missing_header"),
        ([("webhook-id", "a"), ("Webhook-Id", "b")], "duplicate_header"),
        ([("webhook-id", "a"), ("svix-id", "b")], "duplicate_header"),
        ([("webhook-id", "a"), ("webhook-id", "a ")], "duplicate_header"),
        ([("webhook-id", "")], "malformed_header"),
        ([("webhook-id", "  \t ")], "malformed_header"),
    ],
)
def test_require_header_refusals(pairs: list[tuple[str, str]], reason: str) -> None:
    with pytest.raises(VerificationError) as caught:
        require_header(headers(*pairs), ("webhook-id", "svix-id"))
    assert caught.value.reason == reason


def test_require_header_accepts_identical_duplicates() -> None:
    h = headers(("webhook-id", "a"), ("WEBHOOK-ID", "a"), ("svix-id", "a"))
    assert require_header(h, ("webhook-id", "svix-id")) == "a"


def test_optional_header() -> None:
    assert optional_header(headers(), ("x-a",)) is None
    assert optional_header(headers(("X-A", "1")), ("x-a",)) == "1"
    with pytest.raises(VerificationError):
        optional_header(headers(("x-a", "1"), ("x-a", "2")), ("x-a",))


# ---------------------------------------------------------------------------------- timestamps
@pytest.mark.parametrize("text", ["0", "1614265330", "01614265330", "999999999999"])
def test_parse_unix_seconds_accepts_digits(text: str) -> None:
    assert parse_unix_seconds(text, "h") == int(text)


@pytest.mark.parametrize(
    "text",
    [
        *("", " ", "12a", "+123", "-1", "1614265330.5", "1e9", "0x10", " 1614265330"),
        *("1_614_265_330", "1614265330000"),
        "\u0661\u0662\u0663",  # Arabic-Indic digits: int() accepts them, the header must not
        "\uff11\uff12\uff13",  # fullwidth digits
    ],
)
def test_parse_unix_seconds_refuses_everything_else(text: str) -> None:
    with pytest.raises(VerificationError) as caught:
        parse_unix_seconds(text, "webhook-timestamp")
    assert caught.value.reason == "malformed_header"


@pytest.mark.parametrize(
    ("offset", "ok"), [(0, True), (300, True), (-300, True), (301, False), (-301, False)]
)
def test_check_window_boundaries(offset: int, ok: bool) -> None:
    now = 1_700_000_000
    if ok:
        check_window(now - offset, now, 300)
        return
    with pytest.raises(VerificationError) as caught:
        check_window(now - offset, now, 300)
    assert caught.value.reason == "timestamp_out_of_window"


def test_check_window_with_fractional_now() -> None:
    check_window(1000, 1300.0, 300)
    with pytest.raises(VerificationError):
        check_window(1000, 1300.5, 300)


# ----------------------------------------------------------------------------------- encodings
def test_base64_decoders() -> None:
    assert b64decode_lenient_padding("YQ") == b"a"
    assert b64decode_lenient_padding("YQ==") == b"a"
    assert b64decode_lenient_padding("-_8", urlsafe=True) == b"\xfb\xff"
    assert b64decode_lenient_padding("-_8") is None  # url-safe characters in standard mode
    assert b64decode_lenient_padding("Y Q") is None
    assert b64decode_lenient_padding("YQ!") is None
    assert b64decode_strict("YQ==") == b"a"
    assert b64decode_strict("YQ") is None
    assert b64decode_strict("YQ==junk") is None
    assert b64decode_strict("é") is None


def test_hexdecode() -> None:
    assert hexdecode("00ff") == b"\x00\xff"
    assert hexdecode("00FF") == b"\x00\xff"
    for bad in ("0", "zz", "0x00", "é0", "\udcff0"):
        assert hexdecode(bad) is None, bad


# ---------------------------------------------------------------------------------- HMAC body
def test_hmac_hex_round_trip_and_rotation() -> None:
    secrets = (NamedSecret("old", "something-else"), NamedSecret("new", HMAC_SECRET))
    signature = hmac_body.sign_hex(HMAC_SECRET, b"{}")
    assert signature == hmac_hex(HMAC_SECRET, b"{}")
    assert hmac_body.verify_hex(b"{}", signature, secrets) == "new"
    assert hmac_body.verify_hex(b"{}", signature.upper(), secrets) == "new"


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        ("sha256=" + hmac_hex(HMAC_SECRET, b"{}"), "malformed_header"),
        (hmac_hex(HMAC_SECRET, b"{}")[:-1], "malformed_header"),
        (hmac_hex(HMAC_SECRET, b"{}")[:-2], "malformed_header"),
        (hmac_hex(HMAC_SECRET, b"{}") + "00", "malformed_header"),
        ("g" * 64, "malformed_header"),
        (hmac_hex("wrong", b"{}"), "signature_mismatch"),
    ],
)
def test_hmac_hex_refusals(signature: str, reason: str) -> None:
    with pytest.raises(VerificationError) as caught:
        hmac_body.verify_hex(b"{}", signature, (NamedSecret("k", HMAC_SECRET),))
    assert caught.value.reason == reason


def test_hmac_hex_with_required_prefix() -> None:
    signature = "sha256=" + hmac_hex(HMAC_SECRET, b"x")
    secrets = (NamedSecret("k", HMAC_SECRET),)
    assert hmac_body.verify_hex(b"x", signature, secrets, prefix="sha256=") == "k"
    with pytest.raises(VerificationError) as caught:
        hmac_body.verify_hex(b"x", signature[7:], secrets, prefix="sha256=")
    assert caught.value.reason == "malformed_header"


# --------------------------------------------------------------------------- Standard Webhooks
def test_hmac_key_styles() -> None:
    official = bytes.fromhex("31f290f6bf06298aab4f08d43c3f082cf648a362da2da4b0")
    assert sw.hmac_key(SW_SECRET) == official
    assert sw.hmac_key(SW_SECRET.removeprefix("whsec_")) == official
    assert sw.hmac_key(SW_SECRET, sw.SecretStyle.OPENAI) == official  # prefixed: base64 anyway
    assert sw.hmac_key("synthetic-webhook-secret", sw.SecretStyle.OPENAI) == (
        b"synthetic-webhook-secret"
    )


@pytest.mark.parametrize("secret", ["whsec_", "", "whsec_***", "synthetic-webhook-secret"])
def test_hmac_key_refuses_unusable_secrets(secret: str) -> None:
    with pytest.raises(ConfigError) as caught:
        sw.hmac_key(secret)
    assert caught.value.reason == "invalid_secret"


def test_v1a_key_serialization_matches_the_synthetic_vector() -> None:
    key = sw.signing_key(V1A_SEED)
    public = "whpk_" + base64.b64encode(bytes(key.verify_key)).decode()
    assert public == V1A_PUBLIC
    assert bytes(sw.public_key(V1A_PUBLIC)) == bytes(key.verify_key)
    assert sw.sign_v1a(key, SW_ID, SW_TS, SW_BODY) == V1A_SIG
    # a 64-byte libsodium secret key (seed, then public key) names the same key
    libsodium = "whsk_" + base64.b64encode(bytes(key) + bytes(key.verify_key)).decode()
    assert bytes(sw.signing_key(libsodium).verify_key) == bytes(key.verify_key)


@pytest.mark.parametrize("text", ["whpk_", "whpk_AAAA", "whpk_***", "whpk_" + "A" * 44])
def test_public_key_refuses_bad_keys(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        sw.public_key(text)
    assert caught.value.reason == "invalid_public_key"


def test_sign_v1_reproduces_the_official_vector() -> None:
    assert sw.sign_v1(SW_SECRET, SW_ID, SW_TS, SW_BODY, sw.SecretStyle.STANDARD) == SW_SIG


def test_primitive_verify_reports_the_signed_delivery() -> None:
    keyring = sw.Keyring.build((NamedSecret("primary", SW_SECRET),), ())
    signed = sw.verify(SW_BODY, sw_headers(), SW_TS, keyring, 300)
    assert signed == sw.SignedDelivery(SW_ID, SW_TS, sw.SCHEME_V1, "primary")


def test_primitive_verify_checks_every_entry_against_every_key() -> None:
    keyring = sw.Keyring.build(
        (NamedSecret("a", "whsec_" + base64.b64encode(b"k" * 24).decode()),),
        (NamedKey("pk", V1A_PUBLIC),),
    )
    h = sw_headers(f"v1,{base64.b64encode(bytes(32)).decode()} {V1A_SIG}")
    assert sw.verify(SW_BODY, h, SW_TS, keyring, 300).scheme == sw.SCHEME_V1A


def test_keyring_requires_nothing_but_refuses_bad_material() -> None:
    assert sw.Keyring.build((), ()) == sw.Keyring()
    with pytest.raises(ConfigError):
        sw.Keyring.build((NamedSecret("x", "whsec_!!"),), ())
    with pytest.raises(ConfigError):
        sw.Keyring.build((), (NamedKey("x", "whpk_AAAA"),))


def test_signed_content_is_id_dot_timestamp_dot_body() -> None:
    assert sw.signed_content("a", "1", b"{}") == b"a.1.{}"


# --------------------------------------------------------------------------------- named secrets
def test_named_secret_never_shows_its_value() -> None:
    secret = NamedSecret("primary", "whsec_TOPSECRETVALUE")
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}"):
        assert "TOPSECRETVALUE" not in text
        assert "primary" in text
    spec = SourceSpec(name="s", provider="openai", secrets=(secret,))
    assert "TOPSECRETVALUE" not in repr(spec)
    assert secret.value == "whsec_TOPSECRETVALUE"


def test_headers_helper_keeps_duplicates_and_case() -> None:
    h = headers(("X-A", "1"), ("x-a", "2"), x_b="3")
    assert isinstance(h, CIMultiDict)
    assert h.getall("x-a") == ["1", "2"]
    assert h["X-B"] == "3"
