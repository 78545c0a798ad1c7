"""The adapter contract: verify the exact bytes, then normalize the parsed payload.

An adapter is built once per configured source from a :class:`SourceSpec` (secrets already
resolved by the gateway) and is then called for every delivery to that source:

1. ``await adapter.verify(raw, headers, now, request)`` on the raw body, before anything parses
   it (``request`` carries what the URL said: method, query, a path token, the public URL);
2. ``await adapter.handshake(payload, verified, request)`` for adapters whose sender validates
   the endpoint with a signed request (Slack, Zoom, SNS): a :class:`Reply` answers it and no
   event is published;
3. ``adapter.normalize(payload, verified, now)`` on the parsed JSON, returning the job facts
   (:class:`Normalized`) or, for a sender whose events are not jobs, :class:`Passthrough`.

Unsigned probes (a ``GET ?challenge=``, an ``OPTIONS``) reach ``adapter.probe`` instead.

Adapters never see HTTP objects, the sink or metrics, and never read the clock: ``now`` is an
argument, so every test can pin it.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from adapters.errors import ConfigError
from adapters.primitives.headers import Headers
from adapters.primitives.payload import parse_json
from schemas import JobError, JobMetrics, JobStatus, Output

if TYPE_CHECKING:
    from multidict import MultiMapping


@dataclass(frozen=True, slots=True)
class NamedSecret:
    """A shared secret and the name it is configured under. The value never reaches a repr."""

    id: str
    value: str = field(repr=False)

    def __repr__(self) -> str:
        return f"NamedSecret(id={self.id!r}, value='**********')"


@dataclass(frozen=True, slots=True)
class NamedKey:
    """A public verification key (not secret) in the provider's own text encoding."""

    id: str
    value: str


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Everything an adapter may know about its source."""

    name: str
    provider: str
    secrets: tuple[NamedSecret, ...] = ()
    public_keys: tuple[NamedKey, ...] = ()
    tolerance_seconds: int = 300
    options: Mapping[str, Any] = field(default_factory=dict)
    #: The URL the provider was told to call (``{url}`` in signed content), if configured.
    public_url: str | None = None
    #: ``mode: production``: adapters refuse unauthenticated schemes unless explicitly allowed.
    production: bool = True
    allow_unauthenticated: bool = False


_EMPTY_QUERY: Mapping[str, str] = {}


@dataclass(frozen=True, slots=True)
class RequestMeta:
    """What the request line said, for schemes that sign or carry a credential outside the body.

    ``query`` is the parsed query string (first value per name; see ``query_all``),
    ``query_string`` the raw one as received, ``path_token`` the optional segment after
    ``/webhooks/{source}/``. ``url`` is the configured public URL plus the received query
    string: behind an ingress the Host header cannot be trusted to rebuild what was signed.
    """

    method: str = "POST"
    query_string: str = ""
    query: Mapping[str, str] = field(default_factory=lambda: _EMPTY_QUERY)
    query_all: MultiMapping[str] | None = field(default=None, repr=False)
    path_token: str | None = field(default=None, repr=False)
    url: str | None = None
    content_type: str | None = None

    def __repr__(self) -> str:  # the query and path may carry tokens: never print them
        return f"RequestMeta(method={self.method!r}, url=<{'set' if self.url else 'unset'}>)"


NO_REQUEST = RequestMeta()


Fetcher = Callable[[str], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class AdapterServices:
    """What the gateway lends adapters: an HTTP fetcher (JWKS, certificates, confirmation URLs)
    and a hook for key refreshes."""

    fetcher: Fetcher | None = None
    on_key_refresh: Callable[[str], None] | None = None


@dataclass(frozen=True, slots=True)
class Verified:
    """Proof that a delivery is authentic, and what the signature covered."""

    scheme: str
    key_id: str
    delivery_id: str | None
    signed_at: int | None = None
    # Signed header values the normalizer must cross-check against the body (e.g. fal's id).
    bound: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Normalized:
    """The provider-specific part of a job event; the pipeline adds ids, times and delivery."""

    job_id: str
    status: JobStatus
    provider_event_type: str | None = None
    outputs: tuple[Output, ...] = ()
    error: JobError | None = None
    metrics: JobMetrics = field(default_factory=JobMetrics)
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Passthrough:
    """An authentic event that is not a job (Stripe, GitHub, Slack...): published as it came,
    as a canonical ``WebhookEvent``."""

    event_type: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to an endpoint handshake or probe; nothing is published for it."""

    kind: str  # metric label: query_echo | json_echo | hmac_challenge | fetch_url | probe
    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """One row of ``docs/providers.md``, kept beside the code it describes (drift-checked)."""

    title: str
    kind: str  # job | passthrough | job or passthrough
    scheme: str
    headers: str
    delivery_id: str
    replay_window: str
    retries: str
    #: The provider's own package used as a test oracle, or where the vectors come from.
    oracle: str
    notes: str = ""


