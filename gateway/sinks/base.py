"""The sink contract: durably accept an event, or raise ``SinkUnavailable``.

``publish`` returns only once the event is durable (fsynced, or acknowledged by all in-sync
Kafka replicas): the gateway answers 2xx after that and never before.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from schemas import DeadLetter, JobEvent


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

    def topic_for(self, override: str | None) -> str:
        """The destination name an event with this source's ``topic`` override goes to."""
        return override or "events"

    def dead_letter_topic(self) -> str:
        return "dead-letters"

    @abc.abstractmethod
    async def publish(self, event: JobEvent, *, topic: str | None = None) -> None:
        """Durably write ``event``; ``topic`` overrides the default destination."""

    @abc.abstractmethod
    async def publish_dead_letter(self, record: DeadLetter) -> None:
        """Durably write a dead-letter record."""
