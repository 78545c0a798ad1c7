"""The sink contract: durably accept an event, or raise ``SinkUnavailable``.

``publish`` returns only once the event is durable (fsynced, or acknowledged by all in-sync
Kafka replicas): the gateway answers 2xx after that and never before.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from schemas import DeadLetter, JobEvent, WebhookEvent

#: What a sink publishes besides dead letters: a job event, or a verified passthrough event.
Event = JobEvent | WebhookEvent


class Sink(abc.ABC):
    kind: ClassVar[str]

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect / open files. Must not fail when the backend is briefly away: retry instead."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush what is pending and release resources."""

    @abc.abstractmethod
    def ready(self) -> bool:
        """Whether a publish would be expected to succeed now (drives ``/readyz``)."""

    def topic_for(self, override: str | None, *, passthrough: bool = False) -> str:
        """The destination an event with this source's ``topic`` override goes to; passthrough
        events (``WebhookEvent``) have their own default, so job consumers never meet them."""
        return override or ("webhook-events" if passthrough else "events")

    def dead_letter_topic(self) -> str:
        return "dead-letters"

    def expect_passthrough(self) -> None:  # noqa: B027 - optional hook
        """Called before :meth:`start` when some source may publish ``WebhookEvent``s, so the
        sink checks (or creates) that destination too."""

    @abc.abstractmethod
    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        """Durably write ``event``; ``topic`` overrides the default destination."""

    @abc.abstractmethod
    async def publish_dead_letter(self, record: DeadLetter) -> None:
        """Durably write a dead-letter record."""
