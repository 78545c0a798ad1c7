"""Building generic sources in tests: a spec from a scheme block, and verifying a delivery."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from multidict import CIMultiDict

from adapters import AdapterServices, SourceSpec, Verified, build_adapter
from adapters.base import NO_REQUEST, NamedSecret, RequestMeta
from adapters.declarative.adapter import GenericAdapter


def generic_spec(
    scheme: Mapping[str, Any],
    *,
    secrets: Sequence[tuple[str, str]] = (("primary", "s3cret"),),
    mapping: Mapping[str, Any] | None = None,
    handshakes: Sequence[Mapping[str, Any]] = (),
    production: bool = False,
    allow_unauthenticated: bool = False,
    public_url: str | None = None,
    tolerance_seconds: int = 300,
    provider: str = "generic",
    **options: Any,
) -> SourceSpec:
    opts: dict[str, Any] = {"scheme": dict(scheme), **options}
    if mapping is not None:
        opts["mapping"] = dict(mapping)
    if handshakes:
        opts["handshakes"] = [dict(h) for h in handshakes]
    return SourceSpec(
        name="src",
        provider=provider,
        secrets=tuple(NamedSecret(i, v) for i, v in secrets),
        tolerance_seconds=tolerance_seconds,
        options=opts,
        public_url=public_url,
        production=production,
        allow_unauthenticated=allow_unauthenticated,
    )


def generic(
    scheme: Mapping[str, Any], services: AdapterServices | None = None, **kwargs: Any
) -> GenericAdapter:
    adapter = build_adapter(generic_spec(scheme, **kwargs), services)
    assert isinstance(adapter, GenericAdapter)
    return adapter


async def verify(
    adapter: GenericAdapter,
    raw: bytes,
    headers: Mapping[str, str] | Sequence[tuple[str, str]],
    now: float,
    request: RequestMeta = NO_REQUEST,
) -> Verified:
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    return await adapter.verify(raw, CIMultiDict(pairs), now, request)


STRIPE_LIKE: dict[str, Any] = {
    "auth": "hmac",
    "header": "Stripe-Signature",
    "signature_format": {"signature_key": "v1", "timestamp_key": "t"},
    "signed_content": "{timestamp}.{body}",
    "timestamp": {"source": "signature_header"},
    "delivery_id": {"path": "id"},
}
SLACK_LIKE: dict[str, Any] = {
    "auth": "hmac",
    "header": "X-Slack-Signature",
    "prefix": "v0=",
    "signed_content": "v0:{timestamp}:{body}",
    "timestamp": {"source": "header", "header": "X-Slack-Request-Timestamp"},
}
STANDARD_WEBHOOKS_LIKE: dict[str, Any] = {
    "auth": "hmac",
    "name": "standard-webhooks-v1",
    "header": ["webhook-signature", "svix-signature"],
    "encoding": "base64",
    "signature_format": {"pair_separator": " ", "kv_separator": ",", "signature_key": "v1"},
    "signed_content": "{id}.{timestamp}.{body}",
    "secret_encoding": "base64",
    "secret_prefix": "whsec_",
    "timestamp": {"source": "header", "header": ["webhook-timestamp", "svix-timestamp"]},
    "delivery_id": {"header": ["webhook-id", "svix-id"]},
}
