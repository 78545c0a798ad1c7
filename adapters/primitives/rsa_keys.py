"""RSA public keys from PEM certificates, PEM public keys and JWKs, and PKCS#1 v1.5 checks.

Hostile input never raises cryptography's own errors here: a key that cannot be read is
``None`` and a signature that does not hold is ``False``, so callers turn them into reasons.
Keys under 2048 bits are refused: neither AWS nor Google signs with anything smaller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from adapters.primitives.encoding import b64decode_lenient_padding

MIN_RSA_BITS = 2048
#: A 16384-bit key is far beyond what anyone signs webhooks with; bigger only costs CPU.
MAX_RSA_BITS = 16384

RSAPublicKey = rsa.RSAPublicKey


def rsa_key_from_pem(data: bytes) -> RSAPublicKey | None:
    """The RSA key of a PEM X.509 certificate (the first, if several) or a PEM public key."""
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key: Any = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return _usable(key)


def rsa_key_from_jwk(jwk: Mapping[str, Any]) -> RSAPublicKey | None:
    """An RSA key from a JWK's ``n`` and ``e`` (base64url big-endian integers)."""
    if jwk.get("kty") != "RSA":
        return None
    n_text, e_text = jwk.get("n"), jwk.get("e")
    if not isinstance(n_text, str) or not isinstance(e_text, str):
        return None
    n_raw = b64decode_lenient_padding(n_text, urlsafe=True)
    e_raw = b64decode_lenient_padding(e_text, urlsafe=True)
    if not n_raw or not e_raw:
        return None
    try:
        key = rsa.RSAPublicNumbers(
            int.from_bytes(e_raw, "big"), int.from_bytes(n_raw, "big")
        ).public_key()
    except (ValueError, UnsupportedAlgorithm):
        return None
    return _usable(key)


def _usable(key: Any) -> RSAPublicKey | None:
    if not isinstance(key, rsa.RSAPublicKey):
        return None
    if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
        return None
    return key


def pkcs1v15_verify(
    key: RSAPublicKey, signature: bytes, message: bytes, algorithm: hashes.HashAlgorithm
) -> bool:
    """Whether ``signature`` is ``key``'s RSASSA-PKCS1-v1_5 signature of ``message``."""
    try:
        key.verify(signature, message, padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError):
        return False
    return True
