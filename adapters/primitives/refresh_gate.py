"""One key fetch at a time, at most every ``min_interval`` seconds, shared by every caller.

Both key sets that fetch from a provider (fal's JWKS, Google's certificates for Pub/Sub) refetch
when a signature names a key they do not hold. A flood of such deliveries must cause one fetch,
not one per delivery, and a key host that is down must not be hammered: concurrent callers wait
for the fetch in progress and see what it installed; later callers inside the interval get
``False`` at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class RefreshGate:
    def __init__(self, min_interval: float, clock: Callable[[], float]) -> None:
        self._min_interval = min_interval
        self._clock = clock
        self._last_attempt: float | None = None
        self._lock = asyncio.Lock()

    async def run(
        self, fetch: Callable[[], Awaitable[bool]], fresh: Callable[[], bool], *, force: bool
    ) -> bool:
        """``fetch()`` unless one is running (then ``fresh()`` after it) or one ran too recently
        (then ``False``); ``force`` ignores the interval, never the single flight."""
        if self._lock.locked():
            async with self._lock:
                return fresh()
        async with self._lock:
            now = self._clock()
            recent = (
                self._last_attempt is not None and now - self._last_attempt < self._min_interval
            )
            if recent and not force:
                return False
            self._last_attempt = now
            return await fetch()
