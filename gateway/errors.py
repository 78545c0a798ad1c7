"""The gateway's half of the error tree (see ``adapters.errors`` for the whole drawing)."""

from __future__ import annotations

from adapters.errors import (
    ConfigError,
    GatewayError,
    NormalizationError,
    TemporaryError,
    VerificationError,
)


class RequestError(GatewayError):
    """The HTTP request itself is wrong: each instance carries its own status."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.status = status  # type: ignore[misc]  # per-instance status on purpose


class TooManyFailures(RequestError):
    """The client is over its budget of failed verifications: 429 + ``Retry-After``, answered
    before its body is read or verified (``gateway/failure_budget.py``)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(429, "too_many_failures", "client over its failed-verification budget")
        self.retry_after = retry_after


class SinkUnavailable(TemporaryError):
    """The sink could not durably accept the event in time: 503 + Retry-After."""


class DedupeUnavailable(TemporaryError):
    """The shared dedupe store cannot say whether a delivery is new: 503 + Retry-After.

    ``dedupe_unavailable``: the store failed and ``dedupe.on_store_error`` is ``reject``;
    ``delivery_in_progress``: another replica's copy was still being written when the wait
    (the publish deadline) ran out.
    """


class ExpectationRefused(GatewayError):
    """A job expectation that cannot be kept: malformed, or for a source that is not
    reconciled. Answered 422 by the admin endpoint, dead-lettered from the topic."""


__all__ = [
    "ConfigError",
    "DedupeUnavailable",
    "ExpectationRefused",
    "GatewayError",
    "NormalizationError",
    "RequestError",
    "SinkUnavailable",
    "TemporaryError",
    "TooManyFailures",
    "VerificationError",
]
