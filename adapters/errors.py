"""One error tree for everything that can go wrong with a delivery.

::

    GatewayError                      status  reason (metric label, ``error`` field of the answer)
    ├── VerificationError             401     missing_header | duplicate_header | malformed_header
    │                                         | timestamp_out_of_window | signature_mismatch
    │                                         | unsupported_signature_version | unknown_key
    │                                         | user_id_mismatch | request_id_mismatch
    │                                         | SNS: malformed_message | bad_certificate_url
    │                                         | invalid_certificate | topic_not_allowed
    │                                         | message_type_mismatch | bad_subscribe_url
    │                                         | Pub/Sub: unsupported_algorithm | malformed_token
    │                                         | issuer_mismatch | audience_mismatch
    │                                         | token_expired | token_not_yet_valid
    │                                         | email_not_verified | email_not_allowed
    ├── NormalizationError            200     invalid_json | unexpected_shape | unknown_status ...
    │                                         (kept as a dead-letter record, acknowledged)
    ├── RequestError (gateway)        404 unknown_source · 405 · 413 body_too_large · 415 ...
    │   └── TooManyFailures (gateway) 429     too_many_failures (+ Retry-After)
    └── TemporaryError                503     keys_unavailable | subscribe_failed
        ├── SinkUnavailable (gateway) 503     sink_unavailable | sink_timeout | shutting_down
        └── DedupeUnavailable (gw)    503     dedupe_unavailable | delivery_in_progress

Catch ``GatewayError`` broadly and recover narrowly. Verification code converts every
``ValueError``, ``binascii.Error``, ``KeyError`` or ``TypeError`` it could meet into a
``VerificationError`` with a reason, so nothing else ever crosses the pipeline.

Messages are for logs and are safe to show: they never contain a secret, a signature or a body.
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    status: ClassVar[int] = 500

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class VerificationError(GatewayError):
    """The delivery is not provably from the provider. Answered 401 with the reason only."""

    status = 401


class NormalizationError(GatewayError):
    """Authentic, but not a shape we can map. Kept as a dead letter and acknowledged."""

    status = 200


class TemporaryError(GatewayError):
    """We cannot decide right now (keys or sink unreachable): 503, the provider retries later."""

    status = 503


class ConfigError(GatewayError):
    """A source's configuration cannot work (bad secret encoding, missing key...)."""

    status = 500
