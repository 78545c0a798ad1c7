"""The embedded sink: JSON lines in ``events.jsonl`` and ``dead-letters.jsonl``, fsynced.

Used when no Kafka is configured, so ``make run`` works on a laptop with nothing else running.
Each line is one canonical event (or dead-letter record) exactly as it would be the Kafka
record value, so tools can switch between the two without a second format.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from gateway.errors import SinkUnavailable
from gateway.settings import LocalSinkConfig
from gateway.sinks.base import Event, Sink
from gateway.sinks.group_commit import GroupCommitFile
from schemas import DeadLetter, WebhookEvent

EVENTS_FILE = "events.jsonl"
WEBHOOK_EVENTS_FILE = "webhook-events.jsonl"
DEAD_LETTERS_FILE = "dead-letters.jsonl"


class LocalLogSink(Sink):
    kind: ClassVar[str] = "local"

    def __init__(self, config: LocalSinkConfig) -> None:
        self.directory = Path(config.directory)
        self._events = GroupCommitFile(self.directory / EVENTS_FILE, fsync=config.fsync)
        self._dead = GroupCommitFile(self.directory / DEAD_LETTERS_FILE, fsync=config.fsync)
        self._webhooks = GroupCommitFile(self.directory / WEBHOOK_EVENTS_FILE, fsync=config.fsync)
        self._open = False

    async def start(self) -> None:
        self._events.open()
        self._dead.open()
        self._webhooks.open()
        self._open = True

    async def close(self) -> None:
        self._open = False
        await self._events.close()
        await self._dead.close()
        await self._webhooks.close()

    def ready(self) -> bool:
        return self._open

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        target = self._webhooks if isinstance(event, WebhookEvent) else self._events
        await self._append(target, event.model_dump_json().encode() + b"\n")

    async def publish_dead_letter(self, record: DeadLetter) -> None:
        await self._append(self._dead, record.model_dump_json().encode() + b"\n")

    async def _append(self, target: GroupCommitFile, line: bytes) -> None:
        if not self._open:
            raise SinkUnavailable("sink_unavailable", "local log is closed")
        try:
            await target.append(line)
        except OSError as exc:
            raise SinkUnavailable("sink_unavailable", f"local log write failed: {exc}") from exc
