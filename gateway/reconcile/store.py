"""Open expectations in Redis, shared by the edge and every reconciler instance.

* ``<prefix>:expect:<source>:<job_id>``: the expectation's JSON, expiring a day after its
  deadline (a leftover never outlives its use);
  once the job's terminal event is published, ``c`` (closed) for the dedupe TTL, so a webhook
  arriving after the poll still meets the terminal slot and is answered as a duplicate;
* ``<prefix>:expect:due``: a sorted set of ``<source>:<job_id>`` by the Unix time it is due.

An instance *takes* due members with one Lua script that moves each to ``now + lease``: two
instances never take the same job at once, and the job of an instance that died comes due
again when its lease runs out. Nothing here holds a secret or a payload beyond the expectation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis

from schemas import JobExpectation

CLOSED = b"c"

#: Kept this long past the deadline, for a poll in flight and a late webhook to find it.
_RECORD_GRACE_SECONDS = 86_400.0

# KEYS[1] record, KEYS[2] due set, KEYS[3] the terminal slot's dedupe key.
# ARGV[1] expectation JSON, ARGV[2] member, ARGV[3] due time, ARGV[4] record TTL ms.
ADD_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current == 'c' or redis.call('GET', KEYS[3]) == 'c' then
  return 0
end
if current then
  return 2
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[2])
return 1
"""

# KEYS[1] due set. ARGV[1] now, ARGV[2] lease end, ARGV[3] how many.
TAKE_SCRIPT = """
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, member in ipairs(members) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], member)
end
return members
"""

# KEYS[1] record. ARGV[1] the closed marker's TTL ms. A job nobody expects yet is marked closed
# in the same round trip, so an expectation registered after its webhook is not reopened.
LOOKUP_SCRIPT = """
local value = redis.call('GET', KEYS[1])
if value then
  return value
end
redis.call('SET', KEYS[1], 'c', 'PX', ARGV[1])
return false
"""

# KEYS[1] record: undo a mark whose delivery was not written (the provider retries).
UNMARK_SCRIPT = """
if redis.call('GET', KEYS[1]) == 'c' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

#: ``add`` results.
ADDED, ALREADY_OPEN, ALREADY_ENDED = "added", "already_open", "already_ended"
_ADD_RESULTS = {1: ADDED, 2: ALREADY_OPEN, 0: ALREADY_ENDED}


def terminal_slot(source: str, job_id: str) -> str:
    """The id claimed in the dedupe store by whichever terminal event of the job comes first."""
    return f"terminal:{source}:{job_id}"


class ExpectationStore:
    """Every call has the deadline ``timeout_seconds``; failures raise Redis errors,
    ``OSError`` or ``TimeoutError`` for the caller to count."""

    def __init__(
        self,
        client: Redis,
        *,
        key_prefix: str,
        timeout_seconds: float,
        slot_prefix: str,
        closed_ttl_seconds: float,
    ) -> None:
        self._client = client
        self._closed_ttl_ms = int(closed_ttl_seconds * 1000)
        self._records = f"{key_prefix}:expect:"
        self._due = f"{key_prefix}:expect:due"
        self._slot_prefix = slot_prefix
        self._timeout = timeout_seconds
        self._add = client.register_script(ADD_SCRIPT)
        self._take = client.register_script(TAKE_SCRIPT)
        self._lookup = client.register_script(LOOKUP_SCRIPT)
        self._unmark = client.register_script(UNMARK_SCRIPT)

    async def add(self, expectation: JobExpectation, now: float) -> str:
        """Register; a second registration of an open job keeps the first, and a job whose
        terminal event is already published is not opened again."""
        member = expectation.key
        slot = self._slot_prefix + terminal_slot(expectation.source, expectation.job_id)
        ttl_ms = int(max(expectation.deadline - now + _RECORD_GRACE_SECONDS, 1.0) * 1000)
        async with asyncio.timeout(self._timeout):
            result = await self._add(
                keys=[self._records + member, self._due, slot],
                args=[expectation.model_dump_json(), member, expectation.poll_at, ttl_ms],
            )
        return _ADD_RESULTS[int(result)]

    async def lookup(self, source: str, job_id: str) -> JobExpectation | bytes | None:
        """For a terminal event at the edge: the open expectation of the job, ``CLOSED``, or
        ``None`` (nobody expects it; now marked closed, see ``unmark``). One round trip, the
        edge's only one for a job nobody expects."""
        async with asyncio.timeout(self._timeout):
            raw = await self._lookup(
                keys=[f"{self._records}{source}:{job_id}"], args=[self._closed_ttl_ms]
            )
        if raw is None:
            return None
        if raw == CLOSED:
            return CLOSED
        return _load(raw) or CLOSED  # unreadable: treated as expected, the slot decides

    async def unmark(self, source: str, job_id: str) -> None:
        """The terminal event ``lookup`` marked was not written: forget the mark."""
        async with asyncio.timeout(self._timeout):
            await self._unmark(keys=[f"{self._records}{source}:{job_id}"])

    async def take(self, now: float, lease_seconds: float, limit: int) -> list[JobExpectation]:
        """Due expectations, leased to the caller until ``now + lease_seconds``."""
        async with asyncio.timeout(self._timeout):
            members: Sequence[bytes] = await self._take(
                keys=[self._due], args=[now, now + lease_seconds, limit]
            )
            if not members:
                return []
            raws = await self._client.mget([self._records + m.decode() for m in members])
        taken: list[JobExpectation] = []
        gone: list[bytes] = []
        for member, raw in zip(members, raws, strict=True):
            expectation = None if raw == CLOSED else _load(raw)
            if expectation is None:
                gone.append(member)  # expired or unreadable: nothing left to do for it
            else:
                taken.append(expectation)
        if gone:
            async with asyncio.timeout(self._timeout):
                await self._client.zrem(self._due, *gone)
        return taken

    async def reschedule(self, expectation: JobExpectation, due: float) -> None:
        async with asyncio.timeout(self._timeout):
            await self._client.zadd(self._due, {expectation.key: due}, xx=True)

    async def close(self, source: str, job_id: str) -> bool:
        """Mark the job closed (its terminal event is published); ``True`` when it was open."""
        member = f"{source}:{job_id}"
        async with asyncio.timeout(self._timeout):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(self._records + member, CLOSED, px=self._closed_ttl_ms, get=True)
                pipe.zrem(self._due, member)
                previous, _ = await pipe.execute()
        return previous not in (None, CLOSED)

    async def pending(self) -> int:
        async with asyncio.timeout(self._timeout):
            return int(await self._client.zcard(self._due))

    async def next_due(self) -> float | None:
        async with asyncio.timeout(self._timeout):
            first: Any = await self._client.zrange(self._due, 0, 0, withscores=True)
        return float(first[0][1]) if first else None


def _load(raw: Any) -> JobExpectation | None:
    if raw is None:
        return None
    try:
        return JobExpectation.model_validate_json(raw)
    except ValidationError:
        return None
