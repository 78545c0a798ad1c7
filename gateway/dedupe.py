"""In-memory dedupe of event ids: bounded (LRU), expiring (TTL), safe under concurrency.

An id is *claimed* by the first request that sees it, and *committed* only after the sink has
durably written the event. A second identical delivery arriving meanwhile waits for the first:
if the first commits, the second is a duplicate; if the first fails (sink down), the claim is
released and the second tries itself. So two concurrent copies can never yield two events, and
a failure never makes a retry look like a duplicate.

The store is per process: across replicas, duplicates are possible and consumers dedupe by
``event_id`` (the delivery guarantee is at-least-once).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable


class DedupeStore:
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
        """``True``: the caller owns the id and must commit or release it. ``False``: duplicate."""
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

    def commit(self, event_id: str) -> None:
        self._committed[event_id] = self._clock()
        self._committed.move_to_end(event_id)
        while len(self._committed) > self._max:
            self._committed.popitem(last=False)
        self._wake(event_id)

    def release(self, event_id: str) -> None:
        self._wake(event_id)

    def _wake(self, event_id: str) -> None:
        pending = self._in_flight.pop(event_id, None)
        if pending is not None and not pending.done():
            pending.set_result(None)
