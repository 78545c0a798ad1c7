"""Abstrakt: HMAC-SHA256 hex of the raw body in ``X-Abstrakt-Signature``.

Two payload generations are in the wild and both are accepted:

* older: ``{request_id, status: completed|failed, result.items[], metrics{inference_time,
  queue_time}, timestamp, error{message}}``;
* v1: ``{job_id, status: succeeded|failed, output{type, items[]}, error{code, message},
  credits_used, completed_at}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from adapters.base import Normalized, ProviderInfo
from adapters.errors import NormalizationError
from adapters.primitives.payload import (
    collect_outputs,
    dig,
    make_output,
    map_status,
    opt_datetime,
    opt_number,
    opt_str,
)
from adapters.providers.hmac_body import HmacBodyAdapter
from schemas import JobError, JobMetrics, JobStatus, Output

STATUS_MAP = {
    "queued": JobStatus.QUEUED,
    "processing": JobStatus.RUNNING,
    "running": JobStatus.RUNNING,
    "completed": JobStatus.SUCCEEDED,
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "canceled": JobStatus.CANCELED,
    "cancelled": JobStatus.CANCELED,
}


def _items(items: Any, kind_hint: Any) -> tuple[Output, ...]:
    if not isinstance(items, list):
        return ()
    outputs: list[Output] = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            outputs.append(
                make_output(
                    item["url"],
                    content_type=item.get("content_type"),
                    kind_hint=item.get("type") or kind_hint,
                    file_name=item.get("file_name"),
                    size_bytes=item.get("file_size"),
                    width=item.get("width"),
                    height=item.get("height"),
                )
            )
        else:
            outputs.extend(collect_outputs(item))
    return tuple(outputs)


class AbstraktAdapter(HmacBodyAdapter):
    provider: ClassVar[str] = "abstrakt"
    info: ClassVar[ProviderInfo | None] = ProviderInfo(
        title="Abstrakt",
        kind="job",
        scheme="HMAC-SHA256 hex of the body (`hmac-sha256-hex`)",
        headers="`X-Abstrakt-Signature`",
        delivery_id="none: source + job + status + sha256(body)",
        replay_window="no signed time: a body timestamp older than `max_age_seconds` is refused",
        retries="Abstrakt's own schedule",
        oracle="vectors from the provider's published example",
    )
    signature_header: ClassVar[str] = "X-Abstrakt-Signature"

    def map_payload(self, payload: Any) -> Normalized:
        if not isinstance(payload, dict):
            raise NormalizationError("unexpected_shape", "body is not a JSON object")
        job_id = opt_str(payload.get("job_id")) or opt_str(payload.get("request_id"))
        if job_id is None:
            raise NormalizationError("missing_field", "neither job_id nor request_id is present")
        status_text = payload.get("status")
        status = map_status(status_text, STATUS_MAP)
        error_value = payload.get("error")
        error = None
        if isinstance(error_value, dict | str) and (error_value or status is JobStatus.FAILED):
            error = JobError(
                code=opt_str(dig(error_value, "code")),
                message=opt_str(dig(error_value, "message")) or opt_str(error_value),
                details=error_value if isinstance(error_value, dict) else None,
            )
        if "output" in payload:  # v1
            output = payload.get("output")
            outputs = _items(dig(output, "items"), dig(output, "type"))
            occurred = opt_datetime(payload.get("completed_at"))
            metrics = JobMetrics(credits=opt_number(payload.get("credits_used")))
        else:  # older generation
            outputs = _items(dig(payload, "result", "items"), None)
            occurred = opt_datetime(payload.get("timestamp")) or opt_datetime(
                payload.get("completed_at")
            )
            inference = opt_number(dig(payload, "metrics", "inference_time"))
            queue = opt_number(dig(payload, "metrics", "queue_time"))
            metrics = JobMetrics(
                inference_seconds=inference,
                queue_seconds=queue,
                total_seconds=(inference + queue)
                if inference is not None and queue is not None
                else None,
                credits=opt_number(payload.get("credits_used")),
            )
        return Normalized(
            job_id=job_id,
            status=status,
            provider_event_type=str(status_text),
            outputs=outputs,
            error=error,
            metrics=metrics,
            occurred_at=occurred,
        )
