"""Deterministic event ids: the same delivery always yields the same id, on any replica."""

from __future__ import annotations

import hashlib

_VERSION = b"v1"


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256(_VERSION)
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        # Length-prefix each part so ("ab", "c") and ("a", "bc") cannot collide.
        h.update(len(data).to_bytes(4, "big"))
        h.update(data)
    return "evt_" + h.hexdigest()[:32]


def from_delivery(source: str, delivery_id: str) -> str:
    """For providers that send a delivery id stable across retries."""
    return _digest(b"delivery", source, delivery_id)


def from_content(source: str, job_id: str, status: str, body_sha256: bytes) -> str:
    """For providers with no delivery id: the same job state with the same body is one event."""
    return _digest(b"content", source, job_id, status, body_sha256)


def from_body(source: str, body_sha256: bytes) -> str:
    """For dead letters of providers without a delivery id: the body is all we have."""
    return _digest(b"body", source, body_sha256)


def from_passthrough(source: str, body_sha256: bytes) -> str:
    """For passthrough events of senders without a delivery id: the same body is one event."""
    return _digest(b"passthrough", source, body_sha256)
