"""Version 1 of the canonical webhook event: a verified delivery that is not a job.

Senders such as Stripe, GitHub or Slack notify about things that have no job lifecycle. The
gateway still verifies them on their exact bytes, deduplicates them and stamps what it proved;
consumers get one envelope for every such sender, with the provider's body untouched in ``raw``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.job_event import Delivery

WEBHOOK_SCHEMA_VERSION: Literal["1"] = "1"


class WebhookEvent(BaseModel):
    """A provider's notification, verified and passed through as it came."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal["1"] = WEBHOOK_SCHEMA_VERSION
    event_id: str = Field(
        description=(
            "Deterministic: the same delivery always yields the same id. Consumers dedupe on it."
        ),
    )
    source: str = Field(description="Configured source name (the URL path segment).")
    provider: str = Field(description="Adapter or preset that verified the delivery.")
    event_type: str | None = Field(
        default=None, description="Provider's own event type (e.g. invoice.paid), when it says."
    )
    delivery: Delivery
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When the provider says the event happened, if it says."
    )
    received_at: AwareDatetime
    verified_at: AwareDatetime
    raw: Any = Field(
        description=(
            "The provider's body, parsed: JSON as it came, a form body as an object of its "
            "fields (a repeated field as a list)."
        )
    )

    @property
    def partition_key(self) -> str:
        """Kafka record key: the provider's delivery id, else the event id."""
        return f"{self.source}:{self.delivery.id or self.event_id}"
