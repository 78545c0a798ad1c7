"""The ``HttpGet`` pollers use: aiohttp, one deadline per call, a capped body, no redirects to
other hosts carrying the API key."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from adapters.polling import HttpReply
from adapters.polling.base import MAX_REPLY_BYTES


class HttpClient:
    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, url: str, headers: Mapping[str, str]) -> HttpReply:
        """Raises ``OSError`` (aiohttp's client errors are mapped to it) or ``TimeoutError``."""
        if self._session is None:
            raise OSError("the HTTP client is not started")
        try:
            # A redirect would replay the Authorization header elsewhere: not followed.
            async with self._session.get(url, headers=dict(headers), allow_redirects=False) as r:
                body = await r.content.read(MAX_REPLY_BYTES + 1)
                if len(body) > MAX_REPLY_BYTES:
                    raise OSError("status API answer too large")
                return HttpReply(r.status, {k.lower(): v for k, v in r.headers.items()}, body)
        except aiohttp.ClientError as exc:
            raise OSError(type(exc).__name__) from None
