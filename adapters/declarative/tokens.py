"""Schemes without a signature: a shared token in a header, HTTP Basic, the query, the path or
the body. Each compares in constant time against every configured secret.

Some senders echo the token inside the body as well (PiAPI's ``webhook_config.secret``, a
Deepgram ``callback_secret``): :func:`redact_tokens` removes it before the body is published.

These prove only that the caller knows the token; nothing binds it to the body, and a token in
a URL ends up in the sender's dashboard and in proxy logs. Prefer a signing scheme when the sender
offers one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from adapters.base import NamedSecret
from adapters.errors import ConfigError, VerificationError


class TokenSet:
    """The configured tokens, kept as SHA-256 digests so a comparison leaks no length."""

    def __init__(self, secrets: Sequence[NamedSecret], what: str) -> None:
        if not secrets:
            raise ConfigError("no_secret", f"{what} needs at least one secret (the token)")
        self._digests = tuple((s.id, hashlib.sha256(s.value.encode()).digest()) for s in secrets)
        self.first = secrets[0].value

    def match(self, given: str | None, *, missing: str) -> str:
        if given is None or given == "":
            raise VerificationError(missing, "no credential in the request")
        try:
            candidate = hashlib.sha256(given.encode()).digest()
        except UnicodeEncodeError:  # lone surrogates from undecodable header bytes
            raise VerificationError("malformed_header", "credential is not UTF-8") from None
        found: str | None = None
        for key_id, digest in self._digests:
            if hmac.compare_digest(candidate, digest) and found is None:
                found = key_id
        if found is None:
            raise VerificationError("token_mismatch", "no configured token matches")
        return found


def basic_credentials(header: str | None) -> str | None:
    """``user:password`` from an ``Authorization: Basic`` value, or ``None`` when absent."""
    if header is None:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise VerificationError("malformed_header", "Authorization is not Basic credentials")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise VerificationError("malformed_header", "Basic credentials are not base64") from None
    if ":" not in decoded:
        raise VerificationError("malformed_header", "Basic credentials have no ':'")
    return decoded


def basic_header(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


#: What a token echoed back in a body is replaced with before the body is published.
REDACTED = "[redacted]"


def token_needles(values: Sequence[str]) -> tuple[bytes, ...]:
    """Byte strings whose presence in a raw body means a token may be echoed in it: the token
    as it is and as JSON would escape it."""
    needles: set[bytes] = set()
    for value in values:
        needles.add(value.encode())
        needles.add(json.dumps(value)[1:-1].encode())
    return tuple(sorted(needles))


def redact_tokens(payload: Any, tokens: frozenset[str]) -> Any:
    """A copy of ``payload`` in which every string equal to one of ``tokens`` is ``REDACTED``.

    Iterative, so a deeply nested body cannot exhaust the stack; only containers on a path to a
    string are copied once each.
    """
    if isinstance(payload, str):
        return REDACTED if payload in tokens else payload
    if not isinstance(payload, dict | list):
        return payload
    top: dict[Any, Any] | list[Any] = dict(payload) if isinstance(payload, dict) else list(payload)
    stack = [top]
    while stack:
        node = stack.pop()
        entries = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for key, value in entries:
            if isinstance(value, str):
                if value in tokens:
                    node[key] = REDACTED
            elif isinstance(value, dict | list):
                child: dict[Any, Any] | list[Any] = (
                    dict(value) if isinstance(value, dict) else list(value)
                )
                node[key] = child
                stack.append(child)
    return top
