"""In-memory dedupe of event ids: bounded (LRU), expiring (TTL), safe under concurrency.

Per process: alone, a redelivery reaching another replica (or arriving after a restart) is
published again with the same ``event_id``. In front of Redis it is the first level, so a
duplicate on the same replica, and concurrent copies on it, cost no round trip.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

from gateway.dedupe.base import DedupeStore


class MemoryDedupe(DedupeStore):
    kind = "memory"

    def __init__(
        self,
        max_entries: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._committed: OrderedDict[str, float] = OrderedDict()
        self._in_flight: dict[str, asyncio.Future[None]] = {}

    def __len__(self) -> int:
        return len(self._committed)

    def seen(self, event_id: str) -> bool:
        committed_at = self._committed.get(event_id)
        if committed_at is None:
            return False
        if self._clock() - committed_at > self._ttl:
            del self._committed[event_id]
            return False
        return True

    async def claim(self, event_id: str) -> bool:
        while True:
            if self.seen(event_id):
                self._committed.move_to_end(event_id)
                return False
            pending = self._in_flight.get(event_id)
            if pending is None:
                self._in_flight[event_id] = asyncio.get_running_loop().create_future()
                return True
            # shield: our own cancellation must not cancel the owner's future.
            await asyncio.shield(pending)

    async def commit(self, event_id: str) -> None:
        self.mark_committed(event_id)

    async def release(self, event_id: str) -> None:
        self.wake(event_id)

    def mark_committed(self, event_id: str) -> None:
        """Record ``event_id`` as written and wake the copies waiting for it."""
        self._committed[event_id] = self._clock()
        self._committed.move_to_end(event_id)
        while len(self._committed) > self._max:
            self._committed.popitem(last=False)
        self.wake(event_id)

    def wake(self, event_id: str) -> None:
        """Drop the local claim: one waiting copy becomes the owner, or sees a commit."""
        pending = self._in_flight.pop(event_id, None)
        if pending is not None and not pending.done():
            pending.set_result(None)
