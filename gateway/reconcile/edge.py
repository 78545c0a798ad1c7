"""The edge's half: a terminal webhook for an expected job claims the job's terminal slot.

For a job nobody expects this costs one Redis ``GET`` (none when reconciliation is off); a
store failure there counts and lets the delivery through as before (fail-open, as the dedupe
store). For an expected job (open, or closed by a poll already) the terminal slot is claimed
with the dedupe store's owner-token protocol: committed after the sink's durable write,
released when it fails. A slot another publisher holds makes the delivery a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.dedupe import DedupeStore, StoreErrorHook
from gateway.reconcile.store import ExpectationStore, terminal_slot
from schemas import JobExpectation

#: Called with (source, seconds from submission to the terminal webhook) on closing.
ClosedHook = Callable[[str, float], None]


@dataclass(slots=True)
class Ticket:
    source: str
    job_id: str
    slot: str
    #: The open expectation (``None``: a poll closed it already, or it was closed before).
    expectation: JobExpectation | None
    #: ``False``: another terminal event of this job holds the slot: answer a duplicate.
    owned: bool


class TerminalGate:
    def __init__(
        self,
        store: ExpectationStore,
        dedupe: DedupeStore,
        *,
        on_store_error: StoreErrorHook,
        on_closed: ClosedHook,
    ) -> None:
        self.store = store
        self._dedupe = dedupe
        self._on_error = on_store_error
        self._on_closed = on_closed

    async def enter(self, source: str, job_id: str) -> Ticket | None:
        """``None`` when nobody expects the job: the delivery goes on as before. May raise
        ``DedupeUnavailable`` (503), as the event id's claim may."""
        try:
            found = await self.store.lookup(source, job_id)
        except (RedisError, OSError, TimeoutError) as exc:
            self._on_error("expectation", _reason(exc))
            return None
        if found is None:
            return None
        slot = terminal_slot(source, job_id)
        owned = await self._dedupe.claim(slot)
        expectation = found if isinstance(found, JobExpectation) else None
        return Ticket(source, job_id, slot, expectation, owned)

    async def settle(self, ticket: Ticket, *, published: bool, now: float) -> None:
        """After the publish: commit the slot and close the expectation, or release it."""
        if not ticket.owned:
            return
        if not published:
            await self._dedupe.release(ticket.slot)
            return
        await self._dedupe.commit(ticket.slot)
        try:
            was_open = await self.store.close(ticket.source, ticket.job_id)
        except (RedisError, OSError, TimeoutError) as exc:
            # The slot is committed: a poll of this job finds it taken and closes it then.
            self._on_error("expectation", _reason(exc))
            return
        if was_open and ticket.expectation is not None:
            self._on_closed(ticket.source, now - ticket.expectation.submitted_at.timestamp())


def _reason(exc: BaseException) -> str:
    """The dedupe store's vocabulary: timeout, connection, error."""
    if isinstance(exc, TimeoutError | RedisTimeoutError):
        return "timeout"
    return "connection" if isinstance(exc, OSError | RedisConnectionError) else "error"
