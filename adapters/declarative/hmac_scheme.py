"""A configured HMAC scheme: parse the signature header, decode, compare in constant time.

Everything a sender varies is data (:class:`adapters.declarative.config.SchemeConfig`): the
algorithm, the encoding of the signature, how the header carries one or several signatures and
a timestamp, the literal prefix, how the secret becomes key bytes. Malformed input only ever
raises ``VerificationError`` with a reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from adapters.base import NamedSecret
from adapters.declarative.config import Algorithm, Encoding, SchemeConfig, SignatureFormat
from adapters.errors import ConfigError, VerificationError
from adapters.primitives.encoding import b64decode_lenient_padding, b64decode_strict, hexdecode

_DIGEST_SIZE = {"sha1": 20, "sha256": 32, "sha512": 64}
#: A header with more pairs than this is not a sender's; refuse it before doing any work.
MAX_PAIRS = 32


@dataclass(frozen=True, slots=True)
class ParsedHeader:
    signatures: tuple[str, ...]
    timestamp: str | None


def parse_signature_header(value: str, fmt: SignatureFormat | None, prefix: str) -> ParsedHeader:
    """The candidate signatures (prefix removed) and the timestamp pair, if any."""
    if fmt is None:
        if prefix and not value.startswith(prefix):
            raise VerificationError("malformed_header", f"signature must start with {prefix!r}")
        return ParsedHeader((value[len(prefix) :],), None)
    pieces = [p.strip() for p in value.split(fmt.pair_separator)]
    if len(pieces) > MAX_PAIRS:
        raise VerificationError("malformed_header", "too many pairs in the signature header")
    signatures: list[str] = []
    timestamps: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        key, sep, val = piece.partition(fmt.kv_separator)
        if not sep:
            raise VerificationError("malformed_header", "a pair in the signature header has no key")
        key = key.strip()
        val = val.strip()
        if key == fmt.signature_key:
            if prefix:
                if not val.startswith(prefix):
                    raise VerificationError(
                        "malformed_header", f"signature must start with {prefix!r}"
                    )
                val = val[len(prefix) :]
            signatures.append(val)
        elif fmt.timestamp_key is not None and key == fmt.timestamp_key:
            timestamps.append(val)
        # Other keys (Stripe's v0, a future version) are ignored, as the senders' libraries do.
    if len(set(timestamps)) > 1:
        raise VerificationError("malformed_header", "several different timestamps in one header")
    if not signatures:
        raise VerificationError(
            "unsupported_signature_version", f"no {fmt.signature_key!r} signature in the header"
        )
    return ParsedHeader(tuple(signatures), timestamps[0] if timestamps else None)


def decode_signature(text: str, encoding: Encoding) -> bytes | None:
    """The signature's bytes, or ``None``. Base64 must be canonical: unused trailing bits set
    differently would give a second spelling of one signature."""
    if encoding == "hex":
        return hexdecode(text)  # fromhex accepts either case
    if encoding == "base64":
        decoded = b64decode_strict(text)
        if decoded is None or base64.b64encode(decoded).decode() != text:
            return None
        return decoded
    if "+" in text or "/" in text:  # the standard alphabet is not base64url
        return None
    decoded = b64decode_lenient_padding(text, urlsafe=True)
    if decoded is None or encode_signature(decoded, "base64url") != text.rstrip("="):
        return None
    return decoded


def encode_signature(digest: bytes, encoding: Encoding) -> str:
    if encoding == "hex":
        return digest.hex()
    if encoding == "base64":
        return base64.b64encode(digest).decode()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def secret_key_bytes(secret: NamedSecret, config: SchemeConfig) -> bytes:
    """The key bytes of one configured secret; ``ConfigError`` names the secret, never its value."""
    text = secret.value.removeprefix(config.secret_prefix) if config.secret_prefix else secret.value
    key: bytes | None
    decoding = config.secret_encoding
    if decoding == "raw":
        key = text.encode()
    elif decoding == "base64":
        key = b64decode_lenient_padding(text)
    else:
        key = hexdecode(text)
    if not key:
        raise ConfigError(
            "invalid_secret",
            f"secret {secret.id!r} is not {config.secret_prefix}+{config.secret_encoding}",
        )
    return key


class HmacVerifier:
    """Compiled once per source: the decoded keys and the header grammar."""

    def __init__(self, config: SchemeConfig, secrets: Sequence[NamedSecret]) -> None:
        if not secrets:
            raise ConfigError("no_secret", "scheme.auth hmac needs at least one secret")
        self.algorithm: Algorithm = config.algorithm
        self.encoding: Encoding = config.encoding
        self.format = config.signature_format
        self.prefix = config.prefix
        self._size = _DIGEST_SIZE[config.algorithm]
        self._keys = tuple((s.id, secret_key_bytes(s, config)) for s in secrets)

    def parse(self, header_value: str) -> ParsedHeader:
        return parse_signature_header(header_value, self.format, self.prefix)

    def match(self, content: bytes, signatures: Sequence[str]) -> str:
        """The id of the secret whose HMAC over ``content`` equals one of ``signatures``."""
        given = [d for d in (decode_signature(s, self.encoding) for s in signatures) if d]
        given = [d for d in given if len(d) == self._size]
        if not given and self.format is None:
            # One signature, and it is not even the right shape: say so. In a list of several
            # (a rotation, future versions) an entry we cannot read is simply not a match.
            raise VerificationError(
                "malformed_header",
                f"signature is not {self._size} bytes of {self.encoding} ({self.algorithm})",
            )
        for key_id, key in self._keys:
            expected = hmac.new(key, content, self.algorithm).digest()
            # Compare against every candidate, without stopping at the first that differs.
            if sum(hmac.compare_digest(expected, g) for g in given):
                return key_id
        raise VerificationError("signature_mismatch", "no configured secret matches")

    def signature(self, content: bytes) -> str:
        """What the sender would put in the header for ``content``, with the first secret."""
        digest = hmac.new(self._keys[0][1], content, self.algorithm).digest()
        return self.prefix + encode_signature(digest, self.encoding)

    def header_value(self, content: bytes, timestamp: str | None) -> str:
        signature = self.signature(content)
        fmt = self.format
        if fmt is None:
            return signature
        pairs = []
        if fmt.timestamp_key is not None and timestamp is not None:
            pairs.append(f"{fmt.timestamp_key}{fmt.kv_separator}{timestamp}")
        pairs.append(f"{fmt.signature_key}{fmt.kv_separator}{signature}")
        return fmt.pair_separator.join(pairs)


def digest(algorithm: Algorithm, key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, getattr(hashlib, algorithm)).digest()
