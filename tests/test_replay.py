"""Dead-letter replay: what an older version could not map is published after an upgrade."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from adapters.providers import openai as openai_provider
from gateway.app import create_app
from gateway.replay import read_local, replay, replay_configured
from gateway.settings import Settings
from gateway.sinks.memory import MemorySink
from schemas import JobStatus
from tests.support import example_settings, signed

Client = TestClient[Any, web.Application]


OLD_FAMILIES = tuple(f for f in openai_provider.FAMILIES if f != "batch.")


async def _dead_letters(aiohttp_client: Any, settings: Settings, sink: MemorySink) -> list[str]:
    """An 'old version' that does not know OpenAI's batch.* events dead-letters two of them."""
    client: Client = await aiohttp_client(create_app(settings, sink=sink))
    ids = []
    for example in ("failed", "failed"):  # batch.failed
        raw, headers = signed(settings, "openai", example)
        response = await client.post("/webhooks/openai", data=raw, headers=headers)
        ids.append((await response.json())["event_id"])
    raw, headers = signed(settings, "abstrakt", body=b"not json at all")
    response = await client.post("/webhooks/abstrakt", data=raw, headers=headers)
    ids.append((await response.json())["event_id"])
    assert len(sink.dead_letters) == 3
    return ids


async def test_replay_after_upgrade(aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = example_settings()
    sink = MemorySink()
    with monkeypatch.context() as old_version:
        old_version.setattr(openai_provider, "FAMILIES", OLD_FAMILIES)
        ids = await _dead_letters(aiohttp_client, settings, sink)
        nothing_new = await replay(settings, sink.dead_letters, MemorySink(), dry_run=True)
    assert nothing_new.replayed == []
    assert nothing_new.still_dead == {"unsupported_event_type": 2, "invalid_json": 1}

    # The upgraded version (this one) maps batch.* events.
    target = MemorySink()
    report = await replay(settings, sink.dead_letters, target, source_filter="openai")
    assert sorted(report.replayed) == sorted(ids[:2])
    assert [e.event_id for _, e in target.events] == report.replayed  # same ids as the letters
    assert {e.status for _, e in target.events} == {JobStatus.FAILED}
    assert {e.job_id[:6] for _, e in target.events} == {"batch_"}
    assert report.summary() == "replayed 2"
    rest = await replay(settings, sink.dead_letters, MemorySink(), reason_filter="invalid_json")
    assert rest.summary() == "replayed 0; still dead 1 (invalid_json x1)"


async def test_replay_cli_path_on_the_local_log(
    aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = example_settings()
    local = base.sink.local.model_copy(update={"directory": tmp_path, "fsync": False})
    settings = base.model_copy(update={"sink": base.sink.model_copy(update={"local": local})})
    with monkeypatch.context() as old_version:
        old_version.setattr(openai_provider, "FAMILIES", OLD_FAMILIES)
        client: Client = await aiohttp_client(create_app(settings))
        raw, headers = signed(settings, "openai", "failed")
        assert (await client.post("/webhooks/openai", data=raw, headers=headers)).status == 200
        await client.close()
    [letter] = list(read_local(tmp_path))
    report = await replay_configured(settings, source_filter=None, reason_filter=None,
                                     dry_run=False)  # fmt: skip
    assert report.replayed == [letter.event_id]
    lines = (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[-1])["event_id"] == letter.event_id
