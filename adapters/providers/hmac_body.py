"""Providers that sign only the raw body with HMAC-SHA256 hex, in one header.

Nothing signed says *when*, so a captured delivery could be replayed forever. Two defences:
deliveries are deduplicated by event id, and a body whose own timestamp is older than
``max_age_seconds`` (or further than the tolerance in the future) is refused.
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any, ClassVar

from adapters.base import (
    NO_REQUEST,
    Adapter,
    AdapterOptions,
    AdapterServices,
    Normalized,
    RequestMeta,
    SourceSpec,
    Verified,
    first_secret,
)
from adapters.errors import VerificationError
from adapters.primitives import hmac_body
from adapters.primitives.headers import Headers, require_header


class HmacBodyOptions(AdapterOptions):
    #: Refuse a body whose own timestamp is older than this (seconds). 0 disables the check.
    max_age_seconds: int = 24 * 3600


class HmacBodyAdapter(Adapter):
    """Base for body-only HMAC providers: subclasses name the header and map the payload."""

    signature_header: ClassVar[str]
    Options: ClassVar[type[AdapterOptions]] = HmacBodyOptions

    def __init__(self, spec: SourceSpec, services: AdapterServices | None = None) -> None:
        super().__init__(spec, services)
        first_secret(spec)  # no secret: nothing could ever verify, refuse the configuration

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.sensitive_headers = frozenset({cls.signature_header.lower()})

    async def verify(
        self, raw: bytes, headers: Headers, now: float, request: RequestMeta = NO_REQUEST
    ) -> Verified:
        signature = require_header(headers, (self.signature_header,))
        key_id = hmac_body.verify_hex(raw, signature, self.spec.secrets)
        return Verified(scheme=hmac_body.SCHEME, key_id=key_id, delivery_id=None)

    def check_age(self, occurred_at: datetime | None, now: float) -> None:
        opts: HmacBodyOptions = self.options  # type: ignore[assignment]
        if occurred_at is None or opts.max_age_seconds <= 0:
            return
        age = now - occurred_at.timestamp()
        if age > opts.max_age_seconds or age < -self.spec.tolerance_seconds:
            raise VerificationError("timestamp_out_of_window", "body timestamp outside max age")

    def finish(self, normalized: Normalized, now: float) -> Normalized:
        self.check_age(normalized.occurred_at, now)
        return normalized

    def sign(self, raw: bytes, now: int, *, delivery_id: str) -> dict[str, str]:
        return {self.signature_header: hmac_body.sign_hex(first_secret(self.spec).value, raw)}

    def normalize(self, payload: Any, verified: Verified, now: float) -> Normalized:
        return self.finish(self.map_payload(payload), now)

    @abc.abstractmethod
    def map_payload(self, payload: Any) -> Normalized:
        """The provider's own mapping of its body to job facts."""
