"""The reconciler's loop: take due expectations, poll, publish the one terminal event.

For each expectation taken (leased to this instance, see ``store.py``):

* past ``max_wait_seconds``: a ``failed`` event, error code ``result_never_arrived``;
* else poll the provider. Terminal: claim the job's terminal slot in the dedupe store (taken by
  a webhook already: close, publish nothing), publish with ``delivery.scheme: poll``, commit the
  slot, close the expectation. Anything else (running, 404, 429, 5xx, garbage, no answer):
  poll again after a backoff (the time since the first poll, between ``backoff_initial`` and
  ``backoff_max``, at least the provider's ``Retry-After``), never past the deadline.

The event id of a poll's terminal event depends on the job only, so the one copy a crash
between the broker's ack and the slot's commit can add carries the same ``event_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError

from adapters import Normalized
from adapters.polling import HttpGet, PollAnswer, PollRequest, PollState, StatusPoller
from adapters.polling.base import POLL_SCHEME
from gateway import event_id as ids
from gateway.dedupe import DedupeStore
from gateway.errors import DedupeUnavailable, SinkUnavailable
from gateway.ingest import job_event
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.reconcile.store import ExpectationStore, terminal_slot
from gateway.settings import ReconcileConfig
from gateway.sinks.base import Sink
from schemas import Delivery, JobError, JobEvent, JobExpectation, JobStatus

log = get_logger("gateway.reconcile")

TIMEOUT_SCHEME = "poll-timeout"
NEVER_ARRIVED = "result_never_arrived"
_STORE_ERRORS = (RedisError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Target:
    """A reconciled source: its poller and where its events go."""

    provider: str
    poller: StatusPoller
    topic: str | None = None


class Reconciler:
    def __init__(
        self,
        targets: Mapping[str, Target],
        store: ExpectationStore,
        dedupe: DedupeStore,
        sink: Sink,
        metrics: Metrics,
        config: ReconcileConfig,
        get: HttpGet,
        *,
        publish_timeout_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._targets = targets
        self.store = store
        self._dedupe = dedupe
        self._sink = sink
        self._metrics = metrics
        self._config = config
        self._get = get
        self._publish_timeout = publish_timeout_seconds
        self._clock = clock
        self._slots = asyncio.Semaphore(config.concurrency)
        #: Jobs being handled here now (a test and the benchmark read it).
        self.in_hand: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set; a failing store or sink is waited out, never fatal."""
        while not stop.is_set():
            try:
                taken = await self.run_once()
            except _STORE_ERRORS as exc:
                log.warning("reconcile_store_failed", error=type(exc).__name__)
                taken = 0
            if taken < self._config.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._config.tick_seconds)

    async def run_once(self) -> int:
        """Handle one batch of due expectations; the number taken."""
        now = self._clock()
        taken = await self.store.take(now, self._config.lease_seconds, self._config.batch_size)
        if taken:
            await asyncio.gather(*(self._bounded(e) for e in taken))
        self._metrics.expectations_pending.set(await self.store.pending())
        return len(taken)

    async def _bounded(self, expectation: JobExpectation) -> None:
        async with self._slots:
            self.in_hand.add(expectation.key)
            try:
                await self.handle(expectation)
            except _STORE_ERRORS as exc:  # the lease runs out and the job comes due again
                log.warning(
                    "reconcile_store_failed", source=expectation.source, error=type(exc).__name__
                )
            except Exception:
                # A bug must not stop the other jobs: the lease runs out and the job is tried
                # again; the traceback goes to the log.
                log.exception("reconcile_internal_error", source=expectation.source)
            finally:
                self.in_hand.discard(expectation.key)

    async def handle(self, expectation: JobExpectation) -> None:
        now = self._clock()
        source = expectation.source
        target = self._targets.get(source)
        if now >= expectation.deadline or target is None:
            if now < expectation.deadline:  # no longer configured: only the deadline ends it
                await self.store.reschedule(expectation, expectation.deadline)
                return
            await self._finish(expectation, target, None, None, by="timeout")
            return
        request = PollRequest(expectation.job_id, expectation.status_url, expectation.response_url)
        try:
            async with asyncio.timeout(self._config.http_timeout_seconds * 2):
                answer = await target.poller.poll(request, self._get, now)
        except (OSError, TimeoutError) as exc:
            answer = PollAnswer(PollState.HTTP_ERROR, detail=type(exc).__name__)
            result = "unreachable"
        else:
            result = answer.state.value
        self._metrics.child(self._metrics.reconcile_polls, source, result).inc()
        if answer.state is PollState.TERMINAL and answer.facts is not None:
            await self._finish(expectation, target, answer.facts, answer.payload, by="poll")
            return
        log.info(
            "reconcile_poll",
            source=source,
            job_id=expectation.job_id,
            result=result,
            detail=answer.detail,
        )
        await self._again(expectation, now, answer.retry_after_seconds)

    async def _again(self, expectation: JobExpectation, now: float, at_least: float | None) -> None:
        since_first = max(now - expectation.poll_at, 0.0)
        delay = min(max(since_first, self._config.backoff_initial_seconds),
                    self._config.backoff_max_seconds)  # fmt: skip
        if at_least is not None:
            delay = max(delay, at_least)
        await self.store.reschedule(expectation, min(now + delay, expectation.deadline))

    async def _finish(
        self,
        expectation: JobExpectation,
        target: Target | None,
        facts: Normalized | None,
        payload: Any,
        *,
        by: str,
    ) -> None:
        source, job_id = expectation.source, expectation.job_id
        slot = terminal_slot(source, job_id)
        now = self._clock()
        try:
            owned = await self._dedupe.claim(slot)
        except DedupeUnavailable:
            await self._again(expectation, now, None)
            return
        if not owned:  # the webhook (or another instance) published it: nothing to add
            await self.store.close(source, job_id)
            return
        event = self._event(expectation, target, facts, payload, now)
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self._sink.publish(event, topic=target.topic if target else None)
        except (SinkUnavailable, TimeoutError) as exc:
            await self._dedupe.release(slot)
            reason = getattr(exc, "reason", "sink_timeout")
            self._metrics.child(self._metrics.publish_failures, self._sink.kind, reason).inc()
            await self._again(expectation, now, None)
            return
        except BaseException:
            await self._dedupe.release(slot)
            raise
        await self._dedupe.commit(slot)
        await self.store.close(source, job_id)
        self._metrics.child(self._metrics.expectations_closed, source, by).inc()
        log.info("reconcile_closed", source=source, job_id=job_id, by=by, status=event.status)

    def _event(
        self,
        expectation: JobExpectation,
        target: Target | None,
        facts: Normalized | None,
        payload: Any,
        now: float,
    ) -> JobEvent:
        at = datetime.fromtimestamp(now, tz=UTC)
        source, job_id = expectation.source, expectation.job_id
        provider = target.provider if target is not None else "unknown"
        if facts is None:
            facts = Normalized(
                job_id=job_id,
                status=JobStatus.FAILED,
                provider_event_type=None,
                error=JobError(
                    code=NEVER_ARRIVED,
                    message=(
                        f"no terminal webhook and no final answer from the provider within "
                        f"{expectation.max_wait_seconds:g} s"
                    ),
                ),
            )
            scheme, key_id = TIMEOUT_SCHEME, "none"
        else:
            scheme = POLL_SCHEME
            key_id = target.poller.verified(job_id).key_id if target is not None else "none"
        return job_event(
            ids.from_delivery(source, f"{POLL_SCHEME}:{job_id}"),
            source,
            provider,
            facts,
            Delivery(id=None, scheme=scheme, key_id=key_id),
            payload,
            at,
            at,
        )
