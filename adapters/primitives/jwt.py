"""Compact JWS tokens (JWTs), split without trusting them.

:func:`split_token` decodes the header only, which is what picking a key needs; the claims stay
an opaque segment until the caller has verified the signature and calls :func:`claims_of`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from adapters.errors import VerificationError
from adapters.primitives.encoding import b64decode_lenient_padding

#: Google's ID tokens are about 1 KB; aiohttp refuses header lines over 8 KB anyway.
MAX_TOKEN_CHARS = 8192
_SEGMENT = r"[A-Za-z0-9_-]+"
_COMPACT = re.compile(rf"({_SEGMENT})\.({_SEGMENT})\.({_SEGMENT})")


@dataclass(frozen=True, slots=True)
class Token:
    """A token's decoded header, the bytes its signature covers, and the undecoded claims."""

    header: Mapping[str, Any]
    signing_input: bytes = field(repr=False)
    signature: bytes = field(repr=False)
    claims_segment: str = field(repr=False)


def split_token(text: str) -> Token:
    """The parts of a compact JWS; ``malformed_header`` for anything else."""
    match = _COMPACT.fullmatch(text) if len(text) <= MAX_TOKEN_CHARS else None
    if match is None:
        raise VerificationError("malformed_header", "the bearer token is not a compact JWT")
    header_segment, claims_segment, signature_segment = match.groups()
    header = _json_object(header_segment)
    signature = b64decode_lenient_padding(signature_segment, urlsafe=True)
    if header is None or not signature:
        raise VerificationError("malformed_header", "the bearer token's header is not readable")
    return Token(
        header=header,
        signing_input=f"{header_segment}.{claims_segment}".encode(),
        signature=signature,
        claims_segment=claims_segment,
    )


def claims_of(token: Token) -> dict[str, Any]:
    """The claims; call only after the signature over ``signing_input`` has been verified."""
    claims = _json_object(token.claims_segment)
    if claims is None:
        raise VerificationError("malformed_token", "the token's claims are not a JSON object")
    return claims


def _json_object(segment: str) -> dict[str, Any] | None:
    raw = b64decode_lenient_padding(segment, urlsafe=True)
    if raw is None:
        return None
    try:
        value: Any = orjson.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
