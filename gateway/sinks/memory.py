"""An in-memory sink for tests and embedding; it can be told to fail, to exercise 503 paths."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from gateway.errors import SinkUnavailable
from gateway.sinks.base import Event, Sink
from schemas import DeadLetter, JobEvent, WebhookEvent


class MemorySink(Sink):
    kind: ClassVar[str] = "memory"

    def __init__(self) -> None:
        self.events: list[tuple[str | None, JobEvent]] = []
        self.webhook_events: list[tuple[str | None, WebhookEvent]] = []
        self.dead_letters: list[DeadLetter] = []
        self.available = True
        self.delay_seconds = 0.0
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.started = False

    def ready(self) -> bool:
        return self.started and self.available

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        await self._gate()
        if isinstance(event, WebhookEvent):
            self.webhook_events.append((topic, event))
        else:
            self.events.append((topic, event))

    async def publish_dead_letter(self, record: DeadLetter) -> None:
        await self._gate()
        self.dead_letters.append(record)

    async def _gate(self) -> None:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if not self.available:
            raise SinkUnavailable("sink_unavailable", "memory sink switched off")
