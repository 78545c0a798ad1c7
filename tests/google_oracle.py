"""google-auth, the Pub/Sub oracle, behind typed functions.

google-auth's ``jwt.encode``/``jwt.decode`` and ``crypt.RSASigner.from_string`` carry no type
annotations, so they are loaded as ``Any`` here (as ``jsonschema`` is in ``helpers_adapters``)
rather than with ``type: ignore`` at every call.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from typing import Any

_jwt: Any = importlib.import_module("google.auth.jwt")
_crypt: Any = importlib.import_module("google.auth.crypt")
_exceptions: Any = importlib.import_module("google.auth.exceptions")

#: What ``google_decode`` raises for a token google-auth refuses.
GoogleAuthError: type[Exception] = _exceptions.GoogleAuthError


@cache
def _signer(private_key_pem: bytes, kid: str) -> Any:
    # Loading an RSA private key checks it, which takes tens of milliseconds: do it once.
    return _crypt.RSASigner.from_string(private_key_pem, key_id=kid)


def google_encode(private_key_pem: bytes, kid: str, claims: Mapping[str, Any]) -> str:
    """A JWT signed by google-auth (RS256, ``kid`` in the header)."""
    token: bytes = _jwt.encode(_signer(private_key_pem, kid), dict(claims))
    return token.decode()


def google_decode(token: str, certs: Mapping[str, str], audience: str) -> dict[str, Any]:
    """The claims of ``token`` after google-auth verified its signature, iat/exp and aud."""
    claims: dict[str, Any] = dict(_jwt.decode(token, certs=dict(certs), audience=audience))
    return claims
