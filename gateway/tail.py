"""``events tail``: the last N records of a log (across its rotated segments), optionally
following it through rotations; or of a Kafka topic."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import BinaryIO

from gateway.sinks.log_files import complete_lines, recover, rotated_segments


def _emit(line: bytes, pretty: bool) -> bool:
    """Print the record in ``line``; ``False`` if it holds none (a damaged line)."""
    record = recover(line)
    if record is None:
        return False
    text = record.decode("utf-8", errors="replace")
    if pretty:
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    print(text, flush=True)
    return True


def _whole_lines(handle: BinaryIO, keep: int | None = None) -> list[bytes]:
    """Read ``handle`` to its last newline (keeping the last ``keep`` lines); a partial last
    line is left for a later read."""
    lines: deque[bytes] = deque(maxlen=keep)
    while True:
        position = handle.tell()
        line = handle.readline()
        if not line.endswith(b"\n"):
            handle.seek(position)
            return list(lines)
        lines.append(line)


def _open(path: Path) -> BinaryIO | None:
    try:
        return path.open("rb")
    except FileNotFoundError:
        return None


def tail(
    directory: Path, name: str, *, lines: int, follow: bool, pretty: bool, poll: float = 0.25
) -> int:
    """Print the last ``lines`` records of the log ``name``; with ``follow``, keep printing
    new ones, from the rotated segment to the new active file when the writer rotates."""
    active = directory / name
    handle = _open(active)
    while handle is None and follow and not rotated_segments(directory, name):
        time.sleep(poll)
        handle = _open(active)
    try:
        return _tail(directory, name, handle, lines=lines, follow=follow, pretty=pretty,
                     poll=poll)  # fmt: skip
    except KeyboardInterrupt:
        return 0


def _tail(
    directory: Path,
    name: str,
    handle: BinaryIO | None,
    *,
    lines: int,
    follow: bool,
    pretty: bool,
    poll: float,
) -> int:
    active = directory / name
    try:
        current = os.fstat(handle.fileno()).st_ino if handle is not None else None
        # Opened first, listed second: a rotation in between shows our file among the segments.
        older = [p for _, p in rotated_segments(directory, name) if _inode(p) != current]
        if handle is None and not older:
            print(f"no events yet: {active} does not exist", file=sys.stderr)
            return 1
        if handle is None:
            current = _inode(older[-1])  # followed from the newest segment on
        wanted = max(lines, 0)
        shown = _whole_lines(handle, wanted) if handle is not None else []
        for path in reversed(older):
            if len(shown) >= wanted:
                break
            shown = list(deque(complete_lines(path), maxlen=wanted - len(shown))) + shown
        damaged = sum(1 for line in shown if line.strip() and not _emit(line, pretty))
        if not follow:
            if damaged:
                print(f"skipped {damaged} line(s) that hold no record", file=sys.stderr)
            return 0
        while True:
            if handle is not None:
                fresh = _whole_lines(handle)
                for line in fresh:
                    _emit(line, pretty)
                if fresh:
                    continue
                if _inode(active) != current:
                    # Rotated: the writer renames only after a whole batch, so what the old
                    # file holds now is all it will ever hold.
                    for line in _whole_lines(handle):
                        _emit(line, pretty)
                    handle.close()
                    handle = None
            if handle is None:
                handle = _open(active)
                if handle is not None:
                    previous, current = current, os.fstat(handle.fileno()).st_ino
                    # Several rotations may have happened since the last look: the segments
                    # between the one we read and the new active file, in order.
                    for path in _segments_between(directory, name, previous, current):
                        for line in complete_lines(path):
                            _emit(line, pretty)
                    continue
            time.sleep(poll)
    finally:
        if handle is not None:
            handle.close()


def _segments_between(
    directory: Path, name: str, after: int | None, before: int | None
) -> list[Path]:
    """The rotated segments newer than the one with inode ``after`` and older than the one with
    inode ``before`` (the file just opened, if it was rotated meanwhile)."""
    found: list[Path] = []
    started = after is None
    for _, path in rotated_segments(directory, name):
        inode = _inode(path)
        if inode == before and before is not None:
            break
        if started:
            found.append(path)
        elif inode == after:
            started = True
    return found if started else []


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


async def tail_kafka(
    bootstrap: str,
    topic: str,
    *,
    lines: int,
    follow: bool,
    pretty: bool,
    idle_exit_seconds: float | None = None,
) -> int:
    """The last ``lines`` records of every partition of ``topic``, then new ones if ``follow``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        await consumer.start()
    except Exception as exc:  # noqa: BLE001 - any connection failure is reported the same way
        print(f"cannot reach Kafka at {bootstrap}: {type(exc).__name__}", file=sys.stderr)
        return 1
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            print(f"no events yet: topic {topic} does not exist", file=sys.stderr)
            return 1
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(starts[tp], ends[tp] - max(lines, 0)))
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    _emit((message.value or b"") + b"\n", pretty)
            if batches:
                idle_since = loop.time()
                continue
            caught_up = [tp for tp in tps if await consumer.position(tp) < ends[tp]] == []
            if not follow and caught_up:
                return 0
            if idle_exit_seconds is not None and loop.time() - idle_since > idle_exit_seconds:
                return 0
    except KeyboardInterrupt:
        return 0
    finally:
        await consumer.stop()
