"""Engine options the passthrough presets brought: the signed URL with and without its default
port, a body hash carried in the signed URL, ``body_format: auto`` and an event type named by a
header. Each is a general option of the declarative engine, tested here on a generic source."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from multidict import CIMultiDict, MultiDict

from adapters import ConfigError, VerificationError
from adapters.base import Passthrough, RequestMeta, Verified
from adapters.declarative.adapter import FORM
from adapters.declarative.urls import port_variants
from tests.declarative_support import generic, verify

NOW = 1_750_000_000
URL = "https://hooks.example.com/webhooks/src"
FORM_BODY = b"b=2&a=1&c=x+y"
JSON_BODY = b'{"type":"thing.happened","n":1}'
URL_SCHEME: dict[str, Any] = {
    "auth": "hmac",
    "header": "X-Sig",
    "algorithm": "sha1",
    "encoding": "base64",
    "signed_content": "{url}{form_sorted}",
}


def sig(content: bytes | str, key: bytes = b"s3cret", algorithm: str = "sha1") -> str:
    data = content.encode() if isinstance(content, str) else content
    return base64.b64encode(hmac.new(key, data, getattr(hashlib, algorithm)).digest()).decode()


def meta(url: str | None = URL, query: str = "", content_type: str | None = FORM) -> RequestMeta:
    pairs: MultiDict[str] = MultiDict()
    for pair in filter(None, query.split("&")):
        name, _, value = pair.partition("=")
        pairs.add(name, value)
    return RequestMeta(
        query_string=query,
        query={k: pairs[k] for k in pairs},
        query_all=pairs,
        url=None if url is None else url + ("?" + query if query else ""),
        content_type=content_type,
    )


# -- URL port variants ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "variants"),
    [
        ("https://a.example/x?q=1", ("https://a.example/x?q=1", "https://a.example:443/x?q=1")),
        ("https://a.example:443/x", ("https://a.example/x", "https://a.example:443/x")),
        ("http://a.example/x", ("http://a.example/x", "http://a.example:80/x")),
        ("https://a.example:8443/x", ("https://a.example/x", "https://a.example:8443/x")),
        ("https://[::1]:443/x", ("https://[::1]/x", "https://[::1]:443/x")),
        ("https://u:p@a.example/x", ("https://u:p@a.example/x", "https://u:p@a.example:443/x")),
        ("https://a.example:99999/x", ("https://a.example:99999/x",)),
        ("ftp://a.example/x", ("ftp://a.example/x",)),
    ],
)
def test_port_variants_are_the_twilio_sdks_two_spellings(
    url: str, variants: tuple[str, ...]
) -> None:
    assert port_variants(url) == variants


async def test_url_with_the_default_port_needs_the_option() -> None:
    content = "https://hooks.example.com:443/webhooks/src" + "a1b2cx y"
    headers = {"X-Sig": sig(content)}
    strict = generic(URL_SCHEME, public_url=URL, body_format="form")
    with pytest.raises(VerificationError) as caught:
        await verify(strict, FORM_BODY, headers, NOW, meta())
    assert caught.value.reason == "signature_mismatch"
    lenient = generic({**URL_SCHEME, "url_port_variants": True}, public_url=URL, body_format="form")
    assert (await verify(lenient, FORM_BODY, headers, NOW, meta())).key_id == "primary"
    # a configured URL with the port: a signature without it matches too
    with_port = "https://hooks.example.com:443/webhooks/src"
    plain = {"X-Sig": sig(URL + "a1b2cx y")}
    assert await verify(lenient, FORM_BODY, plain, NOW, meta(url=with_port))


async def test_port_variants_do_not_hide_a_malformed_signature() -> None:
    adapter = generic({**URL_SCHEME, "url_port_variants": True}, public_url=URL)
    with pytest.raises(VerificationError) as caught:
        await verify(adapter, FORM_BODY, {"X-Sig": "%%%"}, NOW, meta())
    assert caught.value.reason == "malformed_header"


# -- body hash in the signed URL --------------------------------------------------------------

HASHED: dict[str, Any] = {**URL_SCHEME, "body_sha256_param": "bodySHA256"}


async def test_body_hash_in_the_url_covers_a_json_body() -> None:
    adapter = generic(HASHED, public_url=URL, body_format="auto")
    query = "bodySHA256=" + hashlib.sha256(JSON_BODY).hexdigest()
    headers = {"X-Sig": sig(f"{URL}?{query}")}  # {form_sorted} is empty: the URL alone
    request = meta(query=query, content_type="application/json")
    assert (await verify(adapter, JSON_BODY, headers, NOW, request)).key_id == "primary"

    changed = JSON_BODY.replace(b"1", b"2")
    with pytest.raises(VerificationError) as caught:
        await verify(adapter, changed, headers, NOW, request)
    assert caught.value.reason == "body_hash_mismatch"

    # a forged hash is a different signed URL: refused before the hash is looked at
    forged = "bodySHA256=" + hashlib.sha256(changed).hexdigest()
    with pytest.raises(VerificationError) as caught:
        await verify(adapter, changed, headers, NOW, meta(query=forged))
    assert caught.value.reason == "signature_mismatch"


async def test_body_hash_must_be_lower_case_hex_of_the_exact_body() -> None:
    adapter = generic(HASHED, public_url=URL)
    query = "bodySHA256=" + hashlib.sha256(JSON_BODY).hexdigest().upper()
    headers = {"X-Sig": sig(f"{URL}?{query}")}
    with pytest.raises(VerificationError) as caught:
        await verify(adapter, JSON_BODY, headers, NOW, meta(query=query))
    assert caught.value.reason == "body_hash_mismatch"


async def test_body_hash_given_twice_is_refused() -> None:
    adapter = generic(HASHED, public_url=URL)
    digest = hashlib.sha256(JSON_BODY).hexdigest()
    query = f"bodySHA256={digest}&bodySHA256={digest}"
    with pytest.raises(VerificationError) as caught:
        await verify(adapter, JSON_BODY, {"X-Sig": sig(f"{URL}?{query}")}, NOW, meta(query=query))
    assert caught.value.reason == "malformed_query"


async def test_without_the_hash_parameter_a_form_is_signed_by_its_fields() -> None:
    adapter = generic(HASHED, public_url=URL, body_format="form")
    headers = {"X-Sig": sig(URL + "a1b2cx y")}
    assert (await verify(adapter, FORM_BODY, headers, NOW, meta())).key_id == "primary"


@pytest.mark.parametrize(
    "change",
    [
        {"url_port_variants": True, "signed_content": "{body}"},
        {"body_sha256_param": "h", "signed_content": "{body}"},
        {"auth": "static_header", "signed_content": "{body}", "algorithm": "sha256",
         "encoding": "hex", "body_sha256_param": "h"},
    ],
)  # fmt: skip
def test_url_options_need_an_hmac_scheme_that_signs_the_url(change: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        generic({**URL_SCHEME, **change}, public_url=URL)
    assert caught.value.reason == "invalid_options"


# -- body_format: auto -------------------------------------------------------------------------


async def test_auto_reads_a_form_or_json_by_content_type() -> None:
    scheme = {"auth": "hmac", "header": "X-Sig", "encoding": "base64", "algorithm": "sha1"}
    adapter = generic(
        scheme, body_format="auto", mapping={"kind": "passthrough", "event_type": "type"}
    )
    assert adapter.reads_request
    assert FORM in adapter.extra_content_types
    form = b"type=form.posted&x=1"
    as_form = meta(url=None, content_type=FORM + "; charset=utf-8")
    as_json = meta(url=None, content_type="application/json")
    assert adapter.parse(form, as_form) == {"type": "form.posted", "x": "1"}
    assert adapter.parse(JSON_BODY, as_json) == {"type": "thing.happened", "n": 1}
    verified = await verify(adapter, JSON_BODY, {"X-Sig": sig(JSON_BODY)}, NOW, as_json)
    facts = adapter.normalize(adapter.parse(JSON_BODY, as_json), verified, NOW)
    assert isinstance(facts, Passthrough)
    assert facts.event_type == "thing.happened"


async def test_auto_with_a_body_delivery_id_reads_the_form() -> None:
    scheme = {
        "auth": "hmac",
        "header": "X-Sig",
        "encoding": "base64",
        "algorithm": "sha1",
        "delivery_id": {"path": "id"},
    }
    adapter = generic(scheme, body_format="auto")
    form = b"id=d-42&x=1"
    verified = await verify(adapter, form, {"X-Sig": sig(form)}, NOW, meta(url=None))
    assert verified.delivery_id == "d-42"


def test_auto_signs_json_as_json_and_anything_else_as_a_form() -> None:
    scheme = {**URL_SCHEME, "signed_content": "{form_sorted}"}
    adapter = generic(scheme, body_format="auto")
    assert adapter.sign(b"b=2&a=1", NOW, delivery_id="x")["X-Sig"] == sig("a1b2")


# -- event type from a header ------------------------------------------------------------------

TYPED: dict[str, Any] = {
    "kind": "passthrough",
    "event_type": "type",
    "event_type_header": ["X-Event", "X-Event-Type"],
}


def headers_with(*pairs: tuple[str, str]) -> CIMultiDict[str]:
    return CIMultiDict([("X-Sig", sig(JSON_BODY, algorithm="sha256")), *pairs])


async def event_type(body: bytes, *pairs: tuple[str, str]) -> str | None:
    scheme = {"auth": "hmac", "header": "X-Sig", "encoding": "base64"}
    adapter = generic(scheme, mapping=TYPED)
    headers = CIMultiDict([("X-Sig", sig(body, algorithm="sha256")), *pairs])
    verified = await adapter.verify(body, headers, NOW)
    facts = adapter.normalize(adapter.parse(body, meta(url=None)), verified, NOW)
    assert isinstance(facts, Passthrough)
    return facts.event_type


async def test_the_body_expression_wins_over_the_header() -> None:
    assert await event_type(JSON_BODY, ("X-Event", "other")) == "thing.happened"


async def test_the_header_names_the_type_the_body_does_not() -> None:
    assert await event_type(b'{"n":1}', ("X-Event", "push")) == "push"
    assert await event_type(b'{"n":1}', ("x-event-type", "push")) == "push"
    assert await event_type(b'{"n":1}') is None


@pytest.mark.parametrize(
    "pairs",
    [
        (("X-Event", "push"), ("X-Event", "issues")),
        (("X-Event", "push"), ("X-Event-Type", "issues")),
        (("X-Event", "x" * 257),),
        (("X-Event", " "),),
    ],
)
async def test_a_garbled_event_header_loses_the_type_not_the_delivery(
    pairs: tuple[tuple[str, str], ...],
) -> None:
    assert await event_type(b'{"n":1}', *pairs) is None


async def test_an_event_header_is_read_only_when_configured() -> None:
    scheme = {"auth": "hmac", "header": "X-Sig", "encoding": "base64"}
    adapter = generic(scheme)
    verified = await adapter.verify(JSON_BODY, headers_with(("X-Event", "push")), NOW)
    assert dict(verified.bound) == {}


@pytest.mark.parametrize("value", [36893488147419103231, -(10**20), 1e300, "1767225600000"])
def test_a_millisecond_time_no_datetime_can_hold_is_no_time(value: Any) -> None:
    mapping = {"kind": "passthrough", "occurred_at": "t", "occurred_at_unit": "milliseconds"}
    adapter = generic({"auth": "hmac", "header": "X-Sig"}, mapping=mapping)
    verified = Verified(scheme="s", key_id="primary", delivery_id=None)
    facts = adapter.normalize({"t": value}, verified, NOW)
    assert isinstance(facts, Passthrough)
    assert facts.occurred_at is None or facts.occurred_at.year == 2026
