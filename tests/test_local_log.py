"""The embedded sink: JSON lines, group commit, fsync before the answer, failures surface."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import SinkUnavailable
from gateway.settings import LocalSinkConfig
from gateway.sinks.local_log import LocalLogSink
from schemas import Delivery, JobEvent, JobStatus


def event(n: int) -> JobEvent:
    now = datetime.now(tz=UTC)
    return JobEvent(
        event_id=f"evt_{n:032x}",
        source="s",
        provider="abstrakt",
        job_id=f"job-{n}",
        status=JobStatus.SUCCEEDED,
        received_at=now,
        verified_at=now,
        delivery=Delivery(id=None, scheme="hmac-sha256-hex", key_id="k"),
        raw={"n": n, "big": 2**70},
    )


async def test_concurrent_appends_are_group_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: Any) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    sink = LocalLogSink(LocalSinkConfig(directory=tmp_path))
    await sink.start()
    await asyncio.gather(*(sink.publish(event(n)) for n in range(200)))
    await sink.close()
    lines = (tmp_path / "events.jsonl").read_bytes().splitlines()
    assert len(lines) == 200
    assert {JobEvent.model_validate_json(line).job_id for line in lines} == {
        f"job-{n}" for n in range(200)
    }
    assert b"1180591620717411303424" in lines[0]  # 2**70, exactly
    assert 1 <= len(fsyncs) < 200  # batched, yet every line was fsynced before returning


async def test_publish_after_close_is_unavailable(tmp_path: Path) -> None:
    sink = LocalLogSink(LocalSinkConfig(directory=tmp_path))
    await sink.start()
    await sink.close()
    assert not sink.ready()
    with pytest.raises(SinkUnavailable):
        await sink.publish(event(1))


async def test_write_failure_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = LocalLogSink(LocalSinkConfig(directory=tmp_path))
    await sink.start()

    def broken(fd: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(SinkUnavailable):
        await sink.publish(event(1))
    await sink.close()
