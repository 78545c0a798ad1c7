"""HMAC-SHA256 over the raw body, hex-encoded, in one header (Abstrakt, InstantAPI, HeyGen...).

The secret is the configured string's UTF-8 bytes. Every configured secret is tried, so a
rotation can keep the old and the new secret live at once; the first that matches names the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from adapters.base import NamedSecret
from adapters.errors import VerificationError
from adapters.primitives.encoding import hexdecode

SCHEME = "hmac-sha256-hex"


def sign_hex(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def verify_hex(
    raw: bytes, signature: str, secrets: Sequence[NamedSecret], *, prefix: str = ""
) -> str:
    """Return the id of the secret whose HMAC equals ``signature``, else raise."""
    if prefix:
        if not signature.startswith(prefix):
            raise VerificationError("malformed_header", f"signature must start with {prefix!r}")
        signature = signature[len(prefix) :]
    given = hexdecode(signature)
    if given is None or len(given) != hashlib.sha256().digest_size:
        raise VerificationError("malformed_header", "signature is not 64 hex digits")
    for secret in secrets:
        expected = hmac.new(secret.value.encode(), raw, hashlib.sha256).digest()
        if hmac.compare_digest(expected, given):
            return secret.id
    raise VerificationError("signature_mismatch", "no configured secret matches")
