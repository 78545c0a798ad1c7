"""The declarative blocks a source configures instead of code: ``scheme``, ``mapping``,
``handshakes`` and ``body_format``.

These are plain, strict pydantic models (unknown keys are refused, so a typo fails
``check-config``). They are compiled once, at startup, by :mod:`adapters.declarative.adapter`;
nothing here runs per delivery.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas import JobStatus

Algorithm = Literal["sha1", "sha256", "sha512"]
Encoding = Literal["hex", "base64", "base64url"]


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


HeaderName = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
]
#: A header name, or several names one header goes by (``webhook-id`` / ``svix-id``): a value
#: found under two of them must be the same, or the delivery is refused.
HeaderNames = HeaderName | tuple[HeaderName, ...]


def _names(value: HeaderNames | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else value


class SignatureFormat(_Block):
    """How one header carries several ``key=value`` pairs, e.g. ``t=1,v1=ab,v1=cd``.

    Without this block the whole header value (after ``prefix``) is one signature.
    """

    #: Between pairs: ``,`` (Stripe), ``;`` (Paddle), `` `` (Standard Webhooks).
    pair_separator: str = Field(default=",", min_length=1, max_length=4)
    #: Between a key and its value: ``=`` (Stripe), ``,`` (Standard Webhooks ``v1,sig``).
    kv_separator: str = Field(default="=", min_length=1, max_length=4)
    #: The key of signature pairs (``v1``, ``v0``, ``h1``, ``sig1``); every such pair is tried.
    signature_key: str = Field(min_length=1, max_length=32)
    #: The key of the signed timestamp, when the header carries one (``t``, ``ts``, ``time``).
    timestamp_key: str | None = Field(default=None, min_length=1, max_length=32)


class TimestampSource(_Block):
    """Where the signed timestamp comes from, and the replay window around it."""

    #: ``signature_header``: the ``timestamp_key`` pair; ``header``: its own header;
    #: ``body``: a JMESPath expression into the (verified) JSON body.
    source: Literal["signature_header", "header", "body"]
    header: HeaderNames | None = None
    path: str | None = Field(default=None, min_length=1, max_length=512)
    unit: Literal["seconds", "milliseconds"] = "seconds"
    format: Literal["unix", "rfc3339"] = "unix"

    @property
    def headers(self) -> tuple[str, ...]:
        return _names(self.header)

    #: How old a delivery may be; default: the source's ``tolerance_seconds``.
    max_age_seconds: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)
    #: How far in the future (clock skew); default: the source's ``tolerance_seconds``.
    max_future_seconds: int | None = Field(default=None, ge=1, le=3600)

    @model_validator(mode="after")
    def _where(self) -> TimestampSource:
        if self.source == "header" and not self.header:
            raise ValueError("timestamp.source header needs timestamp.header")
        if self.source == "body" and not self.path:
            raise ValueError("timestamp.source body needs timestamp.path")
        if self.source == "signature_header" and (self.header or self.path):
            raise ValueError("timestamp.source signature_header takes no header or path")
        return self


class DeliveryIdSource(_Block):
    """The provider's delivery id (stable across its retries): the event id and dedupe key."""

    header: HeaderNames | None = None
    path: str | None = Field(default=None, min_length=1, max_length=512)

    @property
    def headers(self) -> tuple[str, ...]:
        return _names(self.header)

    @model_validator(mode="after")
    def _one(self) -> DeliveryIdSource:
        if (self.header is None) == (self.path is None):
            raise ValueError("delivery_id: set exactly one of header, path")
        return self


AuthKind = Literal[
    "hmac", "static_header", "basic", "query_token", "path_token", "body_token", "none"
]


