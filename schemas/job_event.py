"""Version 1 of the canonical job event.

Every field a consumer may rely on is here, with its unit in its name. The model is frozen and
forbids unknown fields, so a producer bug cannot smuggle an unversioned field into the topic.
Adding an optional field is a minor, compatible change; anything else bumps ``SCHEMA_VERSION``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION: Literal["1"] = "1"


class JobStatus(StrEnum):
    """One job lifecycle for every provider."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)


class OutputKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    TEXT = "text"
    FILE = "file"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Output(_Frozen):
    """One artifact the job produced. Provider URLs are often temporary: copy them promptly."""

    url: str = Field(description="Where the artifact can be fetched (may expire).")
    content_type: str | None = Field(default=None, description="MIME type, when known.")
    kind: OutputKind = Field(description="Coarse media kind, from the MIME type or extension.")
    file_name: str | None = None
    size_bytes: int | None = Field(default=None, ge=0)
    width: int | None = Field(default=None, ge=0, description="Pixels, images and video only.")
    height: int | None = Field(default=None, ge=0, description="Pixels, images and video only.")


class JobError(_Frozen):
    code: str | None = Field(default=None, description="Provider's machine-readable code, if any.")
    message: str | None = None
    details: Any = Field(default=None, description="Provider's structured details, untouched.")


class JobMetrics(_Frozen):
    queue_seconds: float | None = Field(default=None, ge=0)
    inference_seconds: float | None = Field(default=None, ge=0)
    total_seconds: float | None = Field(default=None, ge=0)
    cost: float | None = Field(default=None, description="Provider-reported cost, provider units.")
    credits: float | None = Field(default=None, description="Provider credits consumed.")

    @field_validator("*", mode="after")
    @classmethod
    def _no_float_noise(cls, value: float | None) -> float | None:
        # Derived values (45.2 + 2.1 = 47.300000000000004) carry binary rounding noise; 15
        # significant digits is what a double holds exactly, so this keeps every value a
        # provider can send and drops only the noise.
        return None if value is None else float(f"{value:.15g}")


class Delivery(_Frozen):
    """How this delivery reached the gateway and how it was proven authentic."""

    id: str | None = Field(
        description="Provider's delivery id (stable across retries), null when it sends none."
    )
    scheme: str = Field(
        description="Verification scheme, e.g. standard-webhooks-v1, ed25519-jwks, hmac-sha256-hex."
    )
    key_id: str = Field(description="Name of the secret or key that matched (never its value).")
    signed_at: AwareDatetime | None = Field(
        default=None, description="Timestamp covered by the signature, when the scheme signs one."
    )


class JobEvent(_Frozen):
    """A provider's job notification, verified and normalized."""

    schema_version: Literal["1"] = SCHEMA_VERSION
    event_id: str = Field(
        description=(
            "Deterministic: the same delivery always yields the same id. Consumers dedupe on it."
        ),
    )
    source: str = Field(description="Configured source name (the URL path segment).")
    provider: str = Field(description="Adapter that verified and normalized the delivery.")
    job_id: str = Field(description="Provider's job / request / prediction id.")
    status: JobStatus
    provider_event_type: str | None = Field(
        default=None, description="Provider's own event or status name, unmapped."
    )
    outputs: tuple[Output, ...] = ()
    error: JobError | None = None
    metrics: JobMetrics = Field(default_factory=JobMetrics)
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When the provider says the event happened, if it says."
    )
    received_at: AwareDatetime
    verified_at: AwareDatetime
    delivery: Delivery
    raw: Any = Field(
        description="The provider's original JSON body, parsed but otherwise untouched."
    )

    @property
    def partition_key(self) -> str:
        """Kafka record key: one job's events share a partition and stay in order."""
        return f"{self.source}:{self.job_id}"


def utc_from_timestamp(seconds: float) -> datetime:
    """Build an aware UTC datetime from Unix seconds (shared by adapters and the gateway)."""
    return datetime.fromtimestamp(seconds, tz=UTC)
