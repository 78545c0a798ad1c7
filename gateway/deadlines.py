"""One timer for many awaits that share the same time limit.

``asyncio.timeout()`` arms and disarms an event-loop timer on every call, and every delivery's
publish has one. All publishes get the same limit, so their deadlines expire in the order they
were set: a queue and a single sweep, re-armed at most every ``resolution`` seconds, enforce
them all (measured in bench/: see README). A deadline fires at most ``resolution`` late.

The semantics are ``asyncio.timeout``'s: on expiry the waiting task is cancelled, and the
cancellation is turned into ``TimeoutError`` unless someone else cancelled the task too.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class _Entry:
    __slots__ = ("deadline", "expired", "task")

    def __init__(self, deadline: float, task: asyncio.Task[object]) -> None:
        self.deadline = deadline
        self.task: asyncio.Task[object] | None = task  # None once the await has finished
        self.expired = False


class Deadlines:
    def __init__(self, seconds: float, resolution: float = 0.05) -> None:
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        self.seconds = seconds
        self._resolution = min(resolution, seconds / 10)
        self._entries: collections.deque[_Entry] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        """Deadlines not yet reached (finished awaits included until then)."""
        return len(self._entries)

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` within the limit; ``TimeoutError`` when it takes longer."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadlines.run() must be awaited inside a task")
        loop = task.get_loop()
        if loop is not self._loop:  # a new loop (tests run many): the old one's state is void
            self._loop, self._timer = loop, None
            self._entries.clear()
        entry = _Entry(loop.time() + self.seconds, task)
        self._entries.append(entry)
        if self._timer is None:
            self._timer = loop.call_at(entry.deadline, self._sweep, loop)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if entry.expired and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            entry.task = None

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        entries = self._entries
        while entries and entries[0].deadline <= now:
            entry = entries.popleft()
            if entry.task is not None:
                entry.expired = True
                entry.task.cancel()
        if entries:
            # Not at every head deadline: under load that would be a timer per request again.
            when = max(entries[0].deadline, now + self._resolution)
            self._timer = loop.call_at(when, self._sweep, loop)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