class SchemeConfig(_Block):
    """How a delivery proves it came from the sender."""

    auth: AuthKind
    #: Names the scheme on the event (``delivery.scheme``); default from auth and algorithm.
    name: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{0,63}$")

    # -- hmac -----------------------------------------------------------------------------
    algorithm: Algorithm = "sha256"
    encoding: Encoding = "hex"
    #: The header that carries the signature (``hmac``) or the token (``static_header``).
    header: HeaderNames | None = None
    signature_format: SignatureFormat | None = None
    #: A literal every signature starts with, removed before decoding (``sha256=``, ``v0=``).
    prefix: str = Field(default="", max_length=32)
    #: The signed bytes, e.g. ``{timestamp}.{body}``; see ``adapters.declarative.template``.
    signed_content: str = Field(default="{body}", min_length=1, max_length=1024)
    #: How a configured secret becomes key bytes: as it is (UTF-8), base64, or hex, after
    #: ``secret_prefix`` is removed (``whsec_`` + base64 for Standard Webhooks).
    secret_encoding: Literal["raw", "base64", "hex"] = "raw"  # noqa: S105 - a name, not a secret
    secret_prefix: str = Field(default="", max_length=32)
    timestamp: TimestampSource | None = None

    # -- token kinds ----------------------------------------------------------------------
    #: ``static_header``: what precedes the token in the header, e.g. ``Bearer ``.
    token_prefix: str = Field(default="", max_length=32)
    #: ``query_token``: the query parameter that carries the token.
    query_param: str | None = Field(default=None, min_length=1, max_length=64)
    #: ``body_token``: a JMESPath expression to the token inside the (unsigned) body.
    body_path: str | None = Field(default=None, min_length=1, max_length=512)

    delivery_id: DeliveryIdSource | None = None

    # -- the signed URL (``{url}``) ---------------------------------------------------------
    #: Accept ``{url}`` with and without the default port (``:443``, ``:80``): Twilio signs
    #: one or the other, and its SDK tries both.
    url_port_variants: bool = False
    #: A query parameter carrying the lower-case hex SHA-256 of the body (Twilio's
    #: ``bodySHA256`` on JSON deliveries). When the URL has it, it must equal the body's hash
    #: and ``{form_sorted}`` is empty: the body is covered through the signed URL.
    body_sha256_param: str | None = Field(default=None, min_length=1, max_length=64)

    @property
    def headers(self) -> tuple[str, ...]:
        return _names(self.header)

    @model_validator(mode="after")
    def _complete(self) -> SchemeConfig:
        needs = {
            "hmac": ("header",),
            "static_header": ("header",),
            "query_token": ("query_param",),
            "body_token": ("body_path",),
        }.get(self.auth, ())
        for name in needs:
            if getattr(self, name) is None:
                raise ValueError(f"scheme.auth {self.auth} needs scheme.{name}")
        if self.auth != "hmac":
            hmac_only = {
                "signature_format": self.signature_format is not None,
                "prefix": bool(self.prefix),
                "secret_prefix": bool(self.secret_prefix),
                "signed_content": self.signed_content != "{body}",
                "url_port_variants": self.url_port_variants,
                "body_sha256_param": self.body_sha256_param is not None,
            }
            used = [name for name, given in hmac_only.items() if given]
            if used:
                raise ValueError(f"scheme.{used[0]} applies to auth hmac only")
        if (self.url_port_variants or self.body_sha256_param) and (
            "{url}" not in self.signed_content
        ):
            raise ValueError(
                "scheme.url_port_variants and scheme.body_sha256_param need {url} in "
                "scheme.signed_content"
            )
        if (
            self.timestamp is not None
            and self.timestamp.source == "signature_header"
            and (self.signature_format is None or self.signature_format.timestamp_key is None)
        ):
            raise ValueError(
                "timestamp.source signature_header needs signature_format.timestamp_key"
            )
        return self


class JobMappingConfig(_Block):
    """JMESPath expressions from the body to the canonical job lifecycle."""

    kind: Literal["job"] = "job"
    job_id: str = Field(min_length=1, max_length=512)
    #: Its value is looked up in ``status_map``; a value not in the table is a dead letter.
    status: str = Field(min_length=1, max_length=512)
    status_map: dict[str, JobStatus] = Field(min_length=1)
    event_type: str | None = Field(default=None, min_length=1, max_length=512)
    #: Each expression may find a URL, a list of URLs, a file object or a nested structure.
    outputs: tuple[str, ...] = ()
    #: An object (``code``/``message`` read from it) or a string.
    error: str | None = Field(default=None, min_length=1, max_length=512)
    error_code: str | None = Field(default=None, min_length=1, max_length=512)
    error_message: str | None = Field(default=None, min_length=1, max_length=512)
    metrics: dict[
        Literal["queue_seconds", "inference_seconds", "total_seconds", "cost", "credits"], str
    ] = Field(default_factory=dict)
    occurred_at: str | None = Field(default=None, min_length=1, max_length=512)
    occurred_at_unit: Literal["seconds", "milliseconds"] = "seconds"
    #: When set and false for a delivery, it is not a job: see ``otherwise``.
    when: str | None = Field(default=None, min_length=1, max_length=512)
    #: What an authentic delivery that is not a job (``when`` false) becomes.
    otherwise: Literal["dead_letter", "passthrough"] = "dead_letter"


