"""Property tests: whatever arrives, adapters answer only with their own results and errors.

``verify`` returns ``Verified`` or raises ``VerificationError`` (``TemporaryError`` too for fal
reading a JWKS); ``normalize`` returns ``Normalized`` (which must make a schema-valid JobEvent)
or raises ``NormalizationError``/``VerificationError``. Anything else would escape the pipeline
as a 500. Header values include lone surrogates because aiohttp decodes header bytes with
``errors="surrogateescape"``; JSON integers go beyond the float range because ``parse_json``
keeps integers exactly.
"""

from __future__ import annotations

import asyncio
import base64
import json
import string
from collections.abc import Callable
from datetime import UTC
from functools import cache
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from adapters import (
    Adapter,
    NormalizationError,
    Normalized,
    TemporaryError,
    VerificationError,
    Verified,
)
from tests.helpers_adapters import (
    FAL_JWKS_URL,
    FAL_REQUEST_ID,
    FAL_X,
    PROVIDERS,
    SIGNING_HEADERS,
    FakeFetcher,
    default_adapter,
    job_event,
    jwks_bytes,
    validate_event,
    verified_for,
)

NOW = 1_750_000_000
# Deterministic (derandomize, no example database) and without the shrink phase, so a run that
# finds a bug costs no more time than one that does not; the unshrunk example is still printed.
PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---------------------------------------------------------------------------------- strategies
# Every code point, lone surrogates included (aiohttp's surrogateescape decoding makes them).
any_char = st.characters(exclude_categories=())
any_text = st.text(any_char, max_size=40)
# Header values exactly as aiohttp hands them over: arbitrary bytes, surrogateescape-decoded.
wire_text = st.binary(min_size=1, max_size=40).map(lambda b: b.decode("utf-8", "surrogateescape"))

timestamps = st.one_of(
    st.sampled_from(
        [str(NOW), str(NOW - 300), str(NOW + 300), str(NOW + 301), f"0{NOW}", f"+{NOW}", " ", ""]
    ),
    st.integers(min_value=NOW - 400, max_value=NOW + 400).map(str),
    st.integers(min_value=0, max_value=10**14).map(str),
)
b64 = st.binary(min_size=0, max_size=70).map(lambda b: base64.b64encode(b).decode())
sw_entries = st.one_of(
    st.tuples(st.sampled_from(["v1", "v1a", "v2", "", "V1"]), b64).map(",".join),
    st.tuples(st.sampled_from(["v1", "v1a"]), any_text).map(",".join),
    any_text,
)
signatures = st.one_of(
    st.binary(min_size=64, max_size=64).map(bytes.hex),
    st.binary(min_size=32, max_size=32).map(bytes.hex),
    st.binary(min_size=64, max_size=64).map(lambda b: b.hex().upper()),
    st.binary(max_size=70).map(bytes.hex),
    st.lists(sw_entries, max_size=4).map(" ".join),
    st.text(string.hexdigits, max_size=130),
)
identifiers = st.one_of(
    st.sampled_from([FAL_REQUEST_ID, "msg_1", "a.b", "a\nb", "req-\udcff", "", " "]),
    any_text,
    wire_text,
)
huge = st.integers(min_value=10_000, max_value=70_000).map(lambda n: "x" * n)
header_values = st.one_of(any_text, wire_text, timestamps, signatures, identifiers, huge)


