"""Rotation and retention of the local log, and the tools reading across rotated segments."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest

from gateway.cli import main
from gateway.errors import ConfigError
from gateway.replay import replay_configured
from gateway.settings import LocalSinkConfig, Settings
from gateway.sinks.group_commit import GroupCommitFile, Rotation
from gateway.sinks.local_log import (
    DEAD_LETTERS_FILE,
    EVENTS_FILE,
    WEBHOOK_EVENTS_FILE,
    LocalLogSink,
)
from gateway.sinks.log_files import rotated_segments, segments
from tests.log_records import event_ids, job_event, openai_dead_letter, webhook_event
from tests.support import EXAMPLE_CONFIG, example_settings

NO_RETENTION: dict[str, Any] = {"retain_bytes": None, "retain_seconds": None}


def local_config(directory: Path, **changes: Any) -> LocalSinkConfig:
    return LocalSinkConfig(directory=directory, fsync=False, **{**NO_RETENTION, **changes})


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def line(n: int) -> bytes:
    return job_event(n).model_dump_json().encode() + b"\n"


async def test_rotates_by_size_and_keeps_every_record_in_order(tmp_path: Path) -> None:
    sink = LocalLogSink(local_config(tmp_path, rotate_bytes=4096))
    await sink.start()
    for n in range(60):  # one at a time: each write is its own batch
        await sink.publish(job_event(n))
    await asyncio.gather(*(sink.publish(job_event(n)) for n in range(60, 120)))
    await sink.close()
    rotated = rotated_segments(tmp_path, EVENTS_FILE)
    assert len(rotated) >= 5
    assert [number for number, _ in rotated] == list(range(1, len(rotated) + 1))
    # A segment is closed by the batch that takes it past the limit, never in mid-batch.
    sequential = [path for _, path in rotated][:3]
    assert all(4096 <= path.stat().st_size < 4096 + len(line(0)) + 16 for path in sequential)
    assert event_ids(tmp_path, EVENTS_FILE) == [job_event(n).event_id for n in range(120)]


async def test_rotates_by_age_before_the_next_write(tmp_path: Path) -> None:
    clock = Clock()
    log = GroupCommitFile(tmp_path / EVENTS_FILE, fsync=False,
                          rotation=Rotation(rotate_seconds=60), clock=clock)  # fmt: skip
    log.open()

    await log.append(line(1))
    clock.now += 59
    await log.append(line(2))
    assert rotated_segments(tmp_path, EVENTS_FILE) == []
    clock.now += 2  # the file's first record is now 61 s old
    await log.append(line(3))
    [(_, first)] = rotated_segments(tmp_path, EVENTS_FILE)
    assert len(first.read_bytes().splitlines()) == 2
    assert json.loads((tmp_path / EVENTS_FILE).read_bytes())["event_id"] == job_event(3).event_id
    await log.close()


async def test_age_survives_a_restart_and_an_idle_log_ages_out(tmp_path: Path) -> None:
    """After a restart the age comes from the first record, not from when the file was
    opened; and maintenance rotates a file that no write comes to."""
    old = datetime.now(tz=UTC) - timedelta(hours=2)
    (tmp_path / EVENTS_FILE).write_bytes(job_event(1, old).model_dump_json().encode() + b"\n")
    log = GroupCommitFile(
        tmp_path / EVENTS_FILE, fsync=False, rotation=Rotation(rotate_seconds=3600)
    )
    log.open()
    await log.maintain()
    assert len(rotated_segments(tmp_path, EVENTS_FILE)) == 1
    assert (tmp_path / EVENTS_FILE).read_bytes() == b""
    await log.close()


async def test_retention_by_size_deletes_the_oldest_segments(tmp_path: Path) -> None:
    log = GroupCommitFile(tmp_path / EVENTS_FILE, fsync=False,
                          rotation=Rotation(rotate_bytes=2048, retain_bytes=8192))  # fmt: skip
    log.open()

    for n in range(200):
        await log.append(line(n))
    await log.close()
    rotated = rotated_segments(tmp_path, EVENTS_FILE)
    assert sum(path.stat().st_size for _, path in rotated) <= 8192
    assert rotated[0][0] > 1  # the first segments are gone
    ids = event_ids(tmp_path, EVENTS_FILE)
    assert ids[-1] == job_event(199).event_id  # the newest are all kept, in order
    assert ids == [job_event(n).event_id for n in range(200 - len(ids), 200)]


async def test_retention_by_age_deletes_old_segments_only(tmp_path: Path) -> None:
    clock = Clock()
    log = GroupCommitFile(tmp_path / EVENTS_FILE, fsync=False,
                          rotation=Rotation(rotate_bytes=1024, retain_seconds=3600),
                          clock=clock)  # fmt: skip
    log.open()

    for n in range(6):
        await log.append(line(n))
    before = rotated_segments(tmp_path, EVENTS_FILE)
    assert len(before) >= 3
    for _, path in before[:2]:  # written two hours ago
        os.utime(path, (clock.now - 7200, clock.now - 7200))
    await log.maintain()
    after = rotated_segments(tmp_path, EVENTS_FILE)
    assert after == before[2:]
    await log.close()


async def test_all_three_logs_rotate(tmp_path: Path) -> None:
    sink = LocalLogSink(local_config(tmp_path, rotate_bytes=2048))
    await sink.start()
    for n in range(20):
        await sink.publish(job_event(n))
        await sink.publish(webhook_event(n))
        await sink.publish_dead_letter(openai_dead_letter(n))
    await sink.close()
    for name in (EVENTS_FILE, WEBHOOK_EVENTS_FILE, DEAD_LETTERS_FILE):
        assert len(rotated_segments(tmp_path, name)) >= 2, name
        assert len(event_ids(tmp_path, name)) == 20, name


async def test_one_writer_per_directory(tmp_path: Path) -> None:
    first = LocalLogSink(local_config(tmp_path))
    await first.start()
    try:
        with pytest.raises(ConfigError, match=f"pid {os.getpid()}"):
            await LocalLogSink(local_config(tmp_path)).start()
    finally:
        await first.close()
    second = LocalLogSink(local_config(tmp_path))  # free again once the first one closed
    await second.start()
    await second.close()


async def _rotated_log(directory: Path, count: int) -> None:
    sink = LocalLogSink(local_config(directory, rotate_bytes=2048))
    await sink.start()
    for n in range(count):
        await sink.publish(job_event(n))
        await sink.publish(webhook_event(n))
    await sink.close()


def _tail(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    capsys.readouterr()  # what the writer logged before
    assert main(["events", "tail", "--config", str(EXAMPLE_CONFIG), *args]) == 0
    return [json.loads(text)["event_id"] for text in capsys.readouterr().out.splitlines()]


def test_events_tail_reads_across_rotated_segments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_rotated_log(tmp_path, 30))
    assert len(segments(tmp_path, EVENTS_FILE)) > 5
    ids = [job_event(n).event_id for n in range(30)]
    assert _tail(capsys, "--directory", str(tmp_path), "-n", "25") == ids[5:]
    assert _tail(capsys, "--directory", str(tmp_path), "-n", "100") == ids
    webhook_ids = [webhook_event(n).event_id for n in range(30)]
    tailed = _tail(capsys, "--directory", str(tmp_path), "-n", "12", "--webhook-events")
    assert tailed == webhook_ids[-12:]
    assert len(rotated_segments(tmp_path, WEBHOOK_EVENTS_FILE)) >= 2


def test_events_tail_follows_through_rotations(tmp_path: Path) -> None:
    """``tail -f`` moves from the renamed segment to the new active file, losing nothing."""
    asyncio.run(_rotated_log(tmp_path, 3))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "events", "tail", "-f", "-n", "3",
         "--config", str(EXAMPLE_CONFIG), "--directory", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    lines: queue.Queue[bytes] = queue.Queue()
    assert proc.stdout is not None

    def read(stream: IO[bytes]) -> None:
        for text in stream:
            lines.put(text)

    reader = threading.Thread(target=read, args=(proc.stdout,), daemon=True)
    reader.start()

    def seen(count: int) -> list[str]:
        return [json.loads(lines.get(timeout=20))["event_id"] for _ in range(count)]

    try:
        shown = seen(3)

        async def more() -> None:
            sink = LocalLogSink(local_config(tmp_path, rotate_bytes=2048))
            await sink.start()
            for n in range(3, 40):
                await sink.publish(job_event(n))
                await asyncio.sleep(0.01)
            await sink.close()

        asyncio.run(more())
        assert len(rotated_segments(tmp_path, EVENTS_FILE)) > 6
        shown += seen(37)
    finally:
        proc.kill()
        proc.wait()
        reader.join(5)
        proc.stdout.close()
    assert shown == [job_event(n).event_id for n in range(40)]


def _with_local(settings: Settings, directory: Path, **changes: Any) -> Settings:
    local = local_config(directory, **changes)
    return settings.model_copy(update={"sink": settings.sink.model_copy(update={"local": local})})


async def test_dead_letters_replay_reads_across_rotated_segments(tmp_path: Path) -> None:
    settings = _with_local(example_settings(), tmp_path, rotate_bytes=2048)
    sink = LocalLogSink(settings.sink.local)
    await sink.start()
    letters = [openai_dead_letter(n) for n in range(12)]
    for letter in letters:
        await sink.publish_dead_letter(letter)
    await sink.close()
    assert len(rotated_segments(tmp_path, DEAD_LETTERS_FILE)) >= 3
    report = await replay_configured(settings, source_filter=None, reason_filter=None,
                                     dry_run=False)  # fmt: skip
    assert report.replayed == [letter.event_id for letter in letters]
    assert event_ids(tmp_path, EVENTS_FILE) == report.replayed
