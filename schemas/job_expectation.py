"""Version 1 of the job expectation: "this job was submitted; make sure it ends".

A service that submits a job to a provider registers one (on the ``webhooks.job-expectations``
topic keyed ``{source}:{job_id}``, on the admin listener, or with ``webhook-gateway expect``).
The job-events topic then carries exactly one terminal event for that job: from the webhook when
it comes, from the provider's status API when it does not, or a ``failed`` event with the error
code ``result_never_arrived`` once ``max_wait_seconds`` have passed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

EXPECTATION_SCHEMA_VERSION: Literal["1"] = "1"

#: A week: past that, no provider keeps a job's result, and an expectation is a mistake.
MAX_WAIT_LIMIT_SECONDS = 7 * 86_400


class JobExpectation(BaseModel):
    """A job the gateway must see end."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal["1"] = EXPECTATION_SCHEMA_VERSION
    source: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Configured source name the job's webhook is delivered to.",
    )
    job_id: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[^\s/?#]+$",
        description="Provider's job / request / prediction id, as its webhook carries it.",
    )
    submitted_at: AwareDatetime = Field(description="When the job was submitted.")
    poll_after_seconds: float = Field(
        default=300.0,
        ge=0,
        le=MAX_WAIT_LIMIT_SECONDS,
        description="How long after submitted_at to wait for the webhook before polling.",
    )
    max_wait_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=MAX_WAIT_LIMIT_SECONDS,
        description="The longest to wait in all; then a failed event, result_never_arrived.",
    )
    status_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://\S+$",
        description="The provider's status URL for this job, when it returns one (fal).",
    )
    response_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://\S+$",
        description="The provider's result URL for this job, when it returns one (fal).",
    )

    @model_validator(mode="after")
    def _order(self) -> JobExpectation:
        if self.poll_after_seconds > self.max_wait_seconds:
            raise ValueError("poll_after_seconds must not exceed max_wait_seconds")
        return self

    @property
    def key(self) -> str:
        """Kafka record key and store key: ``{source}:{job_id}``, as the job's events."""
        return f"{self.source}:{self.job_id}"

    @property
    def poll_at(self) -> float:
        """Unix seconds of the first poll."""
        return self.submitted_at.timestamp() + self.poll_after_seconds

    @property
    def deadline(self) -> float:
        """Unix seconds past which the job counts as never finished."""
        return self.submitted_at.timestamp() + self.max_wait_seconds
