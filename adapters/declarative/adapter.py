"""``provider: generic``: a source whose scheme, mapping and handshakes are configuration.

The blocks (:mod:`adapters.declarative.config`) are compiled once, when the adapter is built;
per delivery this runs the same steps as a code adapter, on the exact bytes, with ``now`` passed
in. Named presets (``provider: stripe``) are subclasses whose blocks are defaults the source's
own options are merged over.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl

from multidict import CIMultiDict
from pydantic import Field

from adapters.base import (
    NO_REQUEST,
    Adapter,
    AdapterOptions,
    AdapterServices,
    Normalized,
    Passthrough,
    ProviderInfo,
    Reply,
    RequestMeta,
    SourceSpec,
    Verified,
)
from adapters.declarative.config import (
    Handshake,
    JobMappingConfig,
    PassthroughMappingConfig,
    SchemeConfig,
)
from adapters.declarative.handshakes import Handshakes
from adapters.declarative.hmac_scheme import HmacVerifier, secret_key_bytes
from adapters.declarative.mapping import JobMapping, PassthroughMapping, compile_expression, search
from adapters.declarative.template import RenderContext, Template, compile_template
from adapters.declarative.timestamps import check_window, format_timestamp, parse_timestamp
from adapters.declarative.tokens import (
    TokenSet,
    basic_credentials,
    basic_header,
    redact_tokens,
    token_needles,
)
from adapters.declarative.urls import port_variants
from adapters.errors import ConfigError, NormalizationError, VerificationError
from adapters.primitives.headers import Headers, optional_header, require_header
from adapters.primitives.payload import parse_json

FORM = "application/x-www-form-urlencoded"
#: Where ``Verified.bound`` keeps the event type a header named (``mapping.event_type_header``).
EVENT_TYPE_HEADER = "event_type_header"
MAX_EVENT_TYPE = 256


class GenericOptions(AdapterOptions):
    scheme: SchemeConfig
    mapping: JobMappingConfig | PassthroughMappingConfig = Field(
        default=PassthroughMappingConfig(kind="passthrough"), discriminator="kind"
    )
    handshakes: tuple[Handshake, ...] = Field(default=(), max_length=8)
    #: How the body is read for the mapping: JSON, an HTML form (Twilio, Slack commands), or
    #: ``auto``: a form when the Content-Type says so, JSON otherwise (a sender that uses both).
    body_format: Literal["json", "form", "auto"] = "json"
    #: Sample bodies for ``webhook-gateway send --example NAME`` (files; ``{{job_id}}``,
    #: ``{{now}}``, ``{{now_ms}}``, ``{{now_iso}}`` are filled in).
    examples: dict[str, Path] = Field(default_factory=dict)
    #: The ``provider`` name events and metrics carry (default: the preset's, or ``generic``).
    sender: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")


def merge_options(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` over ``defaults``, recursively for mappings; lists and scalars are replaced."""
    merged = copy.deepcopy(dict(defaults))
    for key, value in given.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_options(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _parse_form(raw: bytes) -> dict[str, Any]:
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise NormalizationError("invalid_form", "body is not a UTF-8 form") from None
    form: dict[str, Any] = {}
    for name, value in pairs:
        if name in form:
            previous = form[name]
            form[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            form[name] = value
    return form


class GenericAdapter(Adapter):
    """A source verified and mapped entirely from its configuration."""

    provider: ClassVar[str] = "generic"
    info: ClassVar[ProviderInfo | None] = ProviderInfo(
        title="Any sender (generic)",
        kind="job or passthrough",
        scheme="configured: HMAC (sha1/sha256/sha512, hex/base64/base64url, any header grammar "
        "and signed-content template), static header token, Basic, query/path/body token, none",
        headers="configured",
        delivery_id="configured: a header or a body field",
        replay_window="configured: past and future tolerances",
        retries="the sender's",
        oracle="Stripe, GitHub and ElevenLabs vectors and every HMAC/Standard Webhooks vector "
        "of the code adapters, through configured sources",
        notes="see docs/configuration.md",
    )
    Options: ClassVar[type[AdapterOptions]] = GenericOptions
    #: A preset's blocks, merged under the source's own options (empty for ``generic``).
    preset_options: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, spec: SourceSpec, services: AdapterServices | None = None) -> None:
        if self.preset_options:
            spec = SourceSpec(
                name=spec.name,
                provider=spec.provider,
                secrets=spec.secrets,
                public_keys=spec.public_keys,
                tolerance_seconds=spec.tolerance_seconds,
                options=merge_options(self.preset_options, spec.options),
                public_url=spec.public_url,
                production=spec.production,
                allow_unauthenticated=spec.allow_unauthenticated,
            )
        super().__init__(spec, services)
        opts: GenericOptions = self.options  # type: ignore[assignment]
        scheme = opts.scheme
        self.scheme = scheme
        self.scheme_name = scheme.name or (
            f"hmac-{scheme.algorithm}-{scheme.encoding}"
            if scheme.auth == "hmac"
            else scheme.auth.replace("_", "-")
        )
        self.body_format = opts.body_format
        self.sender = opts.sender
        if opts.body_format != "json":
            self.extra_content_types = frozenset({FORM})
        # ``auto`` reads the Content-Type, which travels in RequestMeta.
        self.reads_request = (
            scheme.auth in ("query_token", "path_token")
            or opts.body_format == "auto"
            or any(h.kind == "query_echo" for h in opts.handshakes)
        )
        self.accepts_path_token = scheme.auth == "path_token"
        if scheme.auth == "none" and spec.production and not spec.allow_unauthenticated:
            raise ConfigError(
                "unauthenticated_source",
                f"source {spec.name!r}: scheme.auth none proves nothing; in production set "
                "allow_unauthenticated: true to accept it anyway",
            )

        self._verifier: HmacVerifier | None = None
        self._tokens: TokenSet | None = None
        if scheme.auth == "hmac":
            self._verifier = HmacVerifier(scheme, spec.secrets)
        elif scheme.auth != "none":
            self._tokens = TokenSet(spec.secrets, f"scheme.auth {scheme.auth}")
        elif spec.secrets:
            self._tokens = TokenSet(spec.secrets, "handshakes")
        # A token scheme's secret that the sender also echoes in the body (PiAPI, a Deepgram
        # callback_secret) is removed before the body is published with the event.
        echoed = [s.value for s in spec.secrets] if scheme.auth not in ("hmac", "none") else []
        self._echoed = frozenset(echoed)
        self._echoed_needles = token_needles(echoed)

        timestamp = scheme.timestamp
        self._past = (timestamp.max_age_seconds if timestamp else None) or spec.tolerance_seconds
        self._future = (
            timestamp.max_future_seconds if timestamp else None
        ) or spec.tolerance_seconds
        self._ts_expr = (
            compile_expression(timestamp.path, "scheme.timestamp.path")
            if timestamp is not None and timestamp.path
            else None
        )
        delivery = scheme.delivery_id
        self._id_expr = (
            compile_expression(delivery.path, "scheme.delivery_id.path")
            if delivery is not None and delivery.path
            else None
        )
        self._body_token = (
            compile_expression(scheme.body_path, "scheme.body_path") if scheme.body_path else None
        )
        available = ["body", "method", "body_sha256", "form_sorted"]
        if spec.public_url:
            available.append("url")
        if timestamp is not None:
            available.append("timestamp")
        if delivery is not None and delivery.headers:
            available.append("id")
        self._template: Template = compile_template(scheme.signed_content, available=available)
        if (
            self._verifier is not None
            and timestamp is not None
            and timestamp.source != "body"
            and "timestamp" not in self._template.tokens
        ):
            raise ConfigError(
                "unsigned_timestamp",
                f"source {spec.name!r}: scheme.timestamp is read from a header but "
                "signed_content has no {timestamp}: an unsigned timestamp proves nothing",
            )
        if "url" in self._template.tokens:
            self.reads_request = True

        self._mapping: JobMapping | PassthroughMapping = (
            JobMapping(opts.mapping)
            if isinstance(opts.mapping, JobMappingConfig)
            else PassthroughMapping(opts.mapping)
        )
        self.may_pass_through = isinstance(self._mapping, PassthroughMapping) or (
            self._mapping.may_pass_through
        )
        self._event_type_headers = (
            opts.mapping.event_type_headers
            if isinstance(opts.mapping, PassthroughMappingConfig)
            else ()
        )
        self._handshakes = Handshakes(
            opts.handshakes,
            tokens=self._tokens,
            hmac_key=self._key_bytes,
            fetcher=self.services.fetcher,
        )
        self.has_handshake = bool(self._handshakes.signed)
        self.sensitive_headers = (
            frozenset(h.lower() for h in (*scheme.headers, "authorization"))
            if scheme.auth != "none"
            else frozenset()
        )
        # The body parsed during verification (a body token, a body timestamp or id), reused by
        # ``parse`` when it is the same bytes object: saves a second parse per delivery.
        self._parsed: tuple[bytes, str, Any] | None = None

    # -- verification ------------------------------------------------------------------------

    async def verify(
        self, raw: bytes, headers: Headers, now: float, request: RequestMeta = NO_REQUEST
    ) -> Verified:
        scheme = self.scheme
        ctx = RenderContext(raw, headers, method=request.method, url=request.url)
        fmt = self._format(request)
        signed_at: float | None = None
        timestamp = scheme.timestamp
        delivery = scheme.delivery_id
        if delivery is not None and delivery.headers:
            ctx.delivery_id = require_header(headers, delivery.headers)
            self._template.check_id(ctx.delivery_id)
        key_id: str
        if self._verifier is not None:
            parsed = self._verifier.parse(require_header(headers, scheme.headers))
            if timestamp is not None and timestamp.source != "body":
                ctx.timestamp = (
                    parsed.timestamp
                    if timestamp.source == "signature_header"
                    else require_header(headers, timestamp.headers)
                )
                if ctx.timestamp is None:
                    raise VerificationError(
                        "missing_header", "no timestamp in the signature header"
                    )
                signed_at = parse_timestamp(
                    ctx.timestamp, unit=timestamp.unit, fmt=timestamp.format
                )
                check_window(signed_at, now, past=self._past, future=self._future)
            elif timestamp is not None:
                ctx.timestamp = self._body_timestamp_text(raw, fmt)
            body_hash = self._body_hash_param(request)
            ctx.body_in_url = body_hash is not None
            key_id = self._match(ctx, parsed.signatures)
            if body_hash is not None and not hmac.compare_digest(
                body_hash.encode(), hashlib.sha256(raw).hexdigest().encode()
            ):
                raise VerificationError(
                    "body_hash_mismatch", "the signed URL's body hash is not the body's"
                )
        else:
            key_id = self._check_token(raw, headers, request, fmt)
            if timestamp is not None and timestamp.source != "body":
                text = require_header(headers, timestamp.headers)
                signed_at = parse_timestamp(text, unit=timestamp.unit, fmt=timestamp.format)
                check_window(signed_at, now, past=self._past, future=self._future)
        if timestamp is not None and timestamp.source == "body":
            value = self._search_body(raw, self._ts_expr, "scheme.timestamp.path", fmt)
            if value is None:
                raise VerificationError("missing_field", "no timestamp in the body")
            signed_at = parse_timestamp(value, unit=timestamp.unit, fmt=timestamp.format)
            check_window(signed_at, now, past=self._past, future=self._future)
        delivery_id = ctx.delivery_id
        if self._id_expr is not None:
            found = self._search_body(raw, self._id_expr, "scheme.delivery_id.path", fmt)
            delivery_id = found if isinstance(found, str) and found else None
            if isinstance(found, int) and not isinstance(found, bool):
                delivery_id = str(found)
        return Verified(
            scheme=self.scheme_name,
            key_id=key_id,
            delivery_id=delivery_id,
            signed_at=int(signed_at) if signed_at is not None else None,
            bound=self._event_type_bound(headers),
        )

    def _match(self, ctx: RenderContext, signatures: tuple[str, ...]) -> str:
        """The key id whose HMAC over the rendered content is one of ``signatures``; with
        ``url_port_variants``, the URL is tried without and with its default port."""
        verifier = self._verifier
        assert verifier is not None  # hmac sources only
        if not self.scheme.url_port_variants or ctx.url is None:
            return verifier.match(self._template.render(ctx), signatures)
        variants = port_variants(ctx.url)
        for url in variants[:-1]:
            ctx.url = url
            try:
                return verifier.match(self._template.render(ctx), signatures)
            except VerificationError as exc:
                if exc.reason != "signature_mismatch":
                    raise
        ctx.url = variants[-1]
        return verifier.match(self._template.render(ctx), signatures)

    def _body_hash_param(self, request: RequestMeta) -> str | None:
        """The body hash the signed URL carries (``scheme.body_sha256_param``), if it does."""
        name = self.scheme.body_sha256_param
        if name is None:
            return None
        values = (
            request.query_all.getall(name, [])
            if request.query_all is not None
            else [v for k, v in request.query.items() if k == name]
        )
        if len(values) > 1:
            raise VerificationError("malformed_query", f"{name} appears more than once")
        return values[0] if values else None

    def _event_type_bound(self, headers: Headers) -> Mapping[str, str]:
        if not self._event_type_headers:
            return {}
        try:
            value = optional_header(headers, self._event_type_headers)
        except VerificationError:
            # Unsigned and only informative: a garbled copy loses the type, not the delivery.
            return {}
        if value is None or len(value) > MAX_EVENT_TYPE:
            return {}
        return {EVENT_TYPE_HEADER: value}

    def _format(self, request: RequestMeta) -> Literal["json", "form"]:
        if self.body_format != "auto":
            return self.body_format
        media = (request.content_type or "").split(";", 1)[0].strip().lower()
        return "form" if media == FORM else "json"

    def _sign_format(self, raw: bytes) -> Literal["json", "form"]:
        """What ``send`` will say the body is: for ``auto``, JSON when it looks like JSON."""
        if self.body_format != "auto":
            return self.body_format
        return "json" if raw.lstrip()[:1] in (b"{", b"[") else "form"

    def _check_token(
        self, raw: bytes, headers: Headers, request: RequestMeta, fmt: Literal["json", "form"]
    ) -> str:
        auth = self.scheme.auth
        if auth == "none":
            return "none"
        tokens = self._tokens
        assert tokens is not None  # built for every token kind
        if auth == "static_header":
            value = require_header(headers, self.scheme.headers)
            prefix = self.scheme.token_prefix
            if prefix:
                if value[: len(prefix)].lower() != prefix.lower():
                    raise VerificationError("malformed_header", f"token must follow {prefix!r}")
                value = value[len(prefix) :].strip()
            return tokens.match(value, missing="missing_header")
        if auth == "basic":
            given = basic_credentials(optional_header(headers, ("Authorization",)))
            return tokens.match(given, missing="missing_header")
        if auth == "query_token":
            return tokens.match(
                request.query.get(self.scheme.query_param or ""), missing="missing_token"
            )
        if auth == "path_token":
            return tokens.match(request.path_token, missing="missing_token")
        value = self._search_body(raw, self._body_token, "scheme.body_path", fmt)
        return tokens.match(value if isinstance(value, str) else None, missing="missing_token")

    def _payload(self, raw: bytes, fmt: Literal["json", "form"]) -> Any:
        cached = self._parsed
        if cached is not None and cached[0] is raw and cached[1] == fmt:
            return cached[2]
        payload = parse_json(raw) if fmt == "json" else _parse_form(raw)
        self._parsed = (raw, fmt, payload)
        return payload

    def _search_body(self, raw: bytes, expr: Any, where: str, fmt: Literal["json", "form"]) -> Any:
        try:
            return search(expr, self._payload(raw, fmt), where)
        except NormalizationError as exc:
            raise VerificationError("malformed_body", exc.detail) from None

    def _body_timestamp_text(self, raw: bytes, fmt: Literal["json", "form"]) -> str:
        value = self._search_body(raw, self._ts_expr, "scheme.timestamp.path", fmt)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value:
            return value
        raise VerificationError("missing_field", "no timestamp in the body")

    def _key_bytes(self, key_id: str) -> bytes | None:
        for secret in self.spec.secrets:
            if secret.id == key_id:
                if self.scheme.auth == "hmac":
                    return secret_key_bytes(secret, self.scheme)
                return secret.value.encode()
        return None

    # -- after verification ------------------------------------------------------------------

    def parse(self, raw: bytes, request: RequestMeta) -> Any:
        payload = self._payload(raw, self._format(request))
        if any(needle in raw for needle in self._echoed_needles):
            return redact_tokens(payload, self._echoed)
        return payload

    async def handshake(
        self, payload: Any, verified: Verified, request: RequestMeta
    ) -> Reply | None:
        return await self._handshakes.answer(payload, verified)

    def probe(self, request: RequestMeta, headers: Headers) -> Reply | None:
        return self._handshakes.probe(request)

    def normalize(self, payload: Any, verified: Verified, now: float) -> Normalized | Passthrough:
        facts = self._mapping.apply(payload)
        if isinstance(facts, Passthrough) and facts.event_type is None:
            header_type = verified.bound.get(EVENT_TYPE_HEADER)
            if header_type:
                return dataclasses.replace(facts, event_type=header_type)
        return facts

    def examples(self) -> Mapping[str, Path]:
        opts: GenericOptions = self.options  # type: ignore[assignment]
        return opts.examples

    @property
    def event_provider(self) -> str:
        return self.sender or self.provider

    def replay_window_seconds(self) -> int:
        return max(self._past, self._future)

    def warnings(self) -> list[str]:
        notes: list[str] = []
        auth = self.scheme.auth
        if auth == "none":
            notes.append("scheme.auth none: anyone who knows the URL can publish events")
        if auth in ("query_token", "path_token"):
            notes.append(
                f"scheme.auth {auth}: the token travels in the URL (sender dashboards, proxy logs)"
            )
        if auth == "hmac" and not self._template.tokens & {"body", "body_sha256", "form_sorted"}:
            notes.append("the signature does not cover the body: a changed body still verifies")
        if auth == "hmac" and self.scheme.timestamp is None:
            notes.append(
                "no signed timestamp: a captured delivery is refused as a replay only while "
                "dedupe remembers it (dedupe.ttl_seconds)"
            )
        return notes

    # -- signing, for ``webhook-gateway send`` and the tests ----------------------------------

    def sign(self, raw: bytes, now: int, *, delivery_id: str) -> dict[str, str]:
        scheme = self.scheme
        headers: dict[str, str] = {}
        delivery = scheme.delivery_id
        if delivery is not None and delivery.headers:
            headers[delivery.headers[0]] = delivery_id
        timestamp = scheme.timestamp
        ts_text: str | None = None
        if timestamp is not None and timestamp.source != "body":
            ts_text = format_timestamp(now, unit=timestamp.unit, fmt=timestamp.format)
            if timestamp.source == "header" and timestamp.headers:
                headers[timestamp.headers[0]] = ts_text
        elif timestamp is not None:
            ts_text = self._body_timestamp_text(raw, self._sign_format(raw))
        if self._verifier is not None:
            ctx = RenderContext(
                raw,
                _headers(headers),
                url=self.spec.public_url,
                timestamp=ts_text,
                delivery_id=delivery_id,
            )
            headers[scheme.headers[0]] = self._verifier.header_value(
                self._template.render(ctx), ts_text
            )
            return headers
        tokens = self._tokens
        if scheme.auth == "static_header" and tokens is not None and scheme.headers:
            headers[scheme.headers[0]] = scheme.token_prefix + tokens.first
        elif scheme.auth == "basic" and tokens is not None:
            headers["Authorization"] = basic_header(tokens.first)
        return headers

    def url_credentials(self) -> tuple[str | None, dict[str, str]]:
        tokens = self._tokens
        if tokens is None:
            return None, {}
        if self.scheme.auth == "path_token":
            return tokens.first, {}
        if self.scheme.auth == "query_token" and self.scheme.query_param:
            return None, {self.scheme.query_param: tokens.first}
        return None, {}


def _headers(values: Mapping[str, str]) -> Headers:
    return CIMultiDict(values)
