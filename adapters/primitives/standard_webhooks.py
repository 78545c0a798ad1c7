"""Standard Webhooks 1.0: ``v1`` (HMAC-SHA256) and ``v1a`` (Ed25519) over ``id.ts.body``.

Compatible with the reference libraries (same known-answer vectors) but stricter where they are
loose: a malformed entry never raises anything but ``VerificationError``, the timestamp must be
digits, and a header repeated with different values is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from adapters.base import NamedKey, NamedSecret
from adapters.errors import ConfigError, VerificationError
from adapters.primitives.encoding import b64decode_lenient_padding, b64decode_strict
from adapters.primitives.headers import Headers, require_header
from adapters.primitives.timestamps import check_window, parse_unix_seconds

SCHEME_V1 = "standard-webhooks-v1"
SCHEME_V1A = "standard-webhooks-v1a"

ID_HEADERS = ("webhook-id", "svix-id")
TIMESTAMP_HEADERS = ("webhook-timestamp", "svix-timestamp")
SIGNATURE_HEADERS = ("webhook-signature", "svix-signature")
SENSITIVE_HEADERS = frozenset({"webhook-signature", "svix-signature"})


class SecretStyle(Enum):
    """How a secret without the ``whsec_`` prefix is read.

    ``STANDARD``: base64, as the standardwebhooks and Svix libraries do.
    ``OPENAI``: raw UTF-8 bytes, as the OpenAI SDK does. Prefixed secrets are base64 either way.
    """

    STANDARD = "standard"
    OPENAI = "openai"


def hmac_key(secret: str, style: SecretStyle = SecretStyle.STANDARD) -> bytes:
    if secret.startswith("whsec_"):
        key = b64decode_lenient_padding(secret.removeprefix("whsec_"))
    elif style is SecretStyle.OPENAI:
        key = secret.encode()
    else:
        key = b64decode_lenient_padding(secret)
    if not key:
        raise ConfigError("invalid_secret", "secret is not whsec_ + base64")
    return key


def public_key(text: str) -> VerifyKey:
    raw = b64decode_lenient_padding(text.removeprefix("whpk_"))
    if raw is None or len(raw) != 32:
        raise ConfigError("invalid_public_key", "public key is not whpk_ + base64 of 32 bytes")
    return VerifyKey(raw)


def signing_key(text: str) -> SigningKey:
    raw = b64decode_lenient_padding(text.removeprefix("whsk_"))
    if raw is None or len(raw) not in (32, 64):
        raise ConfigError("invalid_signing_key", "signing key is not whsk_ + base64 seed")
    return SigningKey(raw[:32])


@dataclass(frozen=True, slots=True)
class Keyring:
    """The resolved keys of one source: HMAC secrets for v1, public keys for v1a."""

    hmac_keys: tuple[tuple[str, bytes], ...] = ()
    verify_keys: tuple[tuple[str, VerifyKey], ...] = field(default=())

    @classmethod
    def build(
        cls,
        secrets: Sequence[NamedSecret],
        public_keys: Sequence[NamedKey],
        style: SecretStyle = SecretStyle.STANDARD,
    ) -> Keyring:
        return cls(
            hmac_keys=tuple((s.id, hmac_key(s.value, style)) for s in secrets),
            verify_keys=tuple((k.id, public_key(k.value)) for k in public_keys),
        )


@dataclass(frozen=True, slots=True)
class SignedDelivery:
    msg_id: str
    timestamp: int
    scheme: str
    key_id: str


def signed_content(msg_id: str, timestamp: str, raw: bytes) -> bytes:
    return b"%s.%s.%s" % (msg_id.encode(), timestamp.encode(), raw)


def verify(
    raw: bytes, headers: Headers, now: float, keyring: Keyring, tolerance_seconds: int
) -> SignedDelivery:
    msg_id = require_header(headers, ID_HEADERS)
    ts_text = require_header(headers, TIMESTAMP_HEADERS)
    sig_header = require_header(headers, SIGNATURE_HEADERS)
    if "." in msg_id:
        # The spec forbids it: a dot would let id and timestamp trade characters.
        raise VerificationError("malformed_header", "webhook-id must not contain '.'")
    timestamp = parse_unix_seconds(ts_text, "webhook-timestamp")
    check_window(timestamp, now, tolerance_seconds)

    entries: list[tuple[str, str]] = []
    for entry in sig_header.split():
        version, sep, value = entry.partition(",")
        if sep:
            entries.append((version, value))
    if not entries:
        raise VerificationError("malformed_header", "webhook-signature has no version,value entry")

    # Signed content uses the timestamp text exactly as received (as the OpenAI SDK does).
    content = signed_content(msg_id, ts_text, raw)
    supported = False
    v1 = [v for ver, v in entries if ver == "v1"]
    if v1 and keyring.hmac_keys:
        supported = True
        given = [d for d in (b64decode_strict(v) for v in v1) if d is not None]
        for key_id, key in keyring.hmac_keys:
            expected = hmac.new(key, content, hashlib.sha256).digest()
            # Compare against every entry without short-circuiting on the entry list.
            if any(hmac.compare_digest(expected, g) for g in given):
                return SignedDelivery(msg_id, timestamp, SCHEME_V1, key_id)
    v1a = [v for ver, v in entries if ver == "v1a"]
    if v1a and keyring.verify_keys:
        supported = True
        sigs = [d for d in (b64decode_strict(v) for v in v1a) if d is not None and len(d) == 64]
        for key_id, vkey in keyring.verify_keys:
            for sig in sigs:
                try:
                    vkey.verify(content, sig)
                except BadSignatureError:
                    continue
                return SignedDelivery(msg_id, timestamp, SCHEME_V1A, key_id)
    if not supported:
        raise VerificationError(
            "unsupported_signature_version", "no signature of a version this source accepts"
        )
    raise VerificationError("signature_mismatch", "no configured key matches")


def sign_v1(secret: str, msg_id: str, timestamp: int, raw: bytes, style: SecretStyle) -> str:
    digest = hmac.new(
        hmac_key(secret, style), signed_content(msg_id, str(timestamp), raw), hashlib.sha256
    ).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign_v1a(key: SigningKey, msg_id: str, timestamp: int, raw: bytes) -> str:
    sig = key.sign(signed_content(msg_id, str(timestamp), raw)).signature
    return "v1a," + base64.b64encode(sig).decode()
