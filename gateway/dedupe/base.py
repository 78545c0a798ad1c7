"""The contract between the pipeline and a dedupe store.

An id is *claimed* by the first request that sees it and *committed* only after the sink has
durably written the event. A second identical delivery arriving meanwhile waits for the first:
if the first commits, the second is a duplicate; if the first fails (sink down), the claim is
*released* and the second tries itself. So two concurrent copies never yield two events, and a
failure never makes a retry look like a duplicate.

``claim`` may raise ``DedupeUnavailable`` (503 + Retry-After): the shared store failed and the
deployment chose ``on_store_error: reject``, or another replica's copy was still being written
when the wait ran out. ``commit`` and ``release`` never raise: the event is written (or not)
whatever the store says, and a store failure there is counted, not answered.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar, Literal

#: Called with (operation, reason) for every store failure: the metric's labels.
StoreErrorHook = Callable[[str, str], None]

#: ``ok``: working; ``degraded``: the shared store is failing and the fallback is in force.
Health = Literal["ok", "degraded"]


class DedupeStore(abc.ABC):
    kind: ClassVar[str]

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect; must not fail when a backend is briefly away."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def health(self) -> Health:
        """Shown by ``/readyz``; a degraded store does not make the gateway unready."""
        return "ok"

    @abc.abstractmethod
    async def claim(self, event_id: str) -> bool:
        """``True``: the caller owns the id and must commit or release it. ``False``: duplicate."""

    @abc.abstractmethod
    async def commit(self, event_id: str) -> None:
        """The event is durably written: later copies are duplicates for the whole TTL."""

    @abc.abstractmethod
    async def release(self, event_id: str) -> None:
        """The write failed: the next copy may claim the id."""

    async def commit_soon(self, event_id: str) -> None:
        """``commit``, without holding the caller for a store's round trip: what the pipeline
        calls before it answers 2xx. Copies on this replica are duplicates when it returns;
        another replica's copy waits on the live claim until the commit lands. ``close``
        waits for the commits still on their way."""
        await self.commit(event_id)