class AdapterOptions(BaseModel):
    """Per-provider options; unknown keys are refused so typos fail ``check-config``."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Adapter(abc.ABC):
    """Base class of every provider adapter."""

    provider: ClassVar[str]
    info: ClassVar[ProviderInfo | None] = None
    Options: ClassVar[type[AdapterOptions]] = AdapterOptions
    #: Header names (lower case) that carry signatures or credentials; never logged or kept.
    sensitive_headers: frozenset[str] = frozenset()

    def __init__(self, spec: SourceSpec, services: AdapterServices | None = None) -> None:
        self.spec = spec
        self.services = services or AdapterServices()
        try:
            self.options = self.Options.model_validate(dict(spec.options))
        except ValueError as exc:
            raise ConfigError("invalid_options", f"source {spec.name!r}: {exc}") from exc

    async def start(self) -> None:  # noqa: B027 - optional hook, most adapters need nothing
        """Load anything verification needs (e.g. a JWKS). Called once at startup."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what :meth:`start` acquired."""

    def ready(self) -> bool:
        """Whether the adapter can verify deliveries right now."""
        return True

    #: Whether :meth:`handshake` may answer a verified delivery (checked before calling it,
    #: so adapters without one cost nothing on the hot path).
    has_handshake: bool = False
    #: Media types accepted besides JSON (e.g. ``application/x-www-form-urlencoded``).
    extra_content_types: frozenset[str] = frozenset()
    #: Whether verification reads the request line (query, path token, public URL); the HTTP
    #: layer builds a :class:`RequestMeta` only for adapters that do.
    reads_request: bool = False
    #: Whether ``/webhooks/{source}/{token}`` is accepted (a path-token scheme).
    accepts_path_token: bool = False
    #: Whether :meth:`normalize` may return :class:`Passthrough` (the sink then checks that the
    #: passthrough destination exists).
    may_pass_through: bool = False

    @abc.abstractmethod
    async def verify(
        self, raw: bytes, headers: Headers, now: float, request: RequestMeta = NO_REQUEST
    ) -> Verified:
        """Prove the delivery authentic on its exact bytes or raise ``VerificationError``."""

    @abc.abstractmethod
    def normalize(self, payload: Any, verified: Verified, now: float) -> Normalized | Passthrough:
        """Map the parsed body to job facts (or a passthrough) or raise ``NormalizationError``.

        May raise ``VerificationError`` for checks that bind the signed headers to the body.
        """

    def parse(self, raw: bytes, request: RequestMeta) -> Any:
        """The body as data for :meth:`normalize`: JSON unless the adapter says otherwise."""
        return parse_json(raw)

    async def handshake(
        self, payload: Any, verified: Verified, request: RequestMeta
    ) -> Reply | None:
        """Answer a signed endpoint validation (``has_handshake`` adapters only)."""
        return None

    def probe(self, request: RequestMeta, headers: Headers) -> Reply | None:
        """Answer an unsigned non-POST probe (``GET ?challenge=``, ``OPTIONS``), or ``None``
        for 405. Must not reveal anything about the source's secrets."""
        return None

    @property
    def event_provider(self) -> str:
        """The ``provider`` events carry: the adapter's name, or a generic source's ``sender``."""
        return self.provider

    def replay_window_seconds(self) -> int:
        """The widest age (either way) a signed timestamp may have: dedupe must remember ids
        at least this long, or a replay inside the window would pass as new."""
        return self.spec.tolerance_seconds

    def examples(self) -> Mapping[str, Path]:
        """Sample bodies a source configures for ``send --example`` (besides the shipped ones)."""
        return {}

    def url_credentials(self) -> tuple[str | None, dict[str, str]]:
        """A path token and query parameters the sender puts in the URL (``send`` uses them)."""
        return None, {}

    def warnings(self) -> list[str]:
        """Things about this source's configuration an operator should know (shown by
        ``check-config`` and logged at startup), e.g. an unauthenticated scheme."""
        return []

    @abc.abstractmethod
    def sign(self, raw: bytes, now: int, *, delivery_id: str) -> dict[str, str]:
        """Headers the provider would send for ``raw``: used by ``webhook-gateway send``.

        Signs with the source's first secret, or for public-key schemes with the local test key.
        """

    def sign_delivery(
        self, raw: bytes, now: int, *, delivery_id: str
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers the provider would send for ``raw`` (``webhook-gateway send``).

        The same as :meth:`sign` with ``raw`` unchanged, except for schemes that sign inside
        the body (AWS SNS), which return the signed body.
        """
        return raw, self.sign(raw, now, delivery_id=delivery_id)


def first_secret(spec: SourceSpec) -> NamedSecret:
    if not spec.secrets:
        raise ConfigError("no_secret", f"source {spec.name!r} has no secret configured")
    return spec.secrets[0]