def name_variants(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([name, name.lower(), name.upper(), name.title()])


def value_for(name: str) -> st.SearchStrategy[str]:
    """Values for a header, biased towards what that header normally holds."""
    lowered = name.lower()
    if lowered.endswith("timestamp"):
        return st.one_of(timestamps, header_values)
    if lowered.endswith("signature"):
        return st.one_of(signatures, header_values)
    if lowered.endswith("id"):
        return st.one_of(identifiers, header_values)
    return header_values


def to_headers(pairs: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> CIMultiDict[str]:
    result: CIMultiDict[str] = CIMultiDict()
    for name, value in pairs:
        result.add(name, value)
    return result


def noise(provider: str) -> st.SearchStrategy[tuple[str, str]]:
    names = st.one_of(
        st.sampled_from(SIGNING_HEADERS[provider]).flatmap(name_variants),
        st.text(any_char, max_size=20),
    )
    return names.flatmap(pairs_for)


def pairs_for(name: str) -> st.SearchStrategy[tuple[str, str]]:
    return st.tuples(st.just(name), value_for(name))


def header_maps(provider: str) -> st.SearchStrategy[CIMultiDict[str]]:
    """Header lists: every signing header with plausible or arbitrary values, plus noise."""
    real = SIGNING_HEADERS[provider]
    complete = st.tuples(*(pairs_for(name) for name in real))
    extra = st.lists(noise(provider), max_size=4)
    return st.one_of(
        st.builds(lambda base, more: to_headers([*base, *more]), complete, extra),
        extra.map(to_headers),
    )


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=10**400),  # parse_json keeps these exactly
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=100).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.just(b"{}"),
)

safe_ids = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=30)
MUTATIONS = (
    *("keep", "replace", "replace", "wire", "wire"),
    *("drop", "duplicate", "recase", "noise", "body"),
)


@cache
def signer(provider: str) -> Adapter:
    return default_adapter(provider)


@st.composite
def signed_then_mutated(draw: st.DrawFn, provider: str) -> tuple[bytes, CIMultiDict[str]]:
    """A correctly signed delivery with at most one thing changed: deep paths get exercised."""
    raw = draw(bodies)
    pairs = list(signer(provider).sign(raw, NOW, delivery_id=draw(safe_ids)).items())
    index = draw(st.integers(min_value=0, max_value=len(pairs) - 1))
    name, value = pairs[index]
    operation = draw(st.sampled_from(MUTATIONS))
    if operation == "replace":
        pairs[index] = (name, draw(value_for(name)))
    elif operation == "wire":  # one byte that is not UTF-8, as aiohttp would decode it
        data = value.encode()
        at = draw(st.integers(min_value=0, max_value=len(data)))
        byte = bytes([draw(st.integers(min_value=0x80, max_value=0xFF))])
        pairs[index] = (name, (data[:at] + byte + data[at:]).decode("utf-8", "surrogateescape"))
    elif operation == "drop":
        del pairs[index]
    elif operation == "duplicate":
        pairs.append((draw(name_variants(name)), draw(st.one_of(st.just(value), value_for(name)))))
    elif operation == "recase":
        pairs[index] = (draw(name_variants(name)), value)
    elif operation == "noise":
        pairs.extend(draw(st.lists(noise(provider), min_size=1, max_size=3)))
    elif operation == "body":
        raw = draw(bodies)
    return raw, to_headers(pairs)


def deliveries(provider: str) -> st.SearchStrategy[tuple[bytes, CIMultiDict[str]]]:
    signed = signed_then_mutated(provider)
    return st.one_of(st.tuples(bodies, header_maps(provider)), signed, signed)


# Plausible field values, so normalizers get past their first checks.
urls = st.one_of(
    st.sampled_from(
        [
            "https://cdn.example.com/a.png",
            "https://cdn.example.com/v.mp4",
            "http://x/y.WAV",
            "data:image/png;base64,AAAA",
            "https://[::1",
            "https://x/no-extension",
        ]
    ),
    st.text(max_size=20).map(lambda t: "https://x/" + t),
)
dates = st.one_of(
    st.datetimes(timezones=st.one_of(st.none(), st.just(UTC))).map(lambda d: d.isoformat()),
    st.sampled_from(["2025-01-12T10:30:00Z", "2025-01-12", "not a date", "", "9999-12-31"]),
    st.floats(min_value=0, max_value=2e11),
    st.integers(min_value=-(10**12), max_value=10**12),
    json_scalars,
)
files = st.fixed_dictionaries(
    {"url": urls},
    optional={
        "content_type": st.one_of(st.sampled_from(["image/png", "video/mp4", "x"]), json_scalars),
        "file_name": json_scalars,
        "file_size": json_scalars,
        "width": json_scalars,
        "height": json_scalars,
        "type": st.one_of(
            st.sampled_from(["image", "video", "audio", "text", "nope"]), json_scalars
        ),
    },
)
outputs = st.one_of(
    urls, files, st.lists(st.one_of(urls, files, json_values), max_size=4), json_values
)
numbers = st.one_of(
    st.floats(allow_nan=False), st.integers(), st.integers(10**300, 10**400), json_values
)
errors = st.one_of(
    st.text(max_size=20),
    st.fixed_dictionaries({}, optional={"code": json_scalars, "message": json_scalars}),
    json_values,
)


