"""A delivery that was authentic but could not be turned into a job event.

It is acknowledged to the provider (so it stops retrying) and kept, raw, for a human or a replay
tool. ``raw_body_b64`` holds the exact bytes, because a body that failed to parse cannot be
embedded as JSON.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.job_event import Delivery


class DeadLetter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal["1"] = "1"
    event_id: str = Field(description="Deterministic id, as for job events; dedupe on it.")
    source: str
    provider: str
    reason: str = Field(description="Short machine-readable reason, e.g. invalid_json.")
    detail: str = Field(description="Human-readable explanation (never contains secrets).")
    received_at: AwareDatetime
    delivery: Delivery
    headers: dict[str, str] = Field(
        description="Request headers that help diagnose, with auth and signature headers removed."
    )
    raw_body_b64: str = Field(description="The exact request body, base64.")

    @property
    def partition_key(self) -> str:
        return f"{self.source}:{self.event_id}"
