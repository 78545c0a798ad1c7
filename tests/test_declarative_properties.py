"""Properties of the engine over random scheme configurations and bodies: what the engine signs
(``send``) it verifies, and any one-byte change of body, timestamp or signature is refused; and
whatever arrives, only the gateway's own errors come out."""

from __future__ import annotations

import base64
import contextlib
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import GatewayError, VerificationError
from adapters.base import RequestMeta
from tests.declarative_support import generic, verify

NOW = 1_750_000_000
URL = "https://hooks.example.com/webhooks/src"
RUNS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def schemes(draw: st.DrawFn) -> dict[str, Any]:
    scheme: dict[str, Any] = {
        "auth": "hmac",
        "header": draw(st.sampled_from(["X-Signature", "Stripe-Signature", "webhook-signature"])),
        "algorithm": draw(st.sampled_from(["sha1", "sha256", "sha512"])),
        "encoding": draw(st.sampled_from(["hex", "base64", "base64url"])),
    }
    pair_sep = draw(st.sampled_from([None, ",", ";", " "]))
    timestamp_key = None
    if pair_sep is not None:
        kv_sep = draw(st.sampled_from([s for s in ("=", ",", ":") if s != pair_sep]))
        timestamp_key = draw(st.sampled_from([None, "t", "ts", "time"]))
        scheme["signature_format"] = {
            "pair_separator": pair_sep,
            "kv_separator": kv_sep,
            "signature_key": draw(st.sampled_from(["v1", "v0", "h1", "sig1"])),
            "timestamp_key": timestamp_key,
        }
    prefix = draw(st.sampled_from(["", "sha256=", "v0="]))
    if pair_sep is None or pair_sep not in prefix:
        scheme["prefix"] = prefix
    sources = ["none", "header"] + (["signature_header"] if timestamp_key else [])
    source = draw(st.sampled_from(sources))
    tokens = ["{body}", "{body_sha256}", "{method}", "{url}"]
    if source != "none":
        scheme["timestamp"] = {
            "source": source,
            "unit": draw(st.sampled_from(["seconds", "milliseconds"])),
            **({"header": "X-Timestamp"} if source == "header" else {}),
        }
        tokens.append("{timestamp}")
    if draw(st.booleans()):
        scheme["delivery_id"] = {"header": "X-Delivery-Id"}
        tokens.append("{id}")
    picked = draw(st.lists(st.sampled_from(tokens), min_size=0, max_size=3, unique=True))
    # The body (or its hash) is always covered, and a timestamp read from a header is always
    # signed (the engine refuses an unsigned one), so every change below must be refused.
    parts = [*picked, draw(st.sampled_from(["{body}", "{body_sha256}"]))]
    if source != "none" and "{timestamp}" not in parts:
        parts.append("{timestamp}")
    literal = draw(st.sampled_from([".", ":", "", "|"]))
    scheme["signed_content"] = literal.join(draw(st.permutations(parts)))
    decoding = draw(st.sampled_from(["raw", "base64", "hex"]))
    scheme["secret_encoding"] = decoding
    if decoding == "base64" and draw(st.booleans()):
        scheme["secret_prefix"] = "whsec_"
    return scheme


def encoded_secret(scheme: dict[str, Any], key: bytes) -> str:
    decoding = scheme["secret_encoding"]
    if decoding == "hex":
        return key.hex()
    if decoding == "base64":
        prefix: str = scheme.get("secret_prefix", "")
        return prefix + base64.b64encode(key).decode()
    return key.hex()  # raw: any text; hex digits are printable and never empty


SECRET = st.binary(min_size=1, max_size=48)
BODY = st.binary(min_size=1, max_size=256)


@RUNS
@given(
    scheme=schemes(), key=SECRET, body=BODY, offset=st.integers(min_value=0), bit=st.integers(0, 7)
)
async def test_signed_verifies_and_any_change_is_refused(
    scheme: dict[str, Any], key: bytes, body: bytes, offset: int, bit: int
) -> None:
    adapter = generic(scheme, secrets=[("k", encoded_secret(scheme, key))], public_url=URL)
    request = RequestMeta(url=URL)
    headers = adapter.sign(body, NOW, delivery_id="msg_1")
    verified = await verify(adapter, body, headers, NOW, request)
    assert verified.key_id == "k"

    # One bit of the body.
    index = offset % len(body)
    tampered = body[:index] + bytes([body[index] ^ (1 << bit)]) + body[index + 1 :]
    refused = False
    try:
        await verify(adapter, tampered, headers, NOW, request)
    except VerificationError:
        refused = True
    assert refused

    # The timestamp, where one is signed.
    timestamp = scheme.get("timestamp")
    if timestamp is not None:
        now_text = str(NOW * 1000 if timestamp["unit"] == "milliseconds" else NOW)
        later = str(int(now_text) + 1)
        changed = {
            name: value.replace(now_text, later) if now_text in value else value
            for name, value in headers.items()
        }
        assert changed != headers
        refused = False
        try:
            await verify(adapter, body, changed, NOW, request)
        except VerificationError:
            refused = True
        assert refused

    # One character of the signature, to another of its alphabet.
    header = scheme["header"]
    value = headers[header]
    sig_start = _signature_start(value, scheme)
    position = sig_start + offset % (len(value) - sig_start)
    replacement = _other_char(value[position], scheme["encoding"])
    if replacement is not None:
        forged = value[:position] + replacement + value[position + 1 :]
        refused = False
        try:
            await verify(adapter, body, {**headers, header: forged}, NOW, request)
        except VerificationError:
            refused = True
        assert refused


def _signature_start(value: str, scheme: dict[str, Any]) -> int:
    """Where the signature text starts in the header value (after any key and prefix)."""
    fmt = scheme.get("signature_format")
    start = 0
    if fmt is not None:  # send puts the signature pair last; no encoding contains its marker
        marker = fmt["signature_key"] + fmt["kv_separator"]
        start = value.rindex(marker) + len(marker)
    return start + len(scheme.get("prefix", ""))


def _other_char(char: str, encoding: str) -> str | None:
    if char == "=":
        return None  # padding: changing it changes the length, covered by the body bit
    if encoding == "hex":
        digits = "0123456789abcdef"
        return next(d for d in digits if d != char.lower())
    alphabet = string.ascii_letters + string.digits + ("+/" if encoding == "base64" else "-_")
    return next(c for c in alphabet if c != char)


@RUNS
@given(
    scheme=schemes(),
    body=st.binary(max_size=128),
    values=st.lists(st.text(max_size=80), min_size=3, max_size=3),
)
async def test_hostile_headers_raise_only_gateway_errors(
    scheme: dict[str, Any], body: bytes, values: list[str]
) -> None:
    adapter = generic(scheme, secrets=[("k", "00ff")], public_url=URL)
    headers = {scheme["header"]: values[0], "X-Timestamp": values[1], "X-Delivery-Id": values[2]}
    with contextlib.suppress(GatewayError):
        await verify(adapter, body, headers, NOW, RequestMeta(url=URL))
