"""Signing certificates fetched by URL (AWS SNS's ``SigningCertURL``), cached.

* at most ``max_entries`` certificates are kept (least recently used go first), each for at
  most ``max_age_seconds``, then fetched again;
* concurrent deliveries naming one URL share one fetch, and a delivery that gives up (its
  client went away) does not cancel it for the others;
* a body over ``max_bytes``, or one that is not an RSA certificate, is refused;
* a URL whose fetch failed is not fetched again for ``retry_seconds``, so a burst of
  deliveries cannot turn into a burst of fetches.

The caller checks the URL before asking: this module fetches whatever it is given.
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from adapters.base import Fetcher
from adapters.errors import GatewayError, TemporaryError, VerificationError
from adapters.primitives.rsa_keys import RSAPublicKey, rsa_key_from_pem

#: A signing certificate is about 2 KB of PEM; anything this large is not one.
MAX_CERTIFICATE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class _Entry:
    key: RSAPublicKey
    fetched_at: float


@dataclass(frozen=True, slots=True)
class _Failure:
    at: float
    unavailable: bool  # True: the fetch failed (503); False: what came back is no certificate


class CertificateCache:
    """RSA keys of X.509 certificates by URL."""

    def __init__(
        self,
        fetcher: Fetcher | None,
        *,
        max_entries: int,
        max_age_seconds: float,
        retry_seconds: float,
        clock: Callable[[], float],
        max_bytes: int = MAX_CERTIFICATE_BYTES,
        on_refresh: Callable[[str], None] | None = None,
    ) -> None:
        self._fetcher = fetcher
        self._max_entries = max_entries
        self._max_age = max_age_seconds
        self._retry = retry_seconds
        self._clock = clock
        self._max_bytes = max_bytes
        self._on_refresh = on_refresh
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._failures: OrderedDict[str, _Failure] = OrderedDict()
        self._pending: dict[str, asyncio.Task[RSAPublicKey]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def key(self, url: str) -> RSAPublicKey:
        """The certificate's key, from the cache or fetched now; raises ``TemporaryError``
        (cannot fetch) or ``VerificationError`` (``invalid_certificate``)."""
        now = self._clock()
        entry = self._entries.get(url)
        if entry is not None and now - entry.fetched_at <= self._max_age:
            self._entries.move_to_end(url)
            return entry.key
        failure = self._failures.get(url)
        if failure is not None and now - failure.at < self._retry:
            raise _error(failure.unavailable)
        task = self._pending.get(url)
        if task is None:
            task = asyncio.ensure_future(self._fetch(url))
            self._pending[url] = task
            task.add_done_callback(functools.partial(self._settled, url))
        return await asyncio.shield(task)

    def _settled(self, url: str, task: asyncio.Task[RSAPublicKey]) -> None:
        self._pending.pop(url, None)
        if not task.cancelled():
            task.exception()  # retrieved here, so a fetch nobody waits for any more logs nothing

    async def _fetch(self, url: str) -> RSAPublicKey:
        if self._fetcher is None:
            raise TemporaryError("keys_unavailable", "nothing can fetch signing certificates")
        try:
            body = await self._fetcher(url)
        except Exception:  # noqa: BLE001 - whatever went wrong, the answer is "try later"
            self._fail(url, unavailable=True)
            raise _error(unavailable=True) from None
        key = rsa_key_from_pem(body) if len(body) <= self._max_bytes else None
        if key is None:
            self._fail(url, unavailable=False)
            raise _error(unavailable=False)
        self._failures.pop(url, None)
        self._entries[url] = _Entry(key, self._clock())
        self._entries.move_to_end(url)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        self._report("ok")
        return key

    def _fail(self, url: str, *, unavailable: bool) -> None:
        self._failures[url] = _Failure(self._clock(), unavailable)
        self._failures.move_to_end(url)
        while len(self._failures) > self._max_entries:
            self._failures.popitem(last=False)
        self._report("error" if unavailable else "empty")

    def _report(self, result: str) -> None:
        if self._on_refresh is not None:
            self._on_refresh(result)

    async def close(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()
        self._pending.clear()


def _error(unavailable: bool) -> GatewayError:
    if unavailable:
        return TemporaryError("keys_unavailable", "the signing certificate could not be fetched")
    return VerificationError(
        "invalid_certificate", "the signing certificate URL does not serve an RSA certificate"
    )
