"""Records for the local log tests: job events, passthrough events, replayable dead letters."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from adapters.examples import render
from gateway.sinks.log_files import RECORD_START, log_records, segments
from schemas import DeadLetter, Delivery, JobEvent, JobStatus, WebhookEvent


def job_event(n: int, received_at: datetime | None = None) -> JobEvent:
    when = received_at or datetime.now(tz=UTC)
    return JobEvent(
        event_id=f"evt_{n:032x}",
        source="s",
        provider="abstrakt",
        job_id=f"job-{n}",
        status=JobStatus.SUCCEEDED,
        received_at=when,
        verified_at=when,
        delivery=Delivery(id=None, scheme="hmac-sha256-hex", key_id="k"),
        raw={"n": n, "padding": "x" * 200},
    )


def webhook_event(n: int) -> WebhookEvent:
    now = datetime.now(tz=UTC)
    return WebhookEvent(
        event_id=f"evt_{n:032x}",
        source="hooks",
        provider="standard-webhooks",
        event_type="thing.happened",
        delivery=Delivery(id=f"msg_{n}", scheme="standard-webhooks-v1", key_id="k"),
        received_at=now,
        verified_at=now,
        raw={"n": n},
    )


def openai_dead_letter(n: int) -> DeadLetter:
    """An OpenAI ``batch.failed`` delivery kept as a dead letter, as a gateway that did not
    know that event type would have kept it; this version maps it, so replay publishes it."""
    now = int(time.time())
    body = render("openai", "failed", job_id=f"batch_{n}", now=now)
    when = datetime.fromtimestamp(now, tz=UTC)
    return DeadLetter(
        event_id=f"evt_{n:032x}",
        source="openai",
        provider="openai",
        reason="unsupported_event_type",
        detail="batch.failed is not a job event type this version knows",
        received_at=when,
        delivery=Delivery(id=f"msg_{n}", scheme="standard-webhooks-v1", key_id="k", signed_at=when),
        headers={"content-type": "application/json"},
        raw_body_b64=base64.b64encode(body).decode(),
    )


def event_ids(directory: Path, name: str) -> list[str]:
    """The ``event_id`` of every record of a log, across its segments, oldest first; a line
    that holds no record fails the test."""
    ids = []
    for record in log_records(directory, name):
        assert record is not None, f"a line of {name} holds no record"
        ids.append(json.loads(record)["event_id"])
    return ids


def strict_event_ids(directory: Path, name: str) -> list[str]:
    """As ``event_ids``, but with no tolerance: every file of the log ends with a newline and
    each of its lines is one whole record (what the writer guarantees, torn writes or not)."""
    ids = []
    for path in segments(directory, name):
        data = path.read_bytes()
        assert not data or data.endswith(b"\n"), f"{path.name} ends in a partial record"
        for line in data.splitlines():
            assert line.startswith(RECORD_START), f"{path.name}: {line[:80]!r}"
            ids.append(json.loads(line)["event_id"])
    return ids