def maybe(keys: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {}, optional={k: st.one_of(v, json_values) for k, v in keys.items()}
    )


SHAPES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "fal": maybe(
        {
            "request_id": st.just(FAL_REQUEST_ID),
            "status": st.sampled_from(["OK", "ERROR", "IN_PROGRESS"]),
            "payload": st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "images": st.lists(files, max_size=3),
                        "video": files,
                        "detail": st.lists(json_values, max_size=2),
                        "timings": maybe({"inference": numbers}),
                    },
                ),
                json_values,
            ),
            "payload_error": st.text(max_size=20),
            "error": st.text(max_size=20),
        }
    ),
    "replicate": maybe(
        {
            "id": st.text(min_size=1, max_size=10),
            "status": st.sampled_from(
                ["starting", "processing", "succeeded", "failed", "canceled", "aborted"]
            ),
            "output": outputs,
            "error": errors,
            "metrics": maybe({"predict_time": numbers, "total_time": numbers}),
            "created_at": dates,
            "started_at": dates,
            "completed_at": dates,
        }
    ),
    "openai": maybe(
        {
            "type": st.sampled_from(
                [
                    "response.completed",
                    "batch.expired",
                    "eval.run.canceled",
                    "realtime.call.incoming",
                    "fine_tuning.job.",
                ]
            ),
            "data": maybe({"id": st.text(min_size=1, max_size=10)}),
            "created_at": dates,
        }
    ),
    "abstrakt": maybe(
        {
            "job_id": st.text(min_size=1, max_size=10),
            "request_id": st.text(min_size=1, max_size=10),
            "status": st.sampled_from(
                ["completed", "succeeded", "failed", "processing", "canceled"]
            ),
            "output": maybe(
                {"type": st.sampled_from(["image", "video"]), "items": st.lists(files, max_size=3)}
            ),
            "result": maybe({"items": st.lists(st.one_of(files, urls), max_size=3)}),
            "metrics": maybe({"inference_time": numbers, "queue_time": numbers}),
            "error": errors,
            "credits_used": numbers,
            "timestamp": dates,
            "completed_at": dates,
        }
    ),
    "instantapi": maybe(
        {
            "event_type": st.sampled_from(
                ["task.completed", "task.failed", "task.started", "task.x"]
            ),
            "task_id": st.text(min_size=1, max_size=10),
            "result": st.one_of(
                maybe({"error": errors, "files": st.lists(urls, max_size=3), "url": urls}), outputs
            ),
            "usage": maybe({"cost": numbers}),
            "completed_at": dates,
            "timestamp": dates,
            "created_at": dates,
        }
    ),
    "standard-webhooks": maybe(
        {
            "type": st.sampled_from(["job.completed", "job.failed", "job", "job.weird"]),
            "timestamp": dates,
            "data": maybe(
                {
                    "id": st.text(min_size=1, max_size=10),
                    "status": st.sampled_from(["succeeded", "queued", "error", "unknown"]),
                    "output": outputs,
                    "error": errors,
                }
            ),
        }
    ),
}


