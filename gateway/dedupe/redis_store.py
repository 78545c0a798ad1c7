"""The shared dedupe store: Redis (or Valkey), with the in-memory store in front.

Keys are ``<prefix>:dedupe:<event_id>``; a value is either the owner token of a claim or
``c`` (committed). Nothing else is stored: no payload, no secret.

* **claim**: the memory level first (committed here: duplicate, no round trip; another copy in
  flight here: wait for it). Then ``SET key <owner> NX PX claim_ttl``, the owner token unique
  per request. A key already there is read: committed -> duplicate; another owner's claim ->
  poll until it is committed (duplicate), or released or expired (claim again), for at most
  the publish deadline, then 503 ``delivery_in_progress``.
* **commit**, after the sink's durable write: a Lua compare-and-set from our claim to
  committed with the full TTL (also when our claim has expired meanwhile: the event *is*
  written; never over another owner's claim).
* **release**, when the write failed: a Lua compare-and-delete, so a late release never
  removes another owner's claim.

Every call has a deadline (``timeout_seconds``, never past the publish deadline); the calls
of concurrent deliveries share one connection and its writes (``multiplexed.py``). A failure
or a timeout is counted (``on_error``) and, per ``on_store_error``, the delivery goes through
without the shared claim (``publish``: at-least-once still holds; consumers dedupe by
``event_id``) or gets 503 (``reject``). After a failure Redis is left alone for
``retry_interval`` (deliveries meanwhile take the same fallback, at once), then one request
tries it again: dedupe resumes by itself when Redis is back.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from typing import Any, Literal

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.dedupe.base import DedupeStore, Health, StoreErrorHook
from gateway.dedupe.memory import MemoryDedupe
from gateway.dedupe.multiplexed import MultiplexedConnection
from gateway.dedupe.redis_client import Connection
from gateway.errors import DedupeUnavailable
from gateway.logs import get_logger

COMMITTED = b"c"

# KEYS[1] the id's key; ARGV[1] our owner token, ARGV[2] the committed marker, ARGV[3] TTL ms.
COMMIT_SCRIPT = """
local value = redis.call('GET', KEYS[1])
if value == ARGV[1] or value == false then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""

# KEYS[1] the id's key; ARGV[1] our owner token.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# First poll of another owner's claim after 2 ms, doubling up to 50 ms: a copy racing ours is
# usually committed within a few milliseconds (the Kafka ack).
_POLL_FIRST = 0.002
_POLL_MAX = 0.05

#: A fail-open claim: the delivery goes through with no shared claim to commit or release.
_NO_CLAIM = b""

log = get_logger("gateway.dedupe")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | RedisTimeoutError):
        return "timeout"
    if isinstance(exc, RedisConnectionError | OSError):
        return "connection"
    return "error"


