"""RSA keys by key id, from a published certificate document and/or a static list.

Google publishes its token-signing keys two ways: ``oauth2/v1/certs`` (an object of key id →
PEM X.509 certificate, what ``google-auth`` reads) and ``oauth2/v3/certs`` (a JWKS). Both are
understood. The refresh rules are those of :mod:`adapters.primitives.jwks`:

* a fetched set is used for at most ``max_age_seconds`` (24 h at most), then fetched again;
* a key id that is not in the set fetches it again once, at most every
  ``min_refresh_seconds`` (a rotation in progress), so unknown ids cannot drive a fetch storm;
* concurrent deliveries share one fetch;
* a fetched document that cannot be parsed, or has no usable key, never replaces a good set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from adapters.base import Fetcher
from adapters.errors import TemporaryError
from adapters.primitives.rsa_keys import RSAPublicKey, rsa_key_from_jwk, rsa_key_from_pem

MAX_AGE_LIMIT_SECONDS = 24 * 3600
#: Google's documents list two or three keys; a document with thousands is not Google's.
MAX_KEYS = 64


def parse_key_document(body: bytes) -> dict[str, RSAPublicKey]:
    """Usable RSA keys of a certificate document (v1 PEM map or JWKS), by key id."""
    try:
        doc: Any = orjson.loads(body)
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    found: dict[str, RSAPublicKey] = {}
    if isinstance(doc.get("keys"), list):
        for jwk in doc["keys"][:MAX_KEYS]:
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
                continue
            kid = jwk.get("kid")
            key = rsa_key_from_jwk(jwk)
            if isinstance(kid, str) and kid and key is not None:
                found[kid] = key
        return found
    for kid, pem in list(doc.items())[:MAX_KEYS]:
        if isinstance(pem, str) and kid:
            key = rsa_key_from_pem(pem.encode())
            if key is not None:
                found[kid] = key
    return found


class RsaKeySet:
    """Static keys plus, optionally, the keys of one certificate document URL."""

    def __init__(
        self,
        static_keys: Mapping[str, RSAPublicKey],
        url: str | None,
        fetcher: Fetcher | None,
        *,
        max_age_seconds: int,
        min_refresh_seconds: float,
        clock: Callable[[], float],
        on_refresh: Callable[[str], None] | None = None,
    ) -> None:
        self._static = dict(static_keys)
        self._url = url
        self._fetcher = fetcher
        self._max_age = min(max_age_seconds, MAX_AGE_LIMIT_SECONDS)
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._on_refresh = on_refresh
        self._fetched: dict[str, RSAPublicKey] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._lock = asyncio.Lock()

    @property
    def uses_url(self) -> bool:
        return self._url is not None

    def loaded(self) -> bool:
        return bool(self._static) or self._fresh()

    def key_ids(self) -> Sequence[str]:
        return [*self._static, *(self._fetched if self._fresh() else ())]

    def refresh_delay(self) -> float:
        """Seconds until a background refresh should run: halfway through a fresh set's life,
        or soon when there is none, so a quiet source never goes stale (or unready)."""
        if self._fresh():
            return self._max_age / 2
        return max(self._min_refresh, 5.0)

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at <= self._max_age

    def _lookup(self, kid: str) -> RSAPublicKey | None:
        key = self._static.get(kid)
        if key is None and self._fresh():
            key = self._fetched.get(kid)
        return key

    async def refresh(self, *, force: bool = False) -> bool:
        """Fetch the document now unless rate-limited; return whether keys are fresh after."""
        if self._url is None or self._fetcher is None:
            return False
        if self._lock.locked():
            # Another delivery is fetching right now: wait for it and use what it installed.
            async with self._lock:
                return self._fresh()
        async with self._lock:
            now = self._clock()
            if (
                not force
                and self._last_attempt is not None
                and now - self._last_attempt < self._min_refresh
            ):
                return False
            self._last_attempt = now
            try:
                keys = parse_key_document(await self._fetcher(self._url))
            except Exception:  # noqa: BLE001 - any fetch failure leaves the old set in place
                self._report("error")
                return False
            if not keys:
                self._report("empty")
                return False
            self._fetched = keys
            self._fetched_at = self._clock()
            self._report("ok")
            return True

    def _report(self, result: str) -> None:
        if self._on_refresh is not None:
            self._on_refresh(result)

    async def key_for(self, kid: str) -> RSAPublicKey | None:
        """The key named ``kid``, fetching the document again once if it is not known.

        ``None`` when no such key exists; ``TemporaryError`` when no key at all could be loaded
        (the document is unreachable and nothing is static), so the sender retries later.
        """
        if self._url is not None and not self._fresh():
            await self.refresh()
        key = self._lookup(kid)
        if key is not None:
            return key
        if self._url is not None and await self.refresh():
            key = self._lookup(kid)
            if key is not None:
                return key
        if not self.loaded():
            raise TemporaryError("keys_unavailable", "no verification key could be loaded")
        return None
