"""fal.ai: Ed25519 over ``request_id\\nuser_id\\ntimestamp\\nsha256hex(body)``, hex signature.

Keys come from fal's JWKS (cached at most 24 h, refetched once when nothing matches) and/or a
static list. fal sends no separate delivery id; its ``request_id`` is stable across retries of
the one completion webhook a request gets, so it serves as the delivery id.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from typing import Any, ClassVar

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
)
from adapters.errors import NormalizationError, VerificationError
from adapters.primitives.encoding import hexdecode
from adapters.primitives.headers import Headers, require_header
from adapters.primitives.jwks import Ed25519KeySet
from adapters.primitives.payload import (
    MAX_OUTPUTS,
    dig,
    opt_number,
    opt_str,
    require_str,
    walk_file_objects,
)
from adapters.primitives.timestamps import check_window, parse_unix_seconds
from adapters.testing_keys import FAL_TEST_SIGNING_KEY
from schemas import JobError, JobMetrics, JobStatus

SCHEME = "ed25519-jwks"
H_REQUEST_ID = "x-fal-webhook-request-id"
H_USER_ID = "x-fal-webhook-user-id"
H_TIMESTAMP = "x-fal-webhook-timestamp"
H_SIGNATURE = "x-fal-webhook-signature"

DEFAULT_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"


class FalOptions(AdapterOptions):
    #: JWKS documents to trust (fal has served it from rest.alpha.fal.ai and rest.fal.ai).
    jwks_urls: tuple[str, ...] = ()
    jwks_max_age_seconds: int = 24 * 3600
    jwks_min_refresh_seconds: float = 60.0
    #: When set, deliveries for any other fal account are refused.
    user_id: str | None = None


class FalAdapter(Adapter):
    provider: ClassVar[str] = "fal"
    info: ClassVar[ProviderInfo | None] = ProviderInfo(
        title="fal.ai",
        kind="job",
        scheme="Ed25519 over `request_id\\nuser_id\\nts\\nsha256hex(body)`, hex (`ed25519-jwks`)",
        headers="`X-Fal-Webhook-Request-Id`, `-User-Id`, `-Timestamp`, `-Signature`",
        delivery_id="`request_id` header (must equal the body's)",
        replay_window="±300 s (`tolerance_seconds`)",
        retries="fal's own schedule",
        oracle="official vectors (static key and JWKS)",
        notes="keys from fal's JWKS, cached at most 24 h, refetched once on an unknown key",
    )
    Options = FalOptions
    sensitive_headers = frozenset({H_SIGNATURE})

    def __init__(self, spec: SourceSpec, services: AdapterServices | None = None) -> None:
        super().__init__(spec, services)
        opts: FalOptions = self.options  # type: ignore[assignment]
        self.opts = opts
        self.keys = Ed25519KeySet(
            spec.public_keys,
            opts.jwks_urls,
            self.services.fetcher,
            max_age_seconds=opts.jwks_max_age_seconds,
            min_refresh_seconds=opts.jwks_min_refresh_seconds,
            clock=time.monotonic,
            on_refresh=self.services.on_key_refresh,
        )

    async def start(self) -> None:
        if self.keys.uses_jwks:
            await self.keys.refresh(force=True)

    def ready(self) -> bool:
        return self.keys.loaded()

    async def verify(
        self, raw: bytes, headers: Headers, now: float, request: RequestMeta = NO_REQUEST
    ) -> Verified:
        request_id = require_header(headers, (H_REQUEST_ID,))
        user_id = require_header(headers, (H_USER_ID,))
        ts_text = require_header(headers, (H_TIMESTAMP,))
        sig_text = require_header(headers, (H_SIGNATURE,))
        if "\n" in request_id or "\n" in user_id:
            raise VerificationError("malformed_header", "fal ids must be one line")
        timestamp = parse_unix_seconds(ts_text, H_TIMESTAMP)
        check_window(timestamp, now, self.spec.tolerance_seconds)
        signature = hexdecode(sig_text)
        if signature is None or len(signature) != 64:
            raise VerificationError("malformed_header", f"{H_SIGNATURE} is not 128 hex digits")
        message = _message(request_id, user_id, ts_text, raw)
        match = await self.keys.verify(message, signature)
        if match is None:
            raise VerificationError("signature_mismatch", "no fal key verifies the signature")
        # Only after the signature holds: the user id is signed, so this check is meaningful.
        if self.opts.user_id is not None and user_id != self.opts.user_id:
            raise VerificationError("user_id_mismatch", "delivery is for another fal account")
        return Verified(
            scheme=SCHEME,
            key_id=match.key_id,
            delivery_id=request_id,
            signed_at=timestamp,
            bound={"request_id": request_id, "user_id": user_id},
        )

    def normalize(self, payload: Any, verified: Verified, now: float) -> Normalized:
        if not isinstance(payload, dict):
            raise NormalizationError("unexpected_shape", "fal body is not a JSON object")
        request_id = require_str(payload, "request_id")
        if request_id != verified.bound.get("request_id"):
            raise VerificationError("request_id_mismatch", "body request_id differs from header")
        status_text = payload.get("status")
        body = payload.get("payload")
        error: JobError | None = None
        if status_text == "OK":
            status = JobStatus.SUCCEEDED
            if body is None and payload.get("payload_error") is not None:
                # The job succeeded but fal could not serialize its result: the consumer must
                # fetch it from the queue API. Say so instead of pretending there is no output.
                error = JobError(
                    code="payload_error",
                    message=opt_str(payload.get("payload_error")),
                    details={"fetch": "GET the request's result from the fal queue API"},
                )
        elif status_text == "ERROR":
            status = JobStatus.FAILED
            detail = dig(body, "detail")
            first = detail[0] if isinstance(detail, list) and detail else None
            error = JobError(
                code=opt_str(dig(first, "type")),
                message=opt_str(payload.get("error")),
                details=body,
            )
        else:
            raise NormalizationError("unknown_status", "fal status is neither OK nor ERROR")
        outputs = (
            tuple(itertools.islice(walk_file_objects(body), MAX_OUTPUTS))
            if status is JobStatus.SUCCEEDED
            else ()
        )
        timings = dig(body, "timings")
        return Normalized(
            job_id=request_id,
            status=status,
            provider_event_type=status_text,
            outputs=outputs,
            error=error,
            metrics=JobMetrics(inference_seconds=opt_number(dig(timings, "inference"))),
            occurred_at=None,
        )

    def sign(self, raw: bytes, now: int, *, delivery_id: str) -> dict[str, str]:
        user_id = self.opts.user_id or "local-test-user"
        message = _message(delivery_id, user_id, str(now), raw)
        return {
            "X-Fal-Webhook-Request-Id": delivery_id,
            "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": str(now),
            "X-Fal-Webhook-Signature": FAL_TEST_SIGNING_KEY.sign(message).signature.hex(),
        }


def _message(request_id: str, user_id: str, timestamp: str, raw: bytes) -> bytes:
    digest = hashlib.sha256(raw).hexdigest()
    return f"{request_id}\n{user_id}\n{timestamp}\n{digest}".encode()
