"""The embedded sink: JSON lines, fsynced, in three logs with rotation and retention.

Used when no Kafka is configured, so ``make run`` works on a laptop with nothing else running.
Each line is one record exactly as it would be the Kafka record value, so tools can switch
between the two without a second format:

* ``events.jsonl``: canonical job events (``JobEvent``);
* ``webhook-events.jsonl``: verified passthrough events (``WebhookEvent``);
* ``dead-letters.jsonl``: authentic deliveries that could not be mapped (``DeadLetter``).

One process writes a directory (it holds ``.lock``). A failed write (a full disk) answers 503,
turns readiness off, and leaves no partial record; a probe write brings readiness back once
space is free again, with no restart. See docs/local-log.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
from pathlib import Path
from typing import ClassVar, TextIO

from gateway.errors import ConfigError, SinkUnavailable
from gateway.logs import get_logger
from gateway.settings import LocalSinkConfig
from gateway.sinks.base import Event, Sink
from gateway.sinks.group_commit import GroupCommitFile, Rotation
from schemas import DeadLetter, WebhookEvent

EVENTS_FILE = "events.jsonl"
WEBHOOK_EVENTS_FILE = "webhook-events.jsonl"
DEAD_LETTERS_FILE = "dead-letters.jsonl"
LOG_FILES = (EVENTS_FILE, WEBHOOK_EVENTS_FILE, DEAD_LETTERS_FILE)
LOCK_FILE = ".lock"
PROBE_FILE = ".space-probe"

log = get_logger("gateway.local_log")

#: While writes fail, how often a probe write checks whether they would succeed again.
PROBE_INTERVAL_SECONDS = 0.5
#: About the size of a large batch: space for this is space for the next deliveries.
PROBE_BYTES = 64 * 1024
#: How often an idle log is checked for age-based rotation and retention.
MAINTAIN_INTERVAL_SECONDS = 30.0


class LocalLogSink(Sink):
    kind: ClassVar[str] = "local"

    def __init__(self, config: LocalSinkConfig) -> None:
        self.directory = Path(config.directory)
        self._fsync = config.fsync
        rotation = Rotation(
            rotate_bytes=config.rotate_bytes,
            rotate_seconds=config.rotate_seconds,
            retain_bytes=config.retain_bytes,
            retain_seconds=config.retain_seconds,
        )
        self._files = {
            name: GroupCommitFile(self.directory / name, fsync=config.fsync, rotation=rotation)
            for name in LOG_FILES
        }
        self._events = self._files[EVENTS_FILE]
        self._webhooks = self._files[WEBHOOK_EVENTS_FILE]
        self._dead = self._files[DEAD_LETTERS_FILE]
        self._lock: TextIO | None = None
        self._open = False
        self._writable = True
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_directory(self.directory)
        self._open = True
        for file in self._files.values():
            try:
                file.open()
            except OSError as exc:
                # Not fatal: the watcher probes until the disk takes writes again.
                self._failed(exc)
        self._watcher = asyncio.create_task(self._watch(), name="local-log-watch")

    async def close(self) -> None:
        self._open = False
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for file in self._files.values():
            await file.close()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    def ready(self) -> bool:
        return self._open and self._writable

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
            self._failed(exc)
            raise SinkUnavailable(
                "sink_unavailable", f"local log write failed: {exc.strerror or exc}"
            ) from exc
        if not self._writable:
            self._recovered("write")

    def _failed(self, exc: OSError) -> None:
        if self._writable:
            log.error("local_log_unwritable", directory=str(self.directory),
                      error=exc.strerror or str(exc), errno=exc.errno)  # fmt: skip
        self._writable = False

    def _recovered(self, how: str) -> None:
        self._writable = True
        log.info("local_log_writable_again", directory=str(self.directory), checked_by=how)

    async def _watch(self) -> None:
        """Readiness off takes the gateway out of its load balancer, so no delivery would come
        to find out that the disk has room again: a probe write does. Idle logs age out here."""
        loop = asyncio.get_running_loop()
        last_maintenance = loop.time()
        while self._open:
            await asyncio.sleep(PROBE_INTERVAL_SECONDS)
            if not self._writable:
                try:
                    await asyncio.to_thread(self._probe)
                except OSError:
                    continue
                if not self._writable:
                    self._recovered("probe")
            elif loop.time() - last_maintenance >= MAINTAIN_INTERVAL_SECONDS:
                last_maintenance = loop.time()
                for file in self._files.values():
                    try:
                        await file.maintain()
                    except OSError as exc:
                        log.warning("local_log_maintenance_failed", error=exc.strerror)

    def _probe(self) -> None:
        """Write, sync and delete a probe file; raise ``OSError`` if the disk refuses."""
        path = self.directory / PROBE_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            if os.write(fd, b"\0" * PROBE_BYTES) < PROBE_BYTES:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()


def _lock_directory(directory: Path) -> TextIO:
    """Hold ``directory/.lock`` for this process: a second writer would break the cut-back of
    failed writes and the rotation, which both assume they own the files."""
    handle = (directory / LOCK_FILE).open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(
            "local_log_in_use",
            f"the local log in {directory} is written by {holder}; stop it first, "
            "or give this process another sink.local.directory",
        ) from None
    with contextlib.suppress(OSError):  # only a hint for the message above; a full disk
        handle.seek(0)  # must not stop the gateway from starting (it probes instead)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
    return handle
