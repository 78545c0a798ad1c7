"""Shared pieces of the passthrough preset tests: a minimal source per preset, what each shipped
sample must become, and WebhookEvents checked against the published JSON Schema."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from multidict import MultiDict

import schemas
from adapters import build_adapter
from adapters.base import NamedSecret, Passthrough, RequestMeta, SourceSpec, Verified
from adapters.declarative.adapter import FORM, GenericAdapter
from adapters.examples import names as example_names
from adapters.examples import render
from adapters.presets import events
from gateway import event_id as event_ids
from gateway.ingest import build_webhook_event
from schemas import WebhookEvent
from tests.helpers_adapters import make_spec

jsonschema: Any = importlib.import_module("jsonschema")

PASSTHROUGH = tuple(preset.name for preset in events.PRESETS)
SVIX_SECRET = "whsec_" + base64.b64encode(hashlib.sha256(b"tests: svix").digest()).decode()
SVIX_OTHER = "whsec_" + base64.b64encode(hashlib.sha256(b"tests: other").digest()).decode()
#: A secret each preset accepts as configured (Svix secrets are ``whsec_`` + base64).
SECRETS: Mapping[str, str] = {
    name: SVIX_SECRET if name in ("clerk", "resend") else f"{name}-test-secret"
    for name in PASSTHROUGH
}
#: Senders that sign the URL they call: their minimal source also names it.
PUBLIC_URLS: Mapping[str, str] = {
    "twilio": "https://hooks.example.com/webhooks/twilio",
    "twilio-sha256": "https://hooks.example.com/webhooks/twilio-sha256",
    "square": "https://hooks.example.com/webhooks/square",
}
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
JOB_ID = "0123456789abcdef0123"


@dataclass(frozen=True)
class Sample:
    """A shipped ``send --example`` body and what its event must say."""

    provider: str
    name: str
    event_type: str | None
    occurred_at: datetime | None
    #: A signed handshake: answered, never published.
    handshake: bool = False


_AT_NOW = datetime.fromtimestamp(NOW, tz=UTC)
SAMPLES: tuple[Sample, ...] = (
    Sample("stripe", "payment_intent.succeeded", "payment_intent.succeeded", _AT_NOW),
    Sample("github", "ping", None, None),
    Sample("github-sha1", "ping", None, None),
    Sample("shopify", "orders-create", None, None),
    Sample("slack", "event_callback", "app_mention", _AT_NOW),
    Sample("slack", "url_verification", "url_verification", None, handshake=True),
    Sample("twilio", "message-status", None, None),
    Sample("twilio-sha256", "message-status", None, None),
    Sample("paddle", "transaction.completed", "transaction.completed", _AT_NOW),
    Sample("square", "payment.updated", "payment.updated", _AT_NOW),
    Sample("linear", "issue.create", "Issue.create", _AT_NOW),
    Sample("intercom", "conversation.user.created", "conversation.user.created", _AT_NOW),
    Sample("zoom", "meeting.started", "meeting.started", _AT_NOW),
    Sample("zoom", "endpoint.url_validation", "endpoint.url_validation", _AT_NOW, True),
    Sample("clerk", "user.created", "user.created", _AT_NOW),
    Sample("resend", "email.delivered", "email.delivered", _AT_NOW),
    Sample("mux", "video.asset.ready", "video.asset.ready", _AT_NOW),
    Sample("cloudflare-stream", "ready", "ready", _AT_NOW),
    Sample("cloudflare-stream", "error", "error", _AT_NOW),
    Sample("vercel", "deployment.succeeded", "deployment.succeeded", _AT_NOW),
)


def sample_id(sample: Sample) -> str:
    return f"{sample.provider}/{sample.name}"


def minimal_spec(provider: str, **changes: Any) -> SourceSpec:
    """``provider: <name>`` with its secret (and, for URL signers, the URL) and nothing else."""
    spec = make_spec(
        provider,
        secrets=[("primary", SECRETS[provider])],
        public_url=PUBLIC_URLS.get(provider),
        name=changes.pop("name", "test-source"),
        options=changes.pop("options", None),
    )
    assert not changes, changes
    return spec


def preset(provider: str, **changes: Any) -> GenericAdapter:
    adapter = build_adapter(minimal_spec(provider, **changes))
    assert isinstance(adapter, GenericAdapter)
    return adapter


def with_secret(provider: str, secret: str) -> GenericAdapter:
    """The minimal source of ``provider`` holding ``secret`` instead of the usual one."""
    spec = minimal_spec(provider)
    adapter = build_adapter(replace(spec, secrets=(NamedSecret("primary", secret),)))
    assert isinstance(adapter, GenericAdapter)
    return adapter


def sample_body(sample: Sample, now: int = NOW) -> bytes:
    return render(sample.provider, sample.name, job_id=JOB_ID, now=now)


def content_type(raw: bytes) -> str:
    return "application/json" if raw.lstrip()[:1] in (b"{", b"[") else FORM


def request_for(adapter: GenericAdapter, raw: bytes, query: str = "") -> RequestMeta:
    """What the HTTP layer would hand the adapter for a POST of ``raw`` to its public URL."""
    query_all: MultiDict[str] = MultiDict()
    for pair in filter(None, query.split("&")):
        name, _, value = pair.partition("=")
        query_all.add(name, value)
    url = adapter.spec.public_url
    return RequestMeta(
        method="POST",
        query_string=query,
        query={k: query_all[k] for k in query_all},
        query_all=query_all,
        url=None if url is None else url + ("?" + query if query else ""),
        content_type=content_type(raw),
    )


@cache
def _validator() -> Any:
    path = Path(schemas.__file__).resolve().parent / "webhook_event.v1.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def webhook_event(
    facts: Passthrough, verified: Verified, *, provider: str, raw: bytes, payload: Any
) -> tuple[WebhookEvent, dict[str, Any]]:
    """The event the pipeline would publish, and its JSON form validated against the schema."""
    source = "test-source"
    event_id = (
        event_ids.from_delivery(source, verified.delivery_id)
        if verified.delivery_id is not None
        else event_ids.from_passthrough(source, hashlib.sha256(raw).digest())
    )
    at = datetime.fromtimestamp(NOW, tz=UTC)
    event = build_webhook_event(event_id, source, provider, facts, verified, payload, at, at)
    document = event.model_dump(mode="json")
    _validator().validate(document)
    return event, document


def shipped_samples() -> set[tuple[str, str]]:
    return {(name, example) for name in PASSTHROUGH for example in example_names(name)}
