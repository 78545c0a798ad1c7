"""An append-only file with group commit: one write + fsync serves every waiting appender."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import BinaryIO


class GroupCommitFile:
    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self._fsync = fsync
        self._file: BinaryIO | None = None
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab")

    async def append(self, line: bytes) -> None:
        """Append one line; return once it is on disk (fsynced) with its whole batch."""
        if self._file is None:
            raise OSError("log file is not open")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((line, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())
        # shield: a cancelled request must not cancel the write other requests wait on.
        await asyncio.shield(future)

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

    def _write(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._file is not None:
            self._file.close()
            self._file = None
