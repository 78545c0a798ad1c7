"""An append-only log file with group commit, rotation and retention.

One ``write`` + ``fsync`` serves every appender waiting at that moment. The file only ever
holds whole records:

* on open, a last line without its newline (the process was killed in the middle of a write:
  never acknowledged) is cut off, so the next record does not glue onto it;
* a batch whose write or fsync fails (a full disk) is cut off again before its appenders hear
  of the failure, so no partial record stays behind to be read, or glued onto, later.

Rotation (``Rotation``) renames the active file to the next numbered segment between batches
(see ``gateway.sinks.log_files`` for the names); retention deletes the oldest segments.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gateway.logs import get_logger
from gateway.sinks.log_files import rotated_name, rotated_segments

log = get_logger("gateway.local_log")

_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
_TAIL_STEP = 64 * 1024


@dataclass(frozen=True)
class Rotation:
    """When to start a new segment and which old segments to delete (``None``: never)."""

    rotate_bytes: int | None = None
    rotate_seconds: float | None = None
    retain_bytes: int | None = None
    retain_seconds: float | None = None


class GroupCommitFile:
    def __init__(
        self,
        path: Path,
        *,
        fsync: bool = True,
        rotation: Rotation | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._fsync = fsync
        self._rotation = rotation or Rotation()
        self._clock = clock
        self._fd: int | None = None
        self._opened = False
        #: Bytes of whole records in the active file; the file is cut back to this on failure.
        self._size = 0
        #: The file may hold bytes past ``_size`` (a failed write that could not be cut off).
        self._dirty = False
        #: When the active file's first record was written (``None``: it is empty).
        self._born: float | None = None
        self._next_number = 1
        # The flusher and the periodic maintenance both run in worker threads.
        self._lock = threading.Lock()
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def open(self) -> None:
        """Open (creating it if needed) and repair the active file; apply retention.

        An ``OSError`` here (a full or read-only disk) propagates; ``append`` tries again.
        """
        self._opened = True
        with self._lock:
            self._ensure_open()
            self._retain(self._clock())

    async def append(self, line: bytes) -> None:
        """Append one line; return once it is on disk (fsynced) with its whole batch."""
        if not self._opened:
            raise OSError("log file is not open")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((line, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())
        # shield: a cancelled request must not cancel the write other requests wait on.
        await asyncio.shield(future)

    async def maintain(self) -> None:
        """Rotate an idle file that is past its age, and apply retention (called periodically,
        so an idle log still ages out)."""
        if self._opened:
            await asyncio.to_thread(self._maintain)

    async def _flush_loop(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            data = b"".join(line for line, _ in batch)
            try:
                # The write and fsync block, so they run off the event loop; every request
                # that arrived meanwhile joins the next batch: that is the group commit.
                await asyncio.to_thread(self._write, data)
            except OSError as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    # -- in worker threads, under the lock ------------------------------------------------

    def _write(self, data: bytes) -> None:
        with self._lock:
            fd = self._ensure_open()
            now = self._clock()
            if self._due_by_age(now):
                self._rotate(now)
                fd = self._ensure_open()
            start = self._size
            try:
                _write_all(fd, data)
                if self._fsync:
                    os.fsync(fd)
            except OSError:
                self._cut_back(fd, start)
                raise
            self._size = start + len(data)
            if self._born is None:
                self._born = now
            limit = self._rotation.rotate_bytes
            if limit is not None and self._size >= limit:
                self._rotate(now)

    def _maintain(self) -> None:
        with self._lock:
            now = self._clock()
            if self._fd is not None and self._due_by_age(now):
                self._rotate(now)
            self._retain(now)

    def _ensure_open(self) -> int:
        if self._fd is not None:
            if self._dirty:
                self._cut_back(self._fd, self._size)
                if self._dirty:
                    raise OSError("log file holds a failed write that could not be cut off")
            return self._fd
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, _OPEN_FLAGS, 0o666)
        try:
            size, dropped = _repair_torn_tail(fd, fsync=self._fsync)
        except OSError:
            os.close(fd)
            raise
        if dropped:
            log.warning("local_log_torn_tail_dropped", file=self.path.name, bytes=dropped)
        self._fd, self._size, self._dirty = fd, size, False
        self._born = _first_record_time(self.path) if size else None
        numbers = [number for number, _ in rotated_segments(self.path.parent, self.path.name)]
        self._next_number = max(numbers, default=0) + 1
        return fd

    def _cut_back(self, fd: int, size: int) -> None:
        try:
            os.ftruncate(fd, size)
            if self._fsync:
                os.fsync(fd)
        except OSError as exc:
            failure = exc.strerror or str(exc)
        else:
            self._dirty = False
            return
        # Writes stay refused (``_ensure_open`` tries the cut again) rather than glue records
        # onto bytes that were never acknowledged.
        self._dirty = True
        log.error("local_log_cut_back_failed", file=self.path.name, error=failure)

    def _due_by_age(self, now: float) -> bool:
        limit = self._rotation.rotate_seconds
        return limit is not None and self._born is not None and now - self._born >= limit

    def _rotate(self, now: float) -> None:
        """Rename the active file to the next segment and start a new one.

        A failure leaves the active file as it was (rotation is tried again later): the
        records written are durable either way.
        """
        if self._fd is None or self._size == 0:
            return
        target = self.path.with_name(rotated_name(self.path.name, self._next_number))
        try:
            os.rename(self.path, target)
        except OSError as exc:
            log.warning("local_log_rotate_failed", file=self.path.name, error=exc.strerror)
            return
        os.close(self._fd)
        self._fd, self._size, self._born = None, 0, None
        self._next_number += 1
        if self._fsync:
            _fsync_directory(self.path.parent)
        log.info("local_log_rotated", file=self.path.name, segment=target.name)
        self._retain(now)
        # The new active file now, so readers following the log find it; if the disk refuses
        # even that, the next write tries again.
        with contextlib.suppress(OSError):
            self._ensure_open()

    def _retain(self, now: float) -> None:
        keep_bytes = self._rotation.retain_bytes
        keep_seconds = self._rotation.retain_seconds
        if keep_bytes is None and keep_seconds is None:
            return
        sized: list[tuple[Path, int, float]] = []
        for _, path in rotated_segments(self.path.parent, self.path.name):
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                sized.append((path, stat.st_size, stat.st_mtime))
        total = sum(size for _, size, _ in sized)
        for path, size, modified in sized:  # oldest first
            too_old = keep_seconds is not None and now - modified > keep_seconds
            too_much = keep_bytes is not None and total > keep_bytes
            if not (too_old or too_much):
                break
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("local_log_retention_failed", segment=path.name, error=exc.strerror)
                return
            total -= size
            log.info("local_log_segment_deleted", segment=path.name,
                     reason="age" if too_old else "size")  # fmt: skip

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        self._opened = False
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _repair_torn_tail(fd: int, *, fsync: bool) -> tuple[int, int]:
    """Cut the file after its last newline; return (size kept, bytes dropped)."""
    size = os.fstat(fd).st_size
    position = size
    keep = 0
    while position > 0:
        step = min(_TAIL_STEP, position)
        position -= step
        newline = os.pread(fd, step, position).rfind(b"\n")
        if newline != -1:
            keep = position + newline + 1
            break
    if keep < size:
        os.ftruncate(fd, keep)
        if fsync:
            os.fsync(fd)
    return keep, size - keep


def _first_record_time(path: Path) -> float:
    """When the file's first record was received; its last write time if that cannot be read."""
    try:
        with path.open("rb") as handle:
            first = handle.readline()
        return datetime.fromisoformat(json.loads(first)["received_at"]).timestamp()
    except (OSError, ValueError, KeyError, TypeError):
        try:
            return path.stat().st_mtime
        except OSError:
            return time.time()


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable: without it a crash could bring the old name back."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
