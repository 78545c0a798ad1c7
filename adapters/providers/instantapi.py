"""InstantAPI: HMAC-SHA256 hex of the raw body in ``X-InstantAPI-Signature``.

Body: ``{event_type: task.completed|task.failed, task_id, status, result, usage{cost}}``. Results
are mostly inline data (summaries, extractions) and stay in ``raw``; URLs in ``result`` become
outputs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from adapters.base import Normalized, ProviderInfo
from adapters.errors import NormalizationError
from adapters.primitives.payload import (
    collect_outputs,
    dig,
    map_status,
    opt_datetime,
    opt_number,
    opt_str,
    require_str,
)
from adapters.providers.hmac_body import HmacBodyAdapter
from schemas import JobError, JobMetrics, JobStatus, Output

EVENT_MAP = {
    "task.queued": JobStatus.QUEUED,
    "task.started": JobStatus.RUNNING,
    "task.completed": JobStatus.SUCCEEDED,
    "task.failed": JobStatus.FAILED,
    "task.canceled": JobStatus.CANCELED,
    "task.cancelled": JobStatus.CANCELED,
}


def _result_outputs(result: Any) -> tuple[Output, ...]:
    if not isinstance(result, dict):
        return collect_outputs(result) if isinstance(result, list | str) else ()
    for key in ("outputs", "items", "files"):
        if isinstance(result.get(key), list):
            return collect_outputs(result[key])
    return collect_outputs(result) if "url" in result else ()


class InstantAPIAdapter(HmacBodyAdapter):
    provider: ClassVar[str] = "instantapi"
    info: ClassVar[ProviderInfo | None] = ProviderInfo(
        title="InstantAPI",
        kind="job",
        scheme="HMAC-SHA256 hex of the body (`hmac-sha256-hex`)",
        headers="`X-InstantAPI-Signature`",
        delivery_id="none: source + job + status + sha256(body)",
        replay_window="as Abstrakt",
        retries="InstantAPI's own schedule",
        oracle="vectors from the provider's published example",
    )
    signature_header: ClassVar[str] = "X-InstantAPI-Signature"

    def map_payload(self, payload: Any) -> Normalized:
        if not isinstance(payload, dict):
            raise NormalizationError("unexpected_shape", "body is not a JSON object")
        event_type = require_str(payload, "event_type")
        status = map_status(event_type, EVENT_MAP, "event_type")
        result = payload.get("result")
        error = None
        if status is JobStatus.FAILED:
            err = dig(result, "error")
            error = JobError(
                code=opt_str(dig(err, "code")),
                message=opt_str(dig(err, "message")) or opt_str(err),
                details=err if isinstance(err, dict) else None,
            )
        occurred = None
        for key in ("completed_at", "timestamp", "created_at"):
            occurred = opt_datetime(payload.get(key))
            if occurred is not None:
                break
        return Normalized(
            job_id=require_str(payload, "task_id"),
            status=status,
            provider_event_type=event_type,
            outputs=_result_outputs(result) if status is JobStatus.SUCCEEDED else (),
            error=error,
            metrics=JobMetrics(cost=opt_number(dig(payload, "usage", "cost"))),
            occurred_at=occurred,
        )
