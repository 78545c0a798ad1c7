"""The path of one delivery, after the HTTP layer has the raw body.

1. verify the signature on the exact bytes                        401 + reason
   (a signed endpoint validation, e.g. Slack's url_verification, is answered here: no event)
2. event id from the delivery id, when the provider sends one
3. claim the id: already committed -> 200 duplicate; in flight -> wait for the first copy
4. parse + normalize to a job (``JobEvent``) or a passthrough (``WebhookEvent``);
   authentic but unmappable -> dead-letter record, 200
5. (no delivery id) event id from source + job + status + body hash (a passthrough: source +
   body hash); claim it
6. (reconciliation on) a terminal event of an expected job claims the job's terminal slot:
   taken by a poll already -> 200 duplicate (gateway/reconcile/edge.py)
7. publish to the sink within the deadline                         503 + Retry-After
8. commit the id (and the slot), answer 200

Nothing here knows a provider's header names or an HTTP object; the outcome goes back up and
the HTTP layer turns it into a response, a log line and metrics.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from adapters import (
    Adapter,
    NormalizationError,
    Normalized,
    TemporaryError,
    VerificationError,
    Verified,
)
from adapters.base import NO_REQUEST, Passthrough, Reply, RequestMeta
from adapters.primitives.headers import Headers
from gateway import event_id as ids
from gateway.client_address import IPNetwork
from gateway.deadlines import Deadlines
from gateway.dedupe import DedupeStore
from gateway.errors import DedupeUnavailable, SinkUnavailable
from gateway.sinks.base import Sink
from schemas import DeadLetter, Delivery, JobEvent, WebhookEvent

if TYPE_CHECKING:  # redis is imported only when reconciliation is on
    from gateway.reconcile.edge import TerminalGate

# Headers worth keeping on a dead letter for diagnosis; signatures and credentials never are.
_DIAGNOSTIC_HEADERS = (
    "content-type",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "svix-id",
    "svix-timestamp",
    "x-fal-webhook-request-id",
    "x-fal-webhook-user-id",
    "x-fal-webhook-timestamp",
    "x-request-id",
)


_UNPARSED: Any = object()  # the body has not been parsed yet


@dataclass(frozen=True, slots=True)
class Source:
    """A configured source: its name, adapter and where its events go."""

    name: str
    adapter: Adapter
    topic: str | None = None
    #: Client networks allowed to deliver (empty: any), checked before the body is read.
    allowed_ips: tuple[IPNetwork, ...] = ()

    @property
    def provider(self) -> str:
        return self.adapter.event_provider


@dataclass(slots=True)
class Outcome:
    """What happened to one delivery; the HTTP layer renders it."""

    status: int
    outcome: str  # accepted | duplicate | dead_letter | handshake | rejected | unavailable
    reason: str | None = None
    event_id: str | None = None
    delivery_id: str | None = None
    key_id: str | None = None
    scheme: str | None = None
    publish_seconds: float | None = None
    retry_after: int | None = None
    #: The event published was a ``WebhookEvent`` (it went to the passthrough destination).
    passthrough: bool = False
    #: A handshake's answer, sent as it is instead of :meth:`body`.
    reply: Reply | None = None

    def body(self) -> dict[str, Any]:
        if self.status == 200:
            answer: dict[str, Any] = {"received": True, "event_id": self.event_id}
            if self.outcome == "duplicate":
                answer["duplicate"] = True
            elif self.outcome == "dead_letter":
                answer["dead_letter"] = True
            return answer
        return {"error": self.reason}


class Pipeline:
    def __init__(
        self,
        sources: Mapping[str, Source],
        sink: Sink,
        dedupe: DedupeStore,
        *,
        publish_timeout_seconds: float,
        retry_after_seconds: int,
        wall_clock: Callable[[], float],
        perf_clock: Callable[[], float],
        terminal_gate: TerminalGate | None = None,
    ) -> None:
        self.sources = sources
        #: Set when reconciliation is on: a terminal event of an expected job claims its slot.
        self.terminal_gate = terminal_gate
        self.sink = sink
        self.dedupe = dedupe
        self._deadlines = Deadlines(publish_timeout_seconds)
        self._retry_after = retry_after_seconds
        self._now = wall_clock
        self._perf = perf_clock

    async def handle(
        self, source: Source, raw: bytes, headers: Headers, request: RequestMeta = NO_REQUEST
    ) -> Outcome:
        adapter = source.adapter
        received = self._now()
        try:
            verified = await adapter.verify(raw, headers, received, request)
        except VerificationError as exc:
            return Outcome(401, "rejected", exc.reason)
        except TemporaryError as exc:
            return Outcome(503, "unavailable", exc.reason, retry_after=self._retry_after)
        verified_at = self._now()

        payload: Any = _UNPARSED
        if adapter.has_handshake:
            try:
                payload = adapter.parse(raw, request)
            except NormalizationError:
                payload = _UNPARSED  # not a handshake; normalizing dead-letters it below
            else:
                handled = await self._handshake(adapter, payload, verified, request)
                if handled is not None:
                    return handled

        claimed: str | None = None
        try:
            if verified.delivery_id is not None:
                event_id = ids.from_delivery(source.name, verified.delivery_id)
                if not await self.dedupe.claim(event_id):
                    return self._outcome(200, "duplicate", verified, event_id)
                claimed = event_id
            try:
                if payload is _UNPARSED:
                    payload = adapter.parse(raw, request)
                facts = adapter.normalize(payload, verified, received)
            except NormalizationError as exc:
                return await self._dead_letter(
                    source, raw, headers, verified, received, exc, claimed
                )
            except VerificationError as exc:
                return self._outcome(401, "rejected", verified, None, exc.reason)
            if claimed is None:
                body_hash = hashlib.sha256(raw).digest()
                if isinstance(facts, Passthrough):
                    event_id = ids.from_passthrough(source.name, body_hash)
                else:
                    event_id = ids.from_content(source.name, facts.job_id, facts.status, body_hash)
                if not await self.dedupe.claim(event_id):
                    return self._outcome(200, "duplicate", verified, event_id)
                claimed = event_id
            event = build_any_event(
                claimed,
                source.name,
                source.provider,
                facts,
                verified,
                payload,
                _utc(received),
                _utc(verified_at),
            )
            gate, ticket = self.terminal_gate, None
            if gate is not None and isinstance(facts, Normalized) and facts.status.terminal:
                ticket = await gate.enter(source.name, facts.job_id)
                if ticket is not None and not ticket.owned:  # a poll published it first
                    await self.dedupe.commit(claimed)
                    done, claimed = self._outcome(200, "duplicate", verified, claimed), None
                    return done
            started = self._perf()
            failure = await self._publish(self.sink.publish(event, topic=source.topic))
            elapsed = self._perf() - started
            if gate is not None and ticket is not None:
                await gate.settle(ticket, published=failure is None, now=self._now())
            if failure is not None:
                outcome = self._outcome(503, "unavailable", verified, claimed, failure)
                outcome.retry_after = self._retry_after
                outcome.publish_seconds = elapsed
                return outcome
            await self.dedupe.commit_soon(claimed)
            done = self._outcome(200, "accepted", verified, claimed)
            done.publish_seconds = elapsed
            done.passthrough = isinstance(event, WebhookEvent)
            claimed = None
        except DedupeUnavailable as exc:
            # Not a sink failure (outcome "refused"): dedupe_store_errors_total counts it.
            refused = self._outcome(503, "refused", verified, None, exc.reason)
            refused.retry_after = self._retry_after
            return refused
        else:
            return done
        finally:
            if claimed is not None:
                await self.dedupe.release(claimed)

    async def _handshake(
        self, adapter: Adapter, payload: Any, verified: Verified, request: RequestMeta
    ) -> Outcome | None:
        """A signed endpoint validation answers here; nothing is claimed or published."""
        try:
            reply = await adapter.handshake(payload, verified, request)
        except VerificationError as exc:
            return self._outcome(401, "rejected", verified, None, exc.reason)
        except TemporaryError as exc:
            outcome = self._outcome(503, "unavailable", verified, None, exc.reason)
            outcome.retry_after = self._retry_after
            return outcome
        if reply is None:
            return None
        outcome = self._outcome(reply.status, "handshake", verified, None, reply.kind)
        outcome.reply = reply
        return outcome

    async def _publish(self, write: Any) -> str | None:
        """Await a sink write under the deadline; return a failure reason or ``None``."""
        try:
            await self._deadlines.run(write)
        except TimeoutError:
            return "sink_timeout"
        except SinkUnavailable as exc:
            return exc.reason
        return None

    async def _dead_letter(
        self,
        source: Source,
        raw: bytes,
        headers: Headers,
        verified: Verified,
        received: float,
        error: NormalizationError,
        claimed: str | None,
    ) -> Outcome:
        event_id = claimed
        if event_id is None:
            event_id = ids.from_body(source.name, hashlib.sha256(raw).digest())
            if not await self.dedupe.claim(event_id):
                return self._outcome(200, "duplicate", verified, event_id)
        record = DeadLetter(
            event_id=event_id,
            source=source.name,
            provider=source.provider,
            reason=error.reason,
            detail=error.detail,
            received_at=_utc(received),
            delivery=_delivery(verified),
            headers=_diagnostic_headers(headers, source.adapter.sensitive_headers),
            raw_body_b64=base64.b64encode(raw).decode(),
        )
        started = self._perf()
        failure = await self._publish(self.sink.publish_dead_letter(record))
        elapsed = self._perf() - started
        if failure is not None:
            if claimed is None:
                await self.dedupe.release(event_id)
            outcome = self._outcome(503, "unavailable", verified, event_id, failure)
            outcome.retry_after = self._retry_after
            outcome.publish_seconds = elapsed
            return outcome
        await self.dedupe.commit(event_id)
        done = self._outcome(200, "dead_letter", verified, event_id, error.reason)
        done.publish_seconds = elapsed
        return done

    @staticmethod
    def _outcome(
        status: int,
        outcome: str,
        verified: Verified,
        event_id: str | None,
        reason: str | None = None,
    ) -> Outcome:
        return Outcome(
            status,
            outcome,
            reason,
            event_id=event_id,
            delivery_id=verified.delivery_id,
            key_id=verified.key_id,
            scheme=verified.scheme,
        )


def build_event(
    event_id: str,
    source: str,
    provider: str,
    facts: Normalized,
    verified: Verified,
    payload: Any,
    received_at: datetime,
    verified_at: datetime,
) -> JobEvent:
    """The canonical event from an adapter's facts plus what the gateway knows."""
    return job_event(
        event_id, source, provider, facts, _delivery(verified), payload, received_at, verified_at
    )