class PassthroughMappingConfig(_Block):
    """Publish every verified delivery as a ``WebhookEvent``."""

    kind: Literal["passthrough"]
    event_type: str | None = Field(default=None, min_length=1, max_length=512)
    #: A header naming the event type (GitHub's ``X-GitHub-Event``, Shopify's
    #: ``X-Shopify-Topic``), used when ``event_type`` finds nothing in the body. Such senders
    #: sign the body only: the header is what they said, not something the signature proves.
    event_type_header: HeaderNames | None = None
    occurred_at: str | None = Field(default=None, min_length=1, max_length=512)
    occurred_at_unit: Literal["seconds", "milliseconds"] = "seconds"

    @property
    def event_type_headers(self) -> tuple[str, ...]:
        return _names(self.event_type_header)


class QueryEchoHandshake(_Block):
    """An unsigned ``GET ?challenge=X`` answered with ``X`` (Dropbox, Onfleet, Strava)."""

    kind: Literal["query_echo"]
    param: str = Field(min_length=1, max_length=64)
    methods: tuple[Literal["GET", "HEAD", "OPTIONS"], ...] = ("GET",)
    #: ``text``: the value as ``text/plain`` with ``nosniff``; ``json``: ``{json_key: value}``.
    respond: Literal["text", "json"] = "text"
    json_key: str | None = Field(default=None, min_length=1, max_length=64)
    #: A query parameter that must equal one of the source's secrets (Strava's verify token).
    verify_param: str | None = Field(default=None, min_length=1, max_length=64)


class JsonEchoHandshake(_Block):
    """A signed POST answered with one of its fields (Slack ``url_verification``)."""

    kind: Literal["json_echo"]
    when: str = Field(min_length=1, max_length=512)
    field: str = Field(min_length=1, max_length=512)
    respond: Literal["text", "json"] = "json"
    json_key: str = Field(default="challenge", min_length=1, max_length=64)


class HmacChallengeHandshake(_Block):
    """A signed POST answered with a token and its HMAC (Zoom ``endpoint.url_validation``)."""

    kind: Literal["hmac_challenge"]
    when: str = Field(min_length=1, max_length=512)
    token: str = Field(min_length=1, max_length=512)
    algorithm: Algorithm = "sha256"
    encoding: Encoding = "hex"
    token_key: str = Field(default="plainToken", min_length=1, max_length=64)
    hash_key: str = Field(default="encryptedToken", min_length=1, max_length=64)


class FetchUrlHandshake(_Block):
    """A signed POST confirmed by fetching a URL it names (SNS ``SubscriptionConfirmation``)."""

    kind: Literal["fetch_url"]
    when: str = Field(min_length=1, max_length=512)
    url: str = Field(min_length=1, max_length=512)
    #: Host patterns, ``*`` one DNS label (``sns.*.amazonaws.com``); the URL must be https.
    allowed_hosts: tuple[str, ...] = Field(min_length=1)
    #: An expression whose value must be in ``allowed_values`` (e.g. the topic ARN).
    require: str | None = Field(default=None, min_length=1, max_length=512)
    allowed_values: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _allowlist(self) -> FetchUrlHandshake:
        if (self.require is None) != (not self.allowed_values):
            raise ValueError("fetch_url: require and allowed_values go together")
        return self


class ProbeHandshake(_Block):
    """A bare ``OPTIONS``/``HEAD``/``GET`` answered 2xx with nothing (HeyGen, InstantAPI)."""

    kind: Literal["probe"]
    methods: tuple[Literal["GET", "HEAD", "OPTIONS"], ...] = ("OPTIONS", "HEAD", "GET")
    status: Literal[200, 204] = 200


Handshake = (
    QueryEchoHandshake
    | JsonEchoHandshake
    | HmacChallengeHandshake
    | FetchUrlHandshake
    | ProbeHandshake
)
