"""The adapter contract: verify the exact bytes, then normalize the parsed payload.

An adapter is built once per configured source from a :class:`SourceSpec` (secrets already
resolved by the gateway) and is then called for every delivery to that source:

1. ``await adapter.verify(raw, headers, now)`` on the raw body, before anything parses it;
2. ``adapter.normalize(payload, verified, now)`` on the parsed JSON, returning the job facts.

Adapters never see HTTP objects, the sink or metrics, and never read the clock: ``now`` is an
argument, so every test can pin it.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from adapters.errors import ConfigError
from adapters.primitives.headers import Headers
from schemas import JobError, JobMetrics, JobStatus, Output


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


Fetcher = Callable[[str], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class AdapterServices:
    """What the gateway lends adapters: an HTTP fetcher (JWKS) and a hook for key refreshes."""

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


class AdapterOptions(BaseModel):
    """Per-provider options; unknown keys are refused so typos fail ``check-config``."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Adapter(abc.ABC):
    """Base class of every provider adapter."""

    provider: ClassVar[str]
    Options: ClassVar[type[AdapterOptions]] = AdapterOptions
    #: Header names (lower case) that carry signatures or credentials; never logged or kept.
    sensitive_headers: ClassVar[frozenset[str]] = frozenset()

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

    @abc.abstractmethod
    async def verify(self, raw: bytes, headers: Headers, now: float) -> Verified:
        """Prove the delivery authentic on its exact bytes or raise ``VerificationError``."""

    @abc.abstractmethod
    def normalize(self, payload: Any, verified: Verified, now: float) -> Normalized:
        """Map the parsed body to job facts or raise ``NormalizationError``.

        May raise ``VerificationError`` for checks that bind the signed headers to the body.
        """

    @abc.abstractmethod
    def sign(self, raw: bytes, now: int, *, delivery_id: str) -> dict[str, str]:
        """Headers the provider would send for ``raw``: used by ``webhook-gateway send``.

        Signs with the source's first secret, or for public-key schemes with the local test key.
        """


def first_secret(spec: SourceSpec) -> NamedSecret:
    if not spec.secrets:
        raise ConfigError("no_secret", f"source {spec.name!r} has no secret configured")
    return spec.secrets[0]
