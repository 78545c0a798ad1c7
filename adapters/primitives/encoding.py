"""Decoders that turn every malformed input into ``None`` or our own error, never a stray one."""

from __future__ import annotations

import base64
import binascii


def b64decode_lenient_padding(text: str, *, urlsafe: bool = False) -> bytes | None:
    """Decode base64 whose ``=`` padding may be missing (JWK ``x`` values, unpadded secrets).

    Characters outside the alphabet are an error, not silently dropped as ``b64decode`` does by
    default: a signature with junk in it must not decode to something that verifies.
    """
    stripped = text.rstrip("=")
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        if urlsafe:
            padded = padded.replace("-", "+").replace("_", "/")
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def b64decode_strict(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def hexdecode(text: str) -> bytes | None:
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None
