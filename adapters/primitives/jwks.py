"""Ed25519 public keys from a JWKS URL and/or a static list, cached with a hard maximum age.

Rules (fal's documentation plus what a gateway needs to stay up):

* a fetched key set is used for at most ``max_age_seconds`` (24 h at most);
* when no key verifies a signature, the set is fetched again once, at most every
  ``min_refresh_seconds``, and the signature checked again (a key rotation in progress);
* concurrent deliveries share one fetch;
* base64url ``x`` values are re-padded (fal's own sample forgets, and fails on standard JWKs);
* a fetched set that cannot be parsed, or has no usable key, never replaces a good one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from adapters.base import Fetcher, NamedKey
from adapters.errors import ConfigError, TemporaryError
from adapters.primitives.encoding import b64decode_lenient_padding
from adapters.primitives.refresh_gate import RefreshGate

MAX_AGE_LIMIT_SECONDS = 24 * 3600


def ed25519_key_from_text(text: str) -> VerifyKey | None:
    """A 32-byte key from base64url (JWK ``x``), base64 or hex text; ``None`` if it is not one."""
    raw = b64decode_lenient_padding(text, urlsafe=True)
    if raw is None or len(raw) != 32:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            return None
    return VerifyKey(raw) if len(raw) == 32 else None


def parse_jwks(body: bytes) -> tuple[tuple[str, VerifyKey], ...]:
    """Usable Ed25519 keys of a JWKS document; keys of other types are skipped."""
    try:
        doc: Any = orjson.loads(body)
    except ValueError:
        return ()
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        return ()
    found: list[tuple[str, VerifyKey]] = []
    for index, jwk in enumerate(keys):
        if not isinstance(jwk, dict) or not isinstance(jwk.get("x"), str):
            continue
        if jwk.get("kty", "OKP") != "OKP" or jwk.get("crv", "Ed25519") != "Ed25519":
            continue
        key = ed25519_key_from_text(jwk["x"])
        if key is not None:
            kid = jwk.get("kid")
            found.append((kid if isinstance(kid, str) and kid else f"jwks[{index}]", key))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class KeyMatch:
    key_id: str


class Ed25519KeySet:
    """Static keys plus, optionally, keys from one or more JWKS URLs."""

    def __init__(
        self,
        static_keys: Sequence[NamedKey],
        jwks_urls: Sequence[str],
        fetcher: Fetcher | None,
        *,
        max_age_seconds: int = MAX_AGE_LIMIT_SECONDS,
        min_refresh_seconds: float = 60.0,
        clock: Callable[[], float],
        on_refresh: Callable[[str], None] | None = None,
    ) -> None:
        if jwks_urls and fetcher is None:
            raise ConfigError("no_fetcher", "a JWKS URL is configured but nothing can fetch it")
        self._static: list[tuple[str, VerifyKey]] = []
        for named in static_keys:
            key = ed25519_key_from_text(named.value)
            if key is None:
                raise ConfigError("invalid_public_key", f"key {named.id!r} is not Ed25519")
            self._static.append((named.id, key))
        if not self._static and not jwks_urls:
            raise ConfigError("no_keys", "configure public_keys or a jwks_url")
        self._urls = tuple(jwks_urls)
        self._fetcher = fetcher
        self._max_age = min(max_age_seconds, MAX_AGE_LIMIT_SECONDS)
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._on_refresh = on_refresh
        self._fetched: tuple[tuple[str, VerifyKey], ...] = ()
        self._fetched_at: float | None = None
        self._gate = RefreshGate(min_refresh_seconds, clock)

    @property
    def uses_jwks(self) -> bool:
        return bool(self._urls)

    def loaded(self) -> bool:
        return bool(self._static) or self._fresh()

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at <= self._max_age

    def _keys(self) -> list[tuple[str, VerifyKey]]:
        return self._static + (list(self._fetched) if self._fresh() else [])

    async def refresh(self, *, force: bool = False) -> bool:
        """Fetch the JWKS now unless rate-limited; return whether a new set was installed."""
        if not self._urls or self._fetcher is None:
            return False
        return await self._gate.run(self._fetch, self._fresh, force=force)

    async def _fetch(self) -> bool:
        assert self._fetcher is not None  # refresh checked it
        keys: list[tuple[str, VerifyKey]] = []
        failures = 0
        for url in self._urls:
            try:
                keys.extend(parse_jwks(await self._fetcher(url)))
            except Exception:  # noqa: BLE001 - any fetch failure leaves the old set in place
                failures += 1
        if not keys:
            self._report("error" if failures else "empty")
            return False
        self._fetched = tuple(keys)
        self._fetched_at = self._clock()
        self._report("ok")
        return True

    def _report(self, result: str) -> None:
        if self._on_refresh is not None:
            self._on_refresh(result)

    async def verify(self, message: bytes, signature: bytes) -> KeyMatch | None:
        """The key that verifies ``signature`` over ``message``, refetching once if none does."""
        if self._urls and not self._fresh():
            await self.refresh()
        keys = self._keys()
        match = _try(keys, message, signature)
        if match is not None:
            return match
        if self._urls and await self.refresh():
            return _try(self._keys(), message, signature)
        if not keys:
            raise TemporaryError("keys_unavailable", "no verification key could be loaded")
        return None


def _try(keys: Sequence[tuple[str, VerifyKey]], message: bytes, sig: bytes) -> KeyMatch | None:
    for key_id, key in keys:
        try:
            key.verify(message, sig)
        except BadSignatureError:
            continue
        return KeyMatch(key_id)
    return None
