"""OpenAI: Standard Webhooks ``v1``; thin events ``{id, object, created_at, type, data: {id}}``.

The job id is ``data.id`` (``resp_``, ``batch_``, ``ftjob_``, ``evalrun_``). Payloads carry no
outputs or error details: consumers fetch the resource by id. Event types outside the four job
families (e.g. ``realtime.call.incoming``) are not job events and become dead letters.

A secret without the ``whsec_`` prefix is used as raw UTF-8, exactly as OpenAI's SDK does.
"""

from __future__ import annotations

from typing import Any, ClassVar

from adapters.base import AdapterOptions, Normalized, ProviderInfo, Verified
from adapters.errors import NormalizationError
from adapters.primitives import standard_webhooks as sw
from adapters.primitives.payload import opt_datetime, require_str
from adapters.providers.standard_webhooks import StandardWebhooksAdapter
from schemas import JobError, JobStatus

FAMILIES = ("response.", "batch.", "fine_tuning.job.", "eval.run.")
OUTCOMES: dict[str, JobStatus] = {
    "completed": JobStatus.SUCCEEDED,
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "expired": JobStatus.FAILED,
    "incomplete": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELED,
    "canceled": JobStatus.CANCELED,  # eval.run.canceled is spelled with one "l"
}


class OpenAIAdapter(StandardWebhooksAdapter):
    provider: ClassVar[str] = "openai"
    info: ClassVar[ProviderInfo | None] = ProviderInfo(
        title="OpenAI",
        kind="job",
        scheme="Standard Webhooks `v1`; a secret without `whsec_` is raw UTF-8, as in OpenAI's SDK",
        headers="`webhook-id`, `webhook-timestamp`, `webhook-signature`",
        delivery_id="`webhook-id`",
        replay_window="±300 s",
        retries="up to 72 h",
        oracle="official OpenAI SDK test vectors",
    )
    Options: ClassVar[type[AdapterOptions]] = AdapterOptions
    secret_style: ClassVar[sw.SecretStyle] = sw.SecretStyle.OPENAI

    def normalize(self, payload: Any, verified: Verified, now: float) -> Normalized:
        if not isinstance(payload, dict):
            raise NormalizationError("unexpected_shape", "event is not a JSON object")
        event_type = require_str(payload, "type")
        family = next((f for f in FAMILIES if event_type.startswith(f)), None)
        outcome = event_type[len(family) :] if family else ""
        if family is None or outcome not in OUTCOMES:
            raise NormalizationError("unsupported_event_type", "not a job lifecycle event")
        status = OUTCOMES[outcome]
        error = None
        if status is JobStatus.FAILED:
            error = JobError(code=outcome, message=None, details=None)
        return Normalized(
            job_id=require_str(payload, "data", "id"),
            status=status,
            provider_event_type=event_type,
            error=error,
            occurred_at=opt_datetime(payload.get("created_at")),
        )
