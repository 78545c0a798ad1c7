"""A full disk under the local sink: a real gateway process on a small tmpfs the test mounts.

503 with Retry-After and readiness off while the disk refuses writes, no crash, no partial or
unacknowledged record left in the log; once space is freed it recovers by itself.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.sinks.local_log import EVENTS_FILE
from tests.deliveries import Answer, deliveries, post_all, readiness
from tests.gateway_process import gateway_process, wait_ready, write_config
from tests.log_records import strict_event_ids
from tests.support import example_settings

DISK_BYTES = 2 * 1024 * 1024
LEFT_FREE = 12 * 1024  # room for a dozen records: the disk fills while deliveries come in


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of the test's own (the tests run as root, as CI does)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the tests need root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` to ENOSPC with a file, then give back ``leave`` bytes of it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    chunk = b"\xa5" * 65536
    try:
        with pytest.raises(OSError, match="No space left") as full:  # noqa: PT012 - the loop fills it
            for _ in range(DISK_BYTES // len(chunk) + 2):
                os.write(fd, chunk)
    finally:
        os.close(fd)
    assert full.value.errno == errno.ENOSPC
    os.truncate(filler, filler.stat().st_size - leave)
    return filler


def test_full_disk_refuses_then_recovers_alone(tmp_path: Path, small_disk: Path) -> None:
    directory = small_disk / "events"
    config, data = write_config(
        tmp_path, sink={"kind": "local", "local": {"directory": str(directory)}}
    )
    port, admin = data["listen"]["port"], data["admin"]["port"]
    retry_after = str(example_settings().limits.retry_after_seconds)
    settings = example_settings()
    log = tmp_path / "gateway.log"
    accepted: list[Answer] = []
    with gateway_process(config, log=log) as proc:
        wait_ready(admin, proc=proc)
        first = asyncio.run(post_all(port, deliveries(settings, 6)))
        assert [a.status for a in first] == [200] * 6
        accepted += first

        filler = fill(small_disk, LEFT_FREE)
        refused: list[Answer] = []
        for delivery in deliveries(settings, 200, start=6):  # bounded: the disk fills far sooner
            [answer] = asyncio.run(post_all(port, [delivery]))
            if answer.status == 200:
                accepted.append(answer)
                continue
            refused.append(answer)
            break
        [full] = refused
        assert full.status == 503, full
        assert full.body == {"error": "sink_unavailable"}
        assert full.retry_after == retry_after
        assert len(accepted) > 6  # some fitted in what was left
        status, ready = readiness(admin)
        assert status == 503
        assert ready["checks"]["sink"] is False  # type: ignore[index]

        # Still full: every delivery refused alike, under concurrency, and the process lives.
        more = asyncio.run(post_all(port, deliveries(settings, 48, start=300), concurrency=16))
        assert {(a.status, a.retry_after) for a in more} == {(503, retry_after)}
        refused += more
        assert proc.poll() is None
        # Only whole records, and exactly those acknowledged: nothing partial, nothing refused.
        assert strict_event_ids(directory, EVENTS_FILE) == [a.event_id for a in accepted]

        filler.unlink()
        freed = time.monotonic()
        while readiness(admin)[0] != 200:
            assert time.monotonic() - freed < 15, "not ready again after the disk was freed"
            time.sleep(0.05)
        print(f"\ndisk full: ready again {time.monotonic() - freed:.2f} s after space was freed")

        # The providers' retries of what was refused now land, once each.
        retried = asyncio.run(post_all(port, [a.delivery for a in refused], concurrency=8))
        assert {a.status for a in retried} == {200}
        assert not any(a.body.get("duplicate") for a in retried)
        accepted += retried
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    ids = strict_event_ids(directory, EVENTS_FILE)
    assert sorted(ids) == sorted(a.event_id for a in accepted)
    lines = log.read_text(encoding="utf-8")
    assert '"local_log_unwritable"' in lines
    assert '"local_log_writable_again"' in lines