def job_event(
    event_id: str,
    source: str,
    provider: str,
    facts: Normalized,
    delivery: Delivery,
    payload: Any,
    received_at: datetime,
    verified_at: datetime,
) -> JobEvent:
    """A ``JobEvent`` from normalized facts: a delivery's, or a poll's or a timeout's (the
    reconciler), which say how they were obtained in ``delivery``."""
    return JobEvent(
        event_id=event_id,
        source=source,
        provider=provider,
        job_id=facts.job_id,
        status=facts.status,
        provider_event_type=facts.provider_event_type,
        outputs=facts.outputs,
        error=facts.error,
        metrics=facts.metrics,
        occurred_at=facts.occurred_at,
        received_at=received_at,
        verified_at=verified_at,
        delivery=delivery,
        raw=payload,
    )


def build_any_event(
    event_id: str,
    source: str,
    provider: str,
    facts: Normalized | Passthrough,
    verified: Verified,
    payload: Any,
    received_at: datetime,
    verified_at: datetime,
) -> JobEvent | WebhookEvent:
    """A ``WebhookEvent`` for a passthrough, else the ``JobEvent``."""
    if isinstance(facts, Passthrough):
        return build_webhook_event(
            event_id, source, provider, facts, verified, payload, received_at, verified_at
        )
    return build_event(
        event_id, source, provider, facts, verified, payload, received_at, verified_at
    )


