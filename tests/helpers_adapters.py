"""Shared builders for the adapter tests: specs, headers, fake fetchers and clocks, vectors.

Imported as ``tests.helpers_adapters``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import importlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from multidict import CIMultiDict, MultiDict
from nacl.signing import SigningKey

import schemas
from adapters import (
    Adapter,
    AdapterServices,
    NamedKey,
    NamedSecret,
    Normalized,
    SourceSpec,
    Verified,
    build_adapter,
)
from adapters.base import NO_REQUEST, RequestMeta
from adapters.testing_keys import FAL_TEST_PUBLIC_X, V1A_TEST_PUBLIC
from gateway import event_id as event_ids
from gateway.ingest import build_event
from schemas import JobEvent, WebhookEvent

# No stubs for jsonschema are installed (types-jsonschema is not a dev dependency): load it as
# ``Any`` rather than with a ``type: ignore`` that would turn "unused" once stubs are added.
jsonschema: Any = importlib.import_module("jsonschema")

VECTOR_DIR = Path(__file__).resolve().parent / "vectors"

# ----------------------------------------------------------------- official / synthetic constants
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TS = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

V1A_SEED = "whsk_lRrbb82NG1TRxRFM2OKjQCGgRuWcFaYZuXFI8r9rVYk="
V1A_PUBLIC = "whpk_dnKQbuc3/Wh5dP6nyPWLNoye+77d8l+AIGIrs6MrW3g="
V1A_SIG = (
    "v1a,dus91InMCAEOTodIRq79T88Mq9xbOcPrjP8jVn0SaWLieJL2yCD1jS/eOeGVGXLhWELmfmP6qhIGdGyn2/VhBg=="
)

FAL_SEED_HEX = "369c671cdb8a0e57146979cdcb6206a944763a287290147d7539380170ee3c5a"
FAL_KEY = SigningKey(bytes.fromhex(FAL_SEED_HEX))
FAL_X = "WmCC_SLF-LQw5hTF-DHwNwRyW_43UrLO-8IZTYjp0Do"
FAL_KID = "test-key-1"
FAL_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
FAL_REQUEST_ID = "5057fca7-2eb3-468f-b95d-cefe92b0b9d4"
FAL_USER_ID = "user_test_123"
FAL_TS = 1752019770
FAL_BODY = (
    b'{"error": null, "gateway_request_id": "5057fca7-2eb3-468f-b95d-cefe92b0b9d4", '
    b'"payload": {"has_nsfw_concepts": [false], "images": [{"content_type": "image/jpeg", '
    b'"height": 1024, "url": "https://v3.fal.media/files/lion/O853qAknYZGU8_2QCbJwd.jpeg", '
    b'"width": 1024}], "prompt": "dog", "seed": 17454220438242315174, "timings": '
    b'{"inference": 2.107286686077714}}, "request_id": "5057fca7-2eb3-468f-b95d-cefe92b0b9d4", '
    b'"status": "OK"}'
)
FAL_SIG = (
    "17328f979996001b37c478af0b7fb43ebcf0cf9cc5e750cddff37aa051004a8e"
    "72ad0c516778cb82fd896d4d16fdb20b87bfcf7d99387077c3f951a369316a05"
)

HMAC_SECRET = "whs-abstrakt-test-secret"

PROVIDERS = ("fal", "standard-webhooks", "replicate", "openai", "abstrakt", "instantapi")
#: RSA schemes that sign inside the body or need a fetcher: tested in their own modules.
ASYMMETRIC_PROVIDERS = ("aws-sns", "gcp-pubsub")

_SW_HEADERS = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
)
#: The headers each provider signs with (as the provider spells them).
SIGNING_HEADERS: Mapping[str, tuple[str, ...]] = {
    "fal": (
        "X-Fal-Webhook-Request-Id",
        "X-Fal-Webhook-User-Id",
        "X-Fal-Webhook-Timestamp",
        "X-Fal-Webhook-Signature",
    ),
    "standard-webhooks": _SW_HEADERS,
    "replicate": _SW_HEADERS,
    "openai": _SW_HEADERS,
    "abstrakt": ("X-Abstrakt-Signature",),
    "instantapi": ("X-InstantAPI-Signature",),
}


# ------------------------------------------------------------------------------------- headers
def headers(*pairs: tuple[str, str] | Sequence[str], **named: str) -> CIMultiDict[str]:
    """A case-insensitive multi-map; pairs keep duplicates and order, keywords use ``_`` → ``-``."""
    result: CIMultiDict[str] = CIMultiDict()
    for pair in pairs:
        name, value = pair
        result.add(name, value)
    for key, value in named.items():
        result.add(key.replace("_", "-"), value)
    return result


def sw_headers(
    sig: str = SW_SIG, msg_id: str = SW_ID, ts: str | int = SW_TS, prefix: str = "webhook"
) -> CIMultiDict[str]:
    return headers(
        (f"{prefix}-id", msg_id),
        (f"{prefix}-timestamp", str(ts)),
        (f"{prefix}-signature", sig),
    )


def fal_headers(
    sig: str = FAL_SIG,
    request_id: str = FAL_REQUEST_ID,
    user_id: str = FAL_USER_ID,
    ts: str | int = FAL_TS,
) -> CIMultiDict[str]:
    return headers(
        ("X-Fal-Webhook-Request-Id", request_id),
        ("X-Fal-Webhook-User-Id", user_id),
        ("X-Fal-Webhook-Timestamp", str(ts)),
        ("X-Fal-Webhook-Signature", sig),
    )


# ------------------------------------------------------------------------------------- signing
def sw_sign(
    secret: str, msg_id: str, ts: str | int, body: bytes, *, key: bytes | None = None
) -> str:
    """``v1,`` signature computed here, independently of the adapter code."""
    if key is None:
        text = secret.removeprefix("whsec_")
        key = base64.b64decode(text + "=" * (-len(text) % 4))
    content = f"{msg_id}.{ts}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def v1a_sign(key: SigningKey, msg_id: str, ts: str | int, body: bytes) -> str:
    sig = key.sign(f"{msg_id}.{ts}.".encode() + body).signature
    return "v1a," + base64.b64encode(sig).decode()


def fal_sign(
    key: SigningKey,
    body: bytes,
    request_id: str = FAL_REQUEST_ID,
    user_id: str = FAL_USER_ID,
    ts: str | int = FAL_TS,
) -> str:
    digest = hashlib.sha256(body).hexdigest()
    return key.sign(f"{request_id}\n{user_id}\n{ts}\n{digest}".encode()).signature.hex()


def hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def x_of(key: SigningKey) -> str:
    """base64url without padding, as a JWK ``x``."""
    return base64.urlsafe_b64encode(bytes(key.verify_key)).decode().rstrip("=")


def jwk(key: SigningKey, kid: str) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": x_of(key), "kid": kid}


def jwks_bytes(*keys: Mapping[str, Any]) -> bytes:
    return json.dumps({"keys": list(keys)}).encode()


def signing_key(label: str) -> SigningKey:
    return SigningKey(hashlib.sha256(label.encode()).digest())


# ---------------------------------------------------------------------------------- fakes
@dataclass
class FakeClock:
    """A monotonic clock that moves only when told to, plus ``tick`` on every reading."""

    now: float = 1000.0
    tick: float = 0.0

    def __call__(self) -> float:
        self.now += self.tick
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeFetcher:
    """Serves JWKS documents by URL; a response may be bytes or an exception to raise.

    Each URL has a list of responses used in turn; the last one repeats. ``gate`` (when set)
    is awaited before answering, so tests can hold a fetch open.
    """

    responses: dict[str, list[bytes | Exception]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    gate: asyncio.Event | None = None

    def serve(self, url: str, *responses: bytes | Exception) -> FakeFetcher:
        self.responses[url] = list(responses)
        return self

    async def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        if self.gate is not None:
            await self.gate.wait()
        queue = self.responses.get(url)
        if not queue:
            raise ConnectionError(f"nothing served at {url}")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


# ------------------------------------------------------------------------------------ adapters
def make_spec(
    provider: str,
    *,
    secrets: Iterable[tuple[str, str]] = (),
    public_keys: Iterable[tuple[str, str]] = (),
    options: Mapping[str, Any] | None = None,
    tolerance_seconds: int = 300,
    name: str = "test-source",
    allow_unauthenticated: bool = False,
    public_url: str | None = None,
) -> SourceSpec:
    return SourceSpec(
        name=name,
        provider=provider,
        secrets=tuple(NamedSecret(i, v) for i, v in secrets),
        public_keys=tuple(NamedKey(i, v) for i, v in public_keys),
        tolerance_seconds=tolerance_seconds,
        options=dict(options or {}),
        allow_unauthenticated=allow_unauthenticated,
        public_url=public_url,
    )


def make_adapter(
    provider: str,
    *,
    secrets: Iterable[tuple[str, str]] = (),
    public_keys: Iterable[tuple[str, str]] = (),
    options: Mapping[str, Any] | None = None,
    tolerance_seconds: int = 300,
    fetcher: FakeFetcher | None = None,
) -> Adapter:
    spec = make_spec(
        provider,
        secrets=secrets,
        public_keys=public_keys,
        options=options,
        tolerance_seconds=tolerance_seconds,
    )
    return build_adapter(spec, AdapterServices(fetcher=fetcher))


def default_adapter(provider: str, fetcher: FakeFetcher | None = None) -> Adapter:
    """A valid configuration of ``provider`` whose ``sign()`` its own ``verify()`` accepts."""
    if provider == "fal":
        if fetcher is not None:
            return make_adapter(
                "fal",
                public_keys=[("local", FAL_TEST_PUBLIC_X)],
                options={"jwks_urls": [FAL_JWKS_URL]},
                fetcher=fetcher,
            )
        return make_adapter("fal", public_keys=[(FAL_KID, FAL_X), ("local", FAL_TEST_PUBLIC_X)])
    if provider in ("standard-webhooks", "replicate", "openai"):
        return make_adapter(provider, secrets=[("primary", SW_SECRET)])
    return make_adapter(provider, secrets=[("primary", HMAC_SECRET)])


def v1a_adapter() -> Adapter:
    """Standard Webhooks with the local v1a test key only (so ``sign`` uses ``v1a``)."""
    return make_adapter("standard-webhooks", public_keys=[("local", V1A_TEST_PUBLIC)])


def verified_for(provider: str, *, request_id: str = FAL_REQUEST_ID) -> Verified:
    """A plausible ``Verified`` for calling ``normalize`` directly."""
    if provider == "fal":
        return Verified(
            scheme="ed25519-jwks",
            key_id=FAL_KID,
            delivery_id=request_id,
            signed_at=FAL_TS,
            bound={"request_id": request_id, "user_id": FAL_USER_ID},
        )
    if provider in ("abstrakt", "instantapi"):
        return Verified(scheme="hmac-sha256-hex", key_id="primary", delivery_id=None)
    return Verified(
        scheme="standard-webhooks-v1", key_id="primary", delivery_id=SW_ID, signed_at=SW_TS
    )


# ----------------------------------------------------------------------------------- job events
def job_event(
    normalized: Normalized,
    verified: Verified,
    *,
    provider: str,
    raw: Any,
    received_at: float,
    source: str = "test-source",
) -> JobEvent:
    """The event the pipeline would publish for this delivery (built by the pipeline's code)."""
    received = datetime.fromtimestamp(received_at, tz=UTC)
    if verified.delivery_id is not None:
        event_id = event_ids.from_delivery(source, verified.delivery_id)
    else:
        digest = hashlib.sha256(repr(raw).encode()).digest()
        event_id = event_ids.from_content(source, normalized.job_id, normalized.status, digest)
    return build_event(event_id, source, provider, normalized, verified, raw, received, received)


SCHEMA_DIR = Path(schemas.__file__).resolve().parent


@cache
def _event_validator(name: str = "job_event.v1.schema.json") -> Any:
    """A validator for one committed schema file (the drift check keeps them current)."""
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def validate_event(
    event: JobEvent | WebhookEvent, schema: str = "job_event.v1.schema.json"
) -> dict[str, Any]:
    """``event.model_dump(mode="json")``, checked against the committed JSON Schema file
    (Draft 2020-12): ``job_event.v1.schema.json`` or ``webhook_event.v1.schema.json``."""
    document = event.model_dump(mode="json")
    _event_validator(schema).validate(document)
    return document


# --------------------------------------------------------------------------------------- vectors
def vector_files() -> list[Path]:
    """Every vector file (folders starting with ``_`` are not vectors)."""
    return sorted(
        path for path in VECTOR_DIR.glob("*/*.json") if not path.parent.name.startswith("_")
    )


def load_vector(path: Path) -> dict[str, Any]:
    data: Any = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise TypeError(f"{path} does not hold an object")
    return data


def vector_spec(vector: Mapping[str, Any]) -> SourceSpec:
    source = vector["source"]
    return make_spec(
        vector["provider"],
        secrets=[(s["id"], s["value"]) for s in source.get("secrets", [])],
        public_keys=[(k["id"], k["value"]) for k in source.get("public_keys", [])],
        options=source.get("options", {}),
        tolerance_seconds=source.get("tolerance_seconds", 300),
        allow_unauthenticated=source.get("allow_unauthenticated", False),
        public_url=source.get("public_url"),
    )


def vector_fetcher(vector: Mapping[str, Any]) -> FakeFetcher | None:
    """Serves the vector's ``jwks`` documents (as JSON) and ``fetch`` texts (as they are)."""
    documents = vector.get("jwks") or {}
    texts = vector.get("fetch")
    if not documents and texts is None:
        return None
    fetcher = FakeFetcher()
    for url, doc in documents.items():
        fetcher.serve(url, json.dumps(doc).encode())
    for url, text in (texts or {}).items():
        fetcher.serve(url, text.encode())
    return fetcher


def vector_request(vector: Mapping[str, Any]) -> RequestMeta:
    """What the request line carried (``"request": {"path_token", "query", "url",
    "content_type"}``), if anything. ``url`` is the public URL plus the received query, as a
    sender signs it; its query, when given, is the request's."""
    request = vector.get("request")
    if not request:
        return NO_REQUEST
    url = request.get("url")
    if url:
        query_string = url.partition("?")[2]
        query_all: MultiDict[str] = MultiDict(parse_qsl(query_string, keep_blank_values=True))
    else:
        query_all = MultiDict(request.get("query", {}))
        query_string = urlencode(list(query_all.items()))
    return RequestMeta(
        method=request.get("method", "POST"),
        query_string=query_string,
        query={k: query_all[k] for k in query_all},
        query_all=query_all,
        path_token=request.get("path_token"),
        url=url,
        content_type=request.get("content_type"),
    )


def vector_headers(vector: Mapping[str, Any]) -> CIMultiDict[str]:
    return headers(*(tuple(pair) for pair in vector["headers"]))
