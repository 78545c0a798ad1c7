"""Standard Webhooks senders (``v1`` HMAC and ``v1a`` Ed25519), with a configurable normalizer.

The generic ``standard-webhooks`` provider reads the envelope the spec recommends,
``{"type": ..., "timestamp": ..., "data": {...}}``; every path and the status table can be
changed per source, so most Standard Webhooks senders need configuration, not code.
Replicate and OpenAI subclass it with their own normalizers.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from adapters.base import (
    NO_REQUEST,
    Adapter,
    AdapterOptions,
    AdapterServices,
    Normalized,
    ProviderInfo,
    RequestMeta,
    SourceSpec,
    Verified,
    first_secret,
)
from adapters.errors import ConfigError, NormalizationError
from adapters.primitives import standard_webhooks as sw
from adapters.primitives.headers import Headers
from adapters.primitives.payload import (
    collect_outputs,
    dig,
    map_status,
    opt_datetime,
    opt_str,
)
from adapters.testing_keys import V1A_TEST_SIGNING_KEY
from schemas import JobError, JobMetrics, JobStatus

DEFAULT_STATUS_MAP: dict[str, JobStatus] = {
    **dict.fromkeys(("queued", "pending", "starting", "created", "submitted"), JobStatus.QUEUED),
    **dict.fromkeys(("running", "processing", "in_progress", "started"), JobStatus.RUNNING),
    **dict.fromkeys(("succeeded", "completed", "success", "done", "finished"), JobStatus.SUCCEEDED),
    **dict.fromkeys(("failed", "error", "errored", "expired"), JobStatus.FAILED),
    **dict.fromkeys(("canceled", "cancelled", "aborted"), JobStatus.CANCELED),
}


class StandardWebhooksOptions(AdapterOptions):
    """Dotted paths into the body; the status falls back to the last part of the event type."""

    job_id_path: str = "data.id"
    status_path: str = "data.status"
    event_type_path: str = "type"
    occurred_at_path: str = "timestamp"
    outputs_path: str = "data.output"
    error_path: str = "data.error"
    status_map: dict[str, JobStatus] = Field(default_factory=lambda: dict(DEFAULT_STATUS_MAP))


def _path(payload: Any, dotted: str) -> Any:
    return dig(payload, *dotted.split(".")) if dotted else None


class StandardWebhooksAdapter(Adapter):
    provider: ClassVar[str] = "standard-webhooks"
    info: ClassVar[ProviderInfo | None] = ProviderInfo(
        title="Standard Webhooks (any sender)",
        kind="job",
        scheme="Standard Webhooks `v1` HMAC-SHA256 base64 and `v1a` Ed25519",
        headers="`webhook-id`, `webhook-timestamp`, `webhook-signature` (or `svix-*`)",
        delivery_id="`webhook-id`",
        replay_window="±300 s",
        retries="the sender's",
        oracle="official Standard Webhooks vectors",
        notes="configurable paths and status table",
    )
    Options: ClassVar[type[AdapterOptions]] = StandardWebhooksOptions
    sensitive_headers = sw.SENSITIVE_HEADERS
    secret_style: ClassVar[sw.SecretStyle] = sw.SecretStyle.STANDARD

    def __init__(self, spec: SourceSpec, services: AdapterServices | None = None) -> None:
        super().__init__(spec, services)
        self.keyring = sw.Keyring.build(spec.secrets, spec.public_keys, self.secret_style)
        if not self.keyring.hmac_keys and not self.keyring.verify_keys:
            raise ConfigError("no_keys", f"source {spec.name!r} has no secret or key")

    async def verify(
        self, raw: bytes, headers: Headers, now: float, request: RequestMeta = NO_REQUEST
    ) -> Verified:
        signed = sw.verify(raw, headers, now, self.keyring, self.spec.tolerance_seconds)
        return Verified(
            scheme=signed.scheme,
            key_id=signed.key_id,
            delivery_id=signed.msg_id,
            signed_at=signed.timestamp,
        )

    def normalize(self, payload: Any, verified: Verified, now: float) -> Normalized:
        opts: StandardWebhooksOptions = self.options  # type: ignore[assignment]
        if not isinstance(payload, dict):
            raise NormalizationError("unexpected_shape", "body is not a JSON object")
        job_id = opt_str(_path(payload, opts.job_id_path))
        if job_id is None:
            raise NormalizationError("missing_field", f"{opts.job_id_path} is missing")
        event_type = opt_str(_path(payload, opts.event_type_path))
        status_value = _path(payload, opts.status_path)
        if status_value is None and event_type:
            status_value = event_type.rsplit(".", 1)[-1]
        status = map_status(status_value, opts.status_map)
        error_value = _path(payload, opts.error_path)
        error = None
        if error_value is not None:
            error = JobError(
                code=opt_str(dig(error_value, "code")),
                message=opt_str(dig(error_value, "message")) or opt_str(error_value),
                details=error_value,
            )
        return Normalized(
            job_id=job_id,
            status=status,
            provider_event_type=event_type or opt_str(status_value),
            outputs=collect_outputs(_path(payload, opts.outputs_path)),
            error=error,
            metrics=JobMetrics(),
            occurred_at=opt_datetime(_path(payload, opts.occurred_at_path)),
        )

    def sign(self, raw: bytes, now: int, *, delivery_id: str) -> dict[str, str]:
        if self.spec.secrets:
            signature = sw.sign_v1(
                first_secret(self.spec).value, delivery_id, now, raw, self.secret_style
            )
        else:
            signature = sw.sign_v1a(V1A_TEST_SIGNING_KEY, delivery_id, now, raw)
        return {
            "webhook-id": delivery_id,
            "webhook-timestamp": str(now),
            "webhook-signature": signature,
        }
