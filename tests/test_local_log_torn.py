"""A torn last line (the writer killed mid-write) and what each reader and the writer make of it.

The writer cuts it off on restart, so the next record starts on a line of its own; ``events
tail`` and ``dead-letters replay`` leave it out while the gateway is down; and a record that an
older writer glued onto such a fragment is still found, so no acknowledged event is hidden.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.replay import replay_configured
from gateway.settings import LocalSinkConfig, Settings
from gateway.sinks.local_log import DEAD_LETTERS_FILE, EVENTS_FILE, LocalLogSink
from tests.log_records import event_ids, job_event, openai_dead_letter, strict_event_ids
from tests.support import EXAMPLE_CONFIG, example_settings


def _line(n: int) -> bytes:
    return job_event(n).model_dump_json().encode() + b"\n"


def _torn_log(directory: Path, whole: int) -> bytes:
    """``whole`` records, then the first half of the next one, as a kill mid-write leaves it."""
    directory.mkdir(parents=True, exist_ok=True)
    fragment = _line(whole)[: len(_line(whole)) // 2]
    (directory / EVENTS_FILE).write_bytes(b"".join(_line(n) for n in range(whole)) + fragment)
    return fragment


def _ids(*numbers: int) -> list[str]:
    return [job_event(n).event_id for n in numbers]


async def test_writer_cuts_the_torn_tail_on_restart(tmp_path: Path) -> None:
    _torn_log(tmp_path, 3)
    sink = LocalLogSink(LocalSinkConfig(directory=tmp_path))
    await sink.start()
    await sink.publish(job_event(10))
    await sink.publish(job_event(11))
    await sink.close()
    # Every line holds one record (event_ids fails on any that does not): nothing glued.
    assert event_ids(tmp_path, EVENTS_FILE) == _ids(0, 1, 2, 10, 11)
    assert strict_event_ids(tmp_path, EVENTS_FILE) == _ids(0, 1, 2, 10, 11)


def test_writer_cuts_a_tail_torn_by_a_real_kill(tmp_path: Path) -> None:
    """A process appending a large record in small writes is SIGKILLed in the middle of it."""
    whole = b"".join(_line(n) for n in range(5))
    (tmp_path / EVENTS_FILE).write_bytes(whole)
    writer = (
        "import os, sys\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)\n"
        'chunk = b\'{"schema_version":"1","event_id":"evt_torn","raw":"\' + b\'x\' * 4000\n'
        "while True:\n"
        "    os.write(fd, chunk)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer, str(tmp_path / EVENTS_FILE)])
    try:
        deadline = time.monotonic() + 20
        while (tmp_path / EVENTS_FILE).stat().st_size < len(whole) + 200_000:
            assert time.monotonic() < deadline, "the writer did not get going"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (tmp_path / EVENTS_FILE).stat().st_size > len(whole) + 200_000

    async def restart() -> None:
        sink = LocalLogSink(LocalSinkConfig(directory=tmp_path))
        await sink.start()
        await sink.publish(job_event(6))
        await sink.close()

    asyncio.run(restart())
    assert strict_event_ids(tmp_path, EVENTS_FILE) == _ids(0, 1, 2, 3, 4, 6)


def test_events_tail_leaves_out_a_torn_last_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _torn_log(tmp_path, 4)
    code = main(["events", "tail", "-n", "10", "--config", str(EXAMPLE_CONFIG),
                 "--directory", str(tmp_path)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    assert [json.loads(text)["event_id"] for text in captured.out.splitlines()] == _ids(0, 1, 2, 3)
    assert captured.err == ""  # a line still being written is not a damaged line


def test_a_record_glued_by_an_older_writer_is_not_hidden(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Logs written before the writer cut torn tails: fragment and next record on one line."""
    fragment = _line(2)[:150]
    glued = (
        b"".join(_line(n) for n in range(2)) + fragment + b"".join(_line(n) for n in range(3, 5))
    )
    (tmp_path / EVENTS_FILE).write_bytes(glued)
    assert main(["events", "tail", "-n", "10", "--config", str(EXAMPLE_CONFIG),
                 "--directory", str(tmp_path)]) == 0  # fmt: skip
    shown = [json.loads(text)["event_id"] for text in capsys.readouterr().out.splitlines()]
    assert shown == _ids(0, 1, 3, 4)


def _on_local(directory: Path) -> Settings:
    base = example_settings()
    local = LocalSinkConfig(directory=directory, fsync=False)
    return base.model_copy(update={"sink": base.sink.model_copy(update={"local": local})})


async def test_dead_letters_replay_tolerates_torn_and_glued_lines(tmp_path: Path) -> None:
    letters = [openai_dead_letter(n) for n in range(4)]
    lines = [letter.model_dump_json().encode() + b"\n" for letter in letters]
    # 0 whole; 1 torn and, by an older writer, 2 glued onto it; 3 whole; a torn last line.
    data = lines[0] + lines[1][:200] + lines[2] + lines[3] + lines[1][:300]
    (tmp_path / DEAD_LETTERS_FILE).write_bytes(data)
    settings = _on_local(tmp_path)
    report = await replay_configured(settings, source_filter=None, reason_filter=None,
                                     dry_run=False)  # fmt: skip
    assert report.replayed == [letters[n].event_id for n in (0, 2, 3)]
    assert report.skipped == {}
    assert event_ids(tmp_path, EVENTS_FILE) == report.replayed
    # The replay's own writer cut the torn dead-letter tail when it opened the directory.
    assert (tmp_path / DEAD_LETTERS_FILE).read_bytes() == lines[0] + lines[1][:200] + lines[2] + (
        lines[3]
    )


async def test_a_line_with_no_record_is_counted_not_fatal(tmp_path: Path) -> None:
    good = openai_dead_letter(1).model_dump_json().encode() + b"\n"
    (tmp_path / DEAD_LETTERS_FILE).write_bytes(b'{"schema_version":"1","event_id"\n' + good)
    report = await replay_configured(_on_local(tmp_path), source_filter=None, reason_filter=None,
                                     dry_run=True)  # fmt: skip
    assert report.replayed == [openai_dead_letter(1).event_id]
    assert report.skipped == {"unreadable_line": 1}
