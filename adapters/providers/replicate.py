"""Replicate: Standard Webhooks ``v1``; the body is the prediction (or training) object.

The body does not say which event fired (start, output, logs, completed): the status does. The
same prediction arrives once per event with a new ``webhook-id``, so each is its own job event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from adapters.base import AdapterOptions, Normalized, ProviderInfo, Verified
from adapters.errors import NormalizationError
from adapters.primitives.payload import (
    collect_outputs,
    dig,
    is_url,
    make_output,
    map_status,
    opt_datetime,
    opt_number,
    opt_str,
    require_str,
)
from adapters.providers.standard_webhooks import StandardWebhooksAdapter
from schemas import JobError, JobMetrics, JobStatus, Output

STATUS_MAP: dict[str, JobStatus] = {
    "starting": JobStatus.QUEUED,
    "processing": JobStatus.RUNNING,
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "canceled": JobStatus.CANCELED,
    # Listed in the JS client's types, undocumented: the run was stopped by the platform.
    "aborted": JobStatus.CANCELED,
}


def _outputs(output: Any) -> tuple[Output, ...]:
    if isinstance(output, Mapping):
        # Trainings ({"version", "weights"}) and models returning named files.
        return tuple(
            make_output(value, file_name=str(key)) for key, value in output.items() if is_url(value)
        )
    return collect_outputs(output)


class ReplicateAdapter(StandardWebhooksAdapter):
    provider: ClassVar[str] = "replicate"
    info: ClassVar[ProviderInfo | None] = ProviderInfo(
        title="Replicate",
        kind="job",
        scheme="Standard Webhooks `v1`",
        headers="`webhook-id`, `webhook-timestamp`, `webhook-signature`",
        delivery_id="`webhook-id` (one per event of a prediction)",
        replay_window="±300 s",
        retries="Replicate's own schedule",
        oracle="Standard Webhooks vectors",
    )
    Options: ClassVar[type[AdapterOptions]] = AdapterOptions

    def normalize(self, payload: Any, verified: Verified, now: float) -> Normalized:
        if not isinstance(payload, dict):
            raise NormalizationError("unexpected_shape", "prediction is not a JSON object")
        job_id = require_str(payload, "id")
        status_text = payload.get("status")
        status = map_status(status_text, STATUS_MAP)
        created = opt_datetime(payload.get("created_at"))
        started = opt_datetime(payload.get("started_at"))
        completed = opt_datetime(payload.get("completed_at"))
        queue_seconds = (
            max((started - created).total_seconds(), 0.0) if created and started else None
        )
        error_value = payload.get("error")
        error = None
        if error_value is not None:
            error = JobError(
                code=opt_str(dig(error_value, "code")),
                message=opt_str(error_value) or opt_str(dig(error_value, "message")),
                details=error_value if not isinstance(error_value, str) else None,
            )
        metrics = payload.get("metrics")
        return Normalized(
            job_id=job_id,
            status=status,
            provider_event_type=str(status_text),
            outputs=_outputs(payload.get("output")),
            error=error,
            metrics=JobMetrics(
                queue_seconds=queue_seconds,
                inference_seconds=opt_number(dig(metrics, "predict_time")),
                total_seconds=opt_number(dig(metrics, "total_time")),
            ),
            occurred_at=completed or started or created,
        )
