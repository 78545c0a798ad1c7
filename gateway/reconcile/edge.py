"""The edge's half: a terminal webhook for an expected job claims the job's terminal slot.

Only sources configured with ``reconcile`` are looked at (others cost nothing). For a job
nobody expects, one Redis round trip looks it up and marks it closed, so an expectation
registered after its webhook is ``already_ended`` rather than polled into a second terminal
event (the mark is undone when the write fails). A store failure there counts and lets the
delivery through as before (fail-open, as the dedupe store). For an expected job (open, or
closed by a poll already) the terminal slot is claimed with the dedupe store's owner-token
protocol: committed after the sink's durable write, released when it fails. A slot another
publisher holds makes the delivery a duplicate.
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
    #: Nobody expected the job and the lookup marked it closed (no slot was claimed).
    marked: bool = False


class TerminalGate:
    def __init__(
        self,
        store: ExpectationStore,
        dedupe: DedupeStore,
        sources: frozenset[str],
        *,
        on_store_error: StoreErrorHook,
        on_closed: ClosedHook,
    ) -> None:
        self.store = store
        self._dedupe = dedupe
        self._sources = sources  # the reconciled ones
        self._on_error = on_store_error
        self._on_closed = on_closed

    async def enter(self, source: str, job_id: str) -> Ticket | None:
        """``None`` when nobody expects the job: the delivery goes on as before. May raise
        ``DedupeUnavailable`` (503), as the event id's claim may."""
        if source not in self._sources:
            return None
        try:
            found = await self.store.lookup(source, job_id)
        except (RedisError, OSError, TimeoutError) as exc:
            self._on_error("expectation", _reason(exc))
            return None
        if found is None:
            return Ticket(source, job_id, "", None, owned=True, marked=True)
        slot = terminal_slot(source, job_id)
        owned = await self._dedupe.claim(slot)
        expectation = found if isinstance(found, JobExpectation) else None
        return Ticket(source, job_id, slot, expectation, owned)

    async def settle(self, ticket: Ticket, *, published: bool, now: float) -> None:
        """After the publish: commit the slot and close the expectation, or release it."""
        if ticket.marked:
            if not published:
                try:
                    await self.store.unmark(ticket.source, ticket.job_id)
                except (RedisError, OSError, TimeoutError) as exc:
                    self._on_error("expectation", _reason(exc))
            return
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