class _Breaker:
    """Closed: every call goes to Redis. Open (after a failure): none does, until
    ``interval`` has passed; then one call probes (the next one after another interval, if the
    probe never reports), and its result closes or reopens it."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self._interval = interval
        self._clock = clock
        self._open_until: float | None = None

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def allow(self) -> bool:
        if self._open_until is None:
            return True
        now = self._clock()
        if now < self._open_until:
            return False
        self._open_until = now + self._interval  # this call is the probe
        return True

    def failed(self) -> bool:
        """Open it (again); ``True`` when it was closed."""
        was_closed = self._open_until is None
        self._open_until = self._clock() + self._interval
        return was_closed

    def succeeded(self) -> bool:
        """Close it; ``True`` when it was open."""
        was_open = self._open_until is not None
        self._open_until = None
        return was_open


class RedisDedupe(DedupeStore):
    kind = "redis"

    def __init__(
        self,
        connection: Connection,
        local: MemoryDedupe,
        *,
        key_prefix: str,
        ttl_seconds: float,
        claim_ttl_seconds: float,
        timeout_seconds: float,
        wait_seconds: float,
        retry_interval_seconds: float,
        on_store_error: Literal["publish", "reject"],
        on_error: StoreErrorHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connection = connection
        self._client = client = connection.client
        self._local = local
        self._prefix = f"{key_prefix}:dedupe:"
        self._ttl_ms = int(ttl_seconds * 1000)
        self._claim_ttl_ms = int(claim_ttl_seconds * 1000)
        # A call's deadline never reaches past the publish deadline.
        self._timeout = min(timeout_seconds, wait_seconds / 4)
        self._wait = wait_seconds
        self._reject = on_store_error == "reject"
        self._on_error = on_error
        self._breaker = _Breaker(retry_interval_seconds, clock)
        self._redis = MultiplexedConnection(client, self._timeout)
        self._commit_sha = hashlib.sha1(COMMIT_SCRIPT.encode(), usedforsecurity=False).hexdigest()
        self._release_sha = hashlib.sha1(RELEASE_SCRIPT.encode(), usedforsecurity=False).hexdigest()
        # event id -> our owner token (or _NO_CLAIM), while this process owns the claim.
        self._owners: dict[str, bytes] = {}
        # Commits on their way to Redis after their 2xx (``commit_soon``); ``close`` waits.
        self._committing: set[asyncio.Future[Any]] = set()

    def health(self) -> Health:
        return "degraded" if self._breaker.is_open else "ok"

    async def start(self) -> None:
        try:
            await self._redis.call("PING")  # opens the connection the deliveries will use
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("start", exc)
        else:
            log.info("dedupe_store_connected", kind=self.kind)

    async def close(self) -> None:
        while self._committing:  # each is bounded by its call's deadline; a retry may follow
            await asyncio.gather(*self._committing, return_exceptions=True)
        await self._redis.close()
        await self._connection.close()

    async def claim(self, event_id: str) -> bool:
        local = self._local
        if not await local.claim(event_id):
            return False  # committed here, or by a copy this replica just wrote
        try:
            owned = await self._claim_shared(event_id)
        except BaseException:
            local.wake(event_id)  # the next local copy tries (our failure is not its answer)
            raise
        if not owned:
            local.mark_committed(event_id)  # committed by another replica, or before a restart
        return owned

    async def commit(self, event_id: str) -> None:
        token = self._owners.pop(event_id, _NO_CLAIM)
        try:
            if token != _NO_CLAIM and self._usable("commit"):
                await self._commit_script(self._prefix + event_id, [token, COMMITTED, self._ttl_ms])
        finally:
            self._local.mark_committed(event_id)

    async def commit_soon(self, event_id: str) -> None:
        # The event is durably written, which is all the answer waits for. Until the commit
        # lands, another replica's copy finds the live claim and waits for it; if this process
        # dies first, the claim expires and a retry publishes again (at-least-once), as it
        # would had it died just before an awaited commit. A future with a callback, not a
        # task: this runs for every delivery.
        token = self._owners.pop(event_id, _NO_CLAIM)
        self._local.mark_committed(event_id)
        if token == _NO_CLAIM or not self._usable("commit"):
            return
        key = self._prefix + event_id
        args = [token, COMMITTED, self._ttl_ms]
        sent = self._redis.call("EVALSHA", self._commit_sha, 1, key, *args)
        self._committing.add(sent)
        sent.add_done_callback(lambda done: self._commit_landed(done, key, args))

    def _commit_landed(self, done: asyncio.Future[Any], key: str, args: list[Any]) -> None:
        self._committing.discard(done)
        if done.cancelled():
            return
        exc = done.exception()
        if exc is None:
            self._recovered()
        elif isinstance(exc, NoScriptError):  # a restarted or failed-over Redis: load, retry
            again = asyncio.get_running_loop().create_task(self._commit_script(key, args))
            self._committing.add(again)
            again.add_done_callback(self._committing.discard)
        elif isinstance(exc, RedisError | OSError | TimeoutError):
            self._failed("commit", exc)

    async def _commit_script(self, key: str, args: list[Any]) -> None:
        """The commit script, loaded first if the server forgot it; a failure is counted."""
        try:
            await self._redis.script(self._commit_sha, COMMIT_SCRIPT, [key], args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("commit", exc)
        else:
            self._recovered()

    async def release(self, event_id: str) -> None:
        token = self._owners.pop(event_id, _NO_CLAIM)
        try:
            if token != _NO_CLAIM and self._usable("release"):
                key = self._prefix + event_id
                try:
                    await self._redis.script(self._release_sha, RELEASE_SCRIPT, [key], [token])
                except (RedisError, OSError, TimeoutError) as exc:
                    self._failed("release", exc)  # the claim expires after claim_ttl
                else:
                    self._recovered()
        finally:
            self._local.wake(event_id)

    async def _claim_shared(self, event_id: str) -> bool:
        key = self._prefix + event_id
        token = os.urandom(8).hex().encode()
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._wait
        delay = _POLL_FIRST
        while True:
            if not self._usable("claim"):
                return self._fallback(event_id)
            try:
                won: Any = await self._redis.call("SET", key, token, "NX", "PX", self._claim_ttl_ms)
                value: Any = None if won else await self._redis.call("GET", key)
            except (RedisError, OSError, TimeoutError) as exc:
                self._failed("claim", exc)
                return self._fallback(event_id)
            self._recovered()
            # Our own token: the client retried a SET whose reply a broken connection lost.
            if won or value == token:
                self._owners[event_id] = token
                return True
            if value == COMMITTED:
                return False
            # The next call must fit before the publish deadline, with its own deadline.
            remaining = give_up - loop.time() - self._timeout
            if value is None and remaining > 0:
                continue  # released or expired between our SET and GET: claim again now
            if remaining <= 0:
                raise DedupeUnavailable(
                    "delivery_in_progress", "another copy is still being written"
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, _POLL_MAX)

    def _usable(self, operation: str) -> bool:
        if self._breaker.allow():
            return True
        self._count(operation, "unavailable")
        return False

    def _fallback(self, event_id: str) -> bool:
        """``on_store_error``: go ahead without the shared claim, or refuse with 503."""
        if self._reject:
            raise DedupeUnavailable("dedupe_unavailable", "the shared dedupe store is failing")
        self._owners[event_id] = _NO_CLAIM
        return True

    def _failed(self, operation: str, exc: BaseException) -> None:
        reason = _reason(exc)
        self._count(operation, reason)
        if self._breaker.failed():
            # Once per outage, not per delivery: the counter has the rate.
            log.warning(
                "dedupe_store_degraded",
                operation=operation,
                reason=reason,
                error=type(exc).__name__,
                fallback="reject" if self._reject else "publish",
            )

    def _recovered(self) -> None:
        if self._breaker.succeeded():
            log.info("dedupe_store_recovered", kind=self.kind)

    def _count(self, operation: str, reason: str) -> None:
        if self._on_error is not None:
            self._on_error(operation, reason)
