"""The declarative scheme piece by piece: header grammar, encodings, secrets, templates, tokens,
timestamps, delivery ids, and the configuration errors ``check-config`` reports."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from adapters import ConfigError, VerificationError
from adapters.base import RequestMeta
from adapters.declarative.config import SignatureFormat
from adapters.declarative.handshakes import host_matches, url_allowed
from adapters.declarative.hmac_scheme import MAX_PAIRS, parse_signature_header
from adapters.declarative.template import compile_template
from adapters.declarative.timestamps import check_window, parse_timestamp
from tests.declarative_support import (
    SLACK_LIKE,
    STANDARD_WEBHOOKS_LIKE,
    STRIPE_LIKE,
    generic,
    verify,
)
from tests.helpers_adapters import SW_BODY, SW_ID, SW_SECRET, SW_SIG, SW_TS

NOW = 1_750_000_000
BODY = b'{"id":"evt_1","type":"invoice.paid"}'


def mac(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, message, getattr(hashlib, algorithm)).digest()


# -- signature header grammar ---------------------------------------------------------------


async def test_stripe_header_with_several_signatures_any_may_match() -> None:
    good = mac(b"s3cret", f"{NOW}.".encode() + BODY).hex()
    header = f"t={NOW},v1={'0' * 64},v1={good},v0={'f' * 64}"
    adapter = generic(STRIPE_LIKE)

    verified = await verify(adapter, BODY, {"Stripe-Signature": header}, NOW)
    assert verified.key_id == "primary"
    assert verified.signed_at == NOW
    assert verified.delivery_id == "evt_1"
    assert verified.scheme == "hmac-sha256-hex"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("t=1,v0=ab", "unsupported_signature_version"),
        (f"t={NOW}", "unsupported_signature_version"),
        ("v1", "malformed_header"),
        (f"t={NOW},t={NOW + 1},v1={'0' * 64}", "malformed_header"),
        (",".join(["v1=00"] * (MAX_PAIRS + 1)), "malformed_header"),
    ],
)
def test_header_grammar_refusals(header: str, reason: str) -> None:
    fmt = SignatureFormat(signature_key="v1", timestamp_key="t")
    with pytest.raises(VerificationError) as caught:
        parse_signature_header(header, fmt, "")
    assert caught.value.reason == reason


def test_prefix_is_required_on_each_signature() -> None:
    with pytest.raises(VerificationError) as caught:
        parse_signature_header("sha1=abcd", None, "sha256=")
    assert caught.value.reason == "malformed_header"
    parsed = parse_signature_header("sha256=abcd", None, "sha256=")
    assert parsed.signatures == ("abcd",)


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "HEX", "base64", "base64url"])
async def test_algorithms_and_encodings(algorithm: str, encoding: str) -> None:
    digest = mac(b"s3cret", BODY, algorithm)
    text = {
        "hex": digest.hex(),
        "HEX": digest.hex().upper(),
        "base64": base64.b64encode(digest).decode(),
        "base64url": base64.urlsafe_b64encode(digest).decode().rstrip("="),
    }[encoding]
    adapter = generic(
        {"auth": "hmac", "header": "X-Sig", "algorithm": algorithm, "encoding": encoding.lower()}
    )
    verified = await verify(adapter, BODY, {"X-Sig": text}, NOW)
    assert verified.scheme == f"hmac-{algorithm}-{encoding.lower()}"
    with pytest.raises(VerificationError) as caught:
        await verify(adapter, BODY + b" ", {"X-Sig": text}, NOW)
    assert caught.value.reason == "signature_mismatch"


async def test_a_signature_of_the_wrong_length_or_alphabet_is_malformed() -> None:
    adapter = generic({"auth": "hmac", "header": "X-Sig", "encoding": "base64url"})
    standard = base64.b64encode(mac(b"s3cret", BODY) + b"\xfb\xff").decode()
    for bad in ("", "zz", "a" * 43 + "+", standard):
        with pytest.raises(VerificationError) as caught:
            await verify(adapter, BODY, {"X-Sig": bad or " "}, NOW)
        assert caught.value.reason == "malformed_header"


async def test_a_header_repeated_with_different_values_is_refused() -> None:
    adapter = generic({"auth": "hmac", "header": "X-Sig"})
    good = mac(b"s3cret", BODY).hex()
    with pytest.raises(VerificationError) as caught:
        await verify(adapter, BODY, [("X-Sig", good), ("x-sig", "00" * 32)], NOW)
    assert caught.value.reason == "duplicate_header"


# -- secrets ---------------------------------------------------------------------------------


async def test_rotation_names_the_secret_that_matched() -> None:
    adapter = generic({"auth": "hmac", "header": "X-Sig"}, secrets=[("old", "one"), ("new", "two")])
    verified = await verify(adapter, BODY, {"X-Sig": mac(b"two", BODY).hex()}, NOW)
    assert verified.key_id == "new"


@pytest.mark.parametrize(
    ("secret", "decoding", "prefix", "key"),
    [
        ("whsec_" + base64.b64encode(b"k" * 24).decode(), "base64", "whsec_", b"k" * 24),
        (base64.b64encode(b"k" * 24).decode(), "base64", "whsec_", b"k" * 24),
        ("6b6b6b6b", "hex", "", b"kkkk"),
        ("whsec_raw", "raw", "", b"whsec_raw"),
    ],
)
async def test_secret_decoding(secret: str, decoding: str, prefix: str, key: bytes) -> None:
    scheme = {"auth": "hmac", "header": "X-Sig", "secret_encoding": decoding}
    if prefix:
        scheme["secret_prefix"] = prefix
    adapter = generic(scheme, secrets=[("k", secret)])
    assert (await verify(adapter, BODY, {"X-Sig": mac(key, BODY).hex()}, NOW)).key_id == "k"


def test_an_undecodable_secret_is_a_config_error_that_hides_it() -> None:
    with pytest.raises(ConfigError) as caught:
        generic(
            {"auth": "hmac", "header": "X-Sig", "secret_encoding": "hex"},
            secrets=[("k", "not-hex-at-all")],
        )
    assert caught.value.reason == "invalid_secret"
    assert "not-hex-at-all" not in str(caught.value)


def test_an_unsigned_header_timestamp_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        generic({**SLACK_LIKE, "signed_content": "{body}"})
    assert caught.value.reason == "unsigned_timestamp"


def test_hmac_without_a_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        generic({"auth": "hmac", "header": "X-Sig"}, secrets=[])
    assert caught.value.reason == "no_secret"


# -- templates -------------------------------------------------------------------------------


def test_template_tokens_and_literals() -> None:
    template = compile_template("v0:{timestamp}:{{x}}:{body}")
    assert template.tokens == {"timestamp", "body"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{nope}", "unknown token {nope}"),
        ("{body", "unbalanced brace"),
        ("body}", "unbalanced brace"),
        ("{json:[[}", "does not compile"),
        ("{url}{body}", "public_url"),
    ],
)
def test_template_errors_are_precise(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        compile_template(text, available=("body",))
    assert fragment in caught.value.detail


def test_templates_need_their_sources_configured() -> None:
    with pytest.raises(ConfigError) as caught:
        generic({"auth": "hmac", "header": "X-Sig", "signed_content": "{id}.{body}"})
    assert "scheme.delivery_id" in caught.value.detail
    with pytest.raises(ConfigError) as caught:
        generic({"auth": "hmac", "header": "X-Sig", "signed_content": "{timestamp}.{body}"})
    assert "scheme.timestamp" in caught.value.detail


async def test_url_method_and_body_hash_tokens() -> None:
    url = "https://hooks.example.com/webhooks/src"
    adapter = generic(
        {"auth": "hmac", "header": "X-Sig", "signed_content": "{method} {url} {body_sha256}"},
        public_url=url,
    )
    assert adapter.reads_request
    content = f"POST {url}?a=1 {hashlib.sha256(BODY).hexdigest()}".encode()
    request = RequestMeta(method="POST", query_string="a=1", url=url + "?a=1")
    verified = await verify(adapter, BODY, {"X-Sig": mac(b"s3cret", content).hex()}, NOW, request)
    assert verified.key_id == "primary"


async def test_json_and_header_tokens_read_only_what_they_name() -> None:
    # Kie.ai: taskId.timestamp, the body itself is not covered.
    adapter = generic(
        {
            "auth": "hmac",
            "header": "X-Webhook-Signature",
            "encoding": "base64",
            "signed_content": "{json:data.task_id}.{header:X-Webhook-Timestamp}",
        }
    )
    body = json.dumps({"data": {"task_id": "t-1", "state": "success"}}).encode()
    sig = base64.b64encode(mac(b"s3cret", f"t-1.{NOW}".encode())).decode()
    headers = {"X-Webhook-Signature": sig, "X-Webhook-Timestamp": str(NOW)}
    assert (await verify(adapter, body, headers, NOW)).key_id == "primary"
    assert any("does not cover the body" in w for w in adapter.warnings())
    for hostile in (b"[]", b"not json", json.dumps({"data": {"task_id": ["x"]}}).encode()):
        with pytest.raises(VerificationError) as caught:
            await verify(adapter, hostile, headers, NOW)
        assert caught.value.reason == "malformed_body"


async def test_form_sorted_token_covers_twilio_style_parameters() -> None:
    url = "https://hooks.example.com/webhooks/src"
    adapter = generic(
        {
            "auth": "hmac",
            "header": "X-Twilio-Signature",
            "algorithm": "sha1",
            "encoding": "base64",
            "signed_content": "{url}{form_sorted}",
        },
        public_url=url,
        body_format="form",
    )
    body = b"To=%2B15550001&From=%2B15550002&Body=hi"
    content = (url + "Bodyhi" + "From+15550002" + "To+15550001").encode()
    sig = base64.b64encode(mac(b"s3cret", content, "sha1")).decode()
    request = RequestMeta(url=url)
    assert (await verify(adapter, body, {"X-Twilio-Signature": sig}, NOW, request)).key_id
    assert adapter.parse(body, request) == {"To": "+15550001", "From": "+15550002", "Body": "hi"}


# -- timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "fmt", "seconds"),
    [
        ("1750000000", "seconds", "unix", 1_750_000_000.0),
        ("1750000000123", "milliseconds", "unix", 1_750_000_000.123),
        (1750000000123, "milliseconds", "unix", 1_750_000_000.123),
        ("2025-06-15T15:06:40Z", "seconds", "rfc3339", 1_750_000_000.0),
        ("2025-06-15T17:06:40+02:00", "seconds", "rfc3339", 1_750_000_000.0),
    ],
)
def test_timestamp_forms(value: Any, unit: Any, fmt: Any, seconds: float) -> None:
    assert parse_timestamp(value, unit=unit, fmt=fmt) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "fmt"),
    [("+1", "unix"), ("1.5", "unix"), (" 1", "unix"), ("0x1", "unix"), (True, "unix"),
     ("1" * 16, "unix"), ("2025-06-15T15:06:40", "rfc3339"), ("yesterday", "rfc3339"),
     (17, "rfc3339")],
)  # fmt: skip
def test_timestamp_garbage_is_malformed(value: Any, fmt: Any) -> None:
    with pytest.raises(VerificationError) as caught:
        parse_timestamp(value, unit="seconds", fmt=fmt)
    assert caught.value.reason == "malformed_header"


def test_past_and_future_tolerances_are_separate() -> None:
    check_window(NOW - 1800, NOW, past=1800, future=60)  # boundaries accepted
    check_window(NOW + 60, NOW, past=1800, future=60)
    for signed_at in (NOW - 1801, NOW + 61):
        with pytest.raises(VerificationError) as caught:
            check_window(signed_at, NOW, past=1800, future=60)
        assert caught.value.reason == "timestamp_out_of_window"


async def test_slack_style_header_timestamp_window() -> None:
    adapter = generic(
        {**SLACK_LIKE, "timestamp": {**SLACK_LIKE["timestamp"], "max_future_seconds": 5}}
    )

    def headers(ts: int) -> dict[str, str]:
        sig = mac(b"s3cret", f"v0:{ts}:".encode() + BODY).hex()
        return {"X-Slack-Signature": "v0=" + sig, "X-Slack-Request-Timestamp": str(ts)}

    assert (await verify(adapter, BODY, headers(NOW - 300), NOW)).signed_at == NOW - 300
    for ts in (NOW - 301, NOW + 6):
        with pytest.raises(VerificationError) as caught:
            await verify(adapter, BODY, headers(ts), NOW)
        assert caught.value.reason == "timestamp_out_of_window"
    assert adapter.replay_window_seconds() == 300


async def test_body_timestamp_in_milliseconds_is_checked_after_the_signature() -> None:
    adapter = generic(
        {
            "auth": "hmac",
            "header": "Linear-Signature",
            "timestamp": {
                "source": "body",
                "path": "webhookTimestamp",
                "unit": "milliseconds",
                "max_age_seconds": 60,
                "max_future_seconds": 60,
            },
            "delivery_id": {"header": "Linear-Delivery"},
        }
    )

    def delivery(ts_ms: int) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"action": "create", "webhookTimestamp": ts_ms}).encode()
        return body, {"Linear-Signature": mac(b"s3cret", body).hex(), "Linear-Delivery": "d-1"}

    body, headers = delivery(NOW * 1000 - 59_000)
    verified = await verify(adapter, body, headers, NOW)
    assert (verified.delivery_id, verified.signed_at) == ("d-1", NOW - 59)
    body, headers = delivery(NOW * 1000 - 61_000)
    with pytest.raises(VerificationError) as caught:
        await verify(adapter, body, headers, NOW)
    assert caught.value.reason == "timestamp_out_of_window"
    with pytest.raises(VerificationError) as caught:
        await verify(adapter, body, {**headers, "Linear-Signature": "00" * 32}, NOW)
    assert caught.value.reason == "signature_mismatch"


async def test_standard_webhooks_expressed_as_data_matches_the_official_vector() -> None:
    adapter = generic(STANDARD_WEBHOOKS_LIKE, secrets=[("k", SW_SECRET)])
    headers = {"webhook-id": SW_ID, "webhook-timestamp": str(SW_TS), "webhook-signature": SW_SIG}
    verified = await verify(adapter, SW_BODY, headers, SW_TS)
    assert (verified.delivery_id, verified.scheme) == (SW_ID, "standard-webhooks-v1")


# -- tokens ----------------------------------------------------------------------------------


async def test_static_header_token_with_a_bearer_prefix() -> None:
    adapter = generic(
        {"auth": "static_header", "header": "Authorization", "token_prefix": "Bearer "},
        secrets=[("old", "tok-1"), ("new", "tok-2")],
    )
    assert (await verify(adapter, BODY, {"Authorization": "bearer tok-2"}, NOW)).key_id == "new"
    assert adapter.sign(BODY, NOW, delivery_id="d") == {"Authorization": "Bearer tok-1"}
    cases = [
        ({}, "missing_header"),
        ({"Authorization": "Basic tok-2"}, "malformed_header"),
        ({"Authorization": "Bearer tok-3"}, "token_mismatch"),
        ({"Authorization": "Bearer tok-2x"}, "token_mismatch"),
    ]
    for headers, reason in cases:
        with pytest.raises(VerificationError) as caught:
            await verify(adapter, BODY, headers, NOW)
        assert caught.value.reason == reason


async def test_basic_auth() -> None:
    adapter = generic({"auth": "basic"}, secrets=[("dg", "user:pa:ss")])
    good = "Basic " + base64.b64encode(b"user:pa:ss").decode()
    assert (await verify(adapter, BODY, {"Authorization": good}, NOW)).key_id == "dg"
    assert adapter.sign(BODY, NOW, delivery_id="d") == {"Authorization": good}
    for value, reason in [
        ("Basic " + base64.b64encode(b"user:wrong").decode(), "token_mismatch"),
        ("Basic !!!", "malformed_header"),
        ("Basic " + base64.b64encode(b"nocolon").decode(), "malformed_header"),
        ("Bearer x", "malformed_header"),
    ]:
        with pytest.raises(VerificationError) as caught:
            await verify(adapter, BODY, {"Authorization": value}, NOW)
        assert caught.value.reason == reason


async def test_query_path_and_body_tokens() -> None:
    query = generic({"auth": "query_token", "query_param": "token"}, secrets=[("q", "abc")])
    assert query.reads_request
    assert not query.accepts_path_token
    ok = RequestMeta(query={"token": "abc"})
    assert (await verify(query, BODY, {}, NOW, ok)).key_id == "q"
    assert query.url_credentials() == (None, {"token": "abc"})
    with pytest.raises(VerificationError) as caught:
        await verify(query, BODY, {}, NOW, RequestMeta(query={"token": "abd"}))
    assert caught.value.reason == "token_mismatch"
    with pytest.raises(VerificationError) as caught:
        await verify(query, BODY, {}, NOW)
    assert caught.value.reason == "missing_token"

    path = generic({"auth": "path_token"}, secrets=[("p", "long-random")])
    assert path.accepts_path_token
    assert (await verify(path, BODY, {}, NOW, RequestMeta(path_token="long-random"))).key_id
    assert path.url_credentials() == ("long-random", {})
    assert any("travels in the URL" in w for w in path.warnings())

    body = generic({"auth": "body_token", "body_path": "metadata.extra.callback_secret"})
    payload = json.dumps({"metadata": {"extra": {"callback_secret": "s3cret"}}}).encode()
    assert (await verify(body, payload, {}, NOW)).key_id == "primary"
    for hostile in (b"{}", b"nope", b'{"metadata": {"extra": {"callback_secret": 1}}}'):
        with pytest.raises(VerificationError) as caught:
            await verify(body, hostile, {}, NOW)
        assert caught.value.reason in ("missing_token", "malformed_body")


async def test_none_is_refused_in_production_unless_allowed() -> None:
    with pytest.raises(ConfigError) as caught:
        generic({"auth": "none"}, secrets=[], production=True)
    assert caught.value.reason == "unauthenticated_source"
    allowed = generic({"auth": "none"}, secrets=[], production=True, allow_unauthenticated=True)
    assert any("anyone who knows the URL" in w for w in allowed.warnings())
    verified = await verify(allowed, BODY, {}, NOW)
    assert (verified.scheme, verified.key_id) == ("none", "none")


def test_the_adapter_repr_and_errors_never_show_a_secret() -> None:
    adapter = generic({"auth": "static_header", "header": "X-Token"}, secrets=[("k", "TOPSECRET")])
    assert "TOPSECRET" not in repr(adapter.spec)
    assert "TOPSECRET" not in repr(RequestMeta(path_token="TOPSECRET", query={"t": "TOPSECRET"}))


# -- config errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "fragment"),
    [
        ({"auth": "hmac"}, "needs scheme.header"),
        ({"auth": "query_token"}, "needs scheme.query_param"),
        ({"auth": "body_token"}, "needs scheme.body_path"),
        ({"auth": "basic", "prefix": "v0="}, "applies to auth hmac only"),
        ({"auth": "hmac", "header": "X", "algorithm": "md5"}, "scheme.algorithm"),
        ({"auth": "hmac", "header": "X", "timestamp": {"source": "signature_header"}},
         "timestamp_key"),
        ({"auth": "hmac", "header": "X", "timestamp": {"source": "header"}}, "timestamp.header"),
        ({"auth": "hmac", "header": "X", "timestamp": {"source": "header", "header": "T",
          "max_age_seconds": 0}}, "max_age_seconds"),
        ({"auth": "hmac", "header": "X", "delivery_id": {"header": "a", "path": "b"}},
         "exactly one"),
        ({"auth": "hmac", "header": "X", "typo": 1}, "typo"),
        ({"auth": "hmac", "header": "X", "delivery_id": {"path": "[["}}, "does not compile"),
    ],
)  # fmt: skip
def test_config_errors_name_the_field(scheme: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        generic(scheme)
    assert fragment in caught.value.detail


# -- confirmation URL host checks --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription", True),
        ("http://sns.us-east-1.amazonaws.com/", False),
        ("https://sns.bucket.s3.amazonaws.com/", False),
        ("https://sns.us-east-1.amazonaws.com.evil.com/", False),
        ("https://user@sns.us-east-1.amazonaws.com/", False),
        ("https://sns.us-east-1.amazonaws.com:8443/", False),
        ("https://sns.us-east-1.amazonaws.com\\@evil.com/", False),
        ("https://[::1]/", False),
        ("not a url", False),
    ],
)
def test_confirmation_urls_must_be_https_on_an_allowed_host(url: str, allowed: bool) -> None:
    assert url_allowed(url, ["sns.*.amazonaws.com"]) is allowed


def test_a_wildcard_is_one_dns_label() -> None:
    assert host_matches("sns.eu-west-1.amazonaws.com", "sns.*.amazonaws.com")
    assert not host_matches("sns..amazonaws.com", "sns.*.amazonaws.com")
    assert not host_matches("sns.a.b.amazonaws.com", "sns.*.amazonaws.com")