def build_webhook_event(
    event_id: str,
    source: str,
    provider: str,
    facts: Passthrough,
    verified: Verified,
    payload: Any,
    received_at: datetime,
    verified_at: datetime,
) -> WebhookEvent:
    """The canonical passthrough event for a verified delivery that is not a job."""
    return WebhookEvent(
        event_id=event_id,
        source=source,
        provider=provider,
        event_type=facts.event_type,
        delivery=_delivery(verified),
        occurred_at=facts.occurred_at,
        received_at=received_at,
        verified_at=verified_at,
        raw=payload,
    )


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _delivery(verified: Verified) -> Delivery:
    return Delivery(
        id=verified.delivery_id,
        scheme=verified.scheme,
        key_id=verified.key_id,
        signed_at=_utc(verified.signed_at) if verified.signed_at is not None else None,
    )


def _diagnostic_headers(headers: Headers, sensitive: frozenset[str]) -> dict[str, str]:
    kept: dict[str, str] = {}
    for name in _DIAGNOSTIC_HEADERS:
        if name in sensitive:
            continue
        value = headers.get(name)
        if value is not None:
            # aiohttp hands bytes that are not UTF-8 over as lone surrogates, which no JSON
            # encoder accepts: the record would fail to serialize on every retry of an
            # authentic delivery. Undecodable bytes become U+FFFD (found by fuzz/).
            kept[name] = value[:256].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return kept