# ------------------------------------------------------------------------------------- helpers
def run_verify(make: Callable[[], Adapter], raw: bytes, h: CIMultiDict[str]) -> None:
    async def attempt() -> object:
        adapter = make()
        try:
            return await adapter.verify(raw, h, NOW)
        except (VerificationError, TemporaryError) as exc:
            return exc

    outcome = asyncio.run(attempt())
    if isinstance(outcome, TemporaryError):
        assert make().provider == "fal"
        assert outcome.reason == "keys_unavailable"
    elif isinstance(outcome, VerificationError):
        assert outcome.reason
    else:
        assert isinstance(outcome, Verified)


def check_normalize(adapter: Adapter, payload: Any, verified: Verified) -> None:
    outcome: object
    try:
        outcome = adapter.normalize(payload, verified, NOW)
    except (NormalizationError, VerificationError) as exc:
        outcome = exc
    if isinstance(outcome, NormalizationError | VerificationError):
        assert outcome.reason
        return
    assert isinstance(outcome, Normalized)
    event = job_event(outcome, verified, provider=adapter.provider, raw=payload, received_at=NOW)
    validate_event(event)


def fal_with_jwks(answer: bytes | Exception) -> Callable[[], Adapter]:
    def make() -> Adapter:
        return default_adapter("fal", fetcher=FakeFetcher().serve(FAL_JWKS_URL, answer))

    return make


# ---------------------------------------------------------------------------------------- verify
def _verify_property(provider: str) -> Callable[[], None]:
    @PROPERTY_SETTINGS
    @given(delivery=deliveries(provider))
    def test(delivery: tuple[bytes, CIMultiDict[str]]) -> None:
        raw, h = delivery
        run_verify(lambda: default_adapter(provider), raw, h)

    return test


test_verify_fal = _verify_property("fal")
test_verify_standard_webhooks = _verify_property("standard-webhooks")
test_verify_replicate = _verify_property("replicate")
test_verify_openai = _verify_property("openai")
test_verify_abstrakt = _verify_property("abstrakt")
test_verify_instantapi = _verify_property("instantapi")


@PROPERTY_SETTINGS
@given(
    delivery=deliveries("fal"),
    answer=st.sampled_from(
        [
            jwks_bytes({"kty": "OKP", "crv": "Ed25519", "x": FAL_X}),
            b"garbage",
            ConnectionError("down"),
        ]
    ),
)
def test_verify_fal_with_a_jwks_fetcher(
    delivery: tuple[bytes, CIMultiDict[str]], answer: bytes | Exception
) -> None:
    raw, h = delivery
    run_verify(fal_with_jwks(answer), raw, h)


@PROPERTY_SETTINGS
@given(
    provider=st.sampled_from(PROVIDERS),
    raw=bodies,
    delivery_id=st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=40),
    now=st.integers(min_value=0, max_value=10**11),
)
def test_sign_then_verify_round_trips(
    provider: str, raw: bytes, delivery_id: str, now: int
) -> None:
    async def check() -> None:
        adapter = default_adapter(provider)
        signed = adapter.sign(raw, now, delivery_id=delivery_id)
        verified = await adapter.verify(raw, CIMultiDict(signed), now)
        assert verified.key_id
        if provider not in ("abstrakt", "instantapi"):
            assert verified.delivery_id == delivery_id

    asyncio.run(check())


# ------------------------------------------------------------------------------------- normalize
def _normalize_property(provider: str) -> Callable[[], None]:
    @PROPERTY_SETTINGS
    @given(payload=st.one_of(SHAPES[provider], json_values))
    def test(payload: Any) -> None:
        check_normalize(default_adapter(provider), payload, verified_for(provider))

    return test


test_normalize_fal = _normalize_property("fal")
test_normalize_standard_webhooks = _normalize_property("standard-webhooks")
test_normalize_replicate = _normalize_property("replicate")
test_normalize_openai = _normalize_property("openai")
test_normalize_abstrakt = _normalize_property("abstrakt")
test_normalize_instantapi = _normalize_property("instantapi")
