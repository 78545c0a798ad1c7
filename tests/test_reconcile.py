"""Reconciliation against the real Redis and fake provider APIs on 127.0.0.1: a job whose
webhook comes, one whose webhook never comes, a webhook after the poll, a job that never ends,
a provider that answers 404 / 429 / 503 / garbage, two instances sharing the work."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from adapters import ConfigError
from gateway.app import create_admin_app, create_app
from gateway.cli import main
from gateway.metrics import Metrics
from gateway.reconcile.build import build_store
from gateway.reconcile.runner import NEVER_ARRIVED
from gateway.settings import load_settings
from gateway.sinks.memory import MemorySink
from schemas import JobEvent, JobExpectation, JobStatus
from tests.conftest import AiohttpClient
from tests.fake_providers import FakeApi, FakeJob, serving
from tests.reconcile_support import (
    ADMIN_TOKEN,
    Clock,
    expectation,
    harness,
    reconcile_data,
    reconcile_settings,
    sample,
)
from tests.redis_server import RedisServer
from tests.support import EXAMPLE_CONFIG, signed

pytestmark = pytest.mark.redis

CLOSED = "webhook_gateway_expectations_closed_total"
POLLS = "webhook_gateway_reconcile_polls_total"


@pytest.fixture
async def apis() -> AsyncIterator[dict[str, FakeApi]]:
    fakes = {name: FakeApi(name) for name in ("fal", "replicate", "openai", "abstrakt")}
    async with serving(*fakes.values()):
        yield fakes


def terminal(sink: MemorySink, job_id: str) -> list[JobEvent]:
    return [e for _, e in sink.events if e.job_id == job_id and e.status.terminal]


@pytest.mark.parametrize(
    ("source", "job_id", "outputs"),
    [
        ("replicate", "p8qk2m4", 1),
        ("fal", "5b1c7e2a-fal", 1),
        ("openai", "resp_68a1", 0),
        ("openai", "batch_68a2", 0),
        ("openai", "ftjob_68a3", 0),
        ("abstrakt", "job_abc123xyz", 1),
    ],
)
async def test_a_job_whose_webhook_never_comes_is_closed_by_one_poll(
    live_redis: RedisServer, apis: dict[str, FakeApi], source: str, job_id: str, outputs: int
) -> None:
    api = apis[source]
    api.jobs[job_id] = FakeJob(done_after=1)  # running once, then done
    settings = reconcile_settings(live_redis.url, apis)
    sink, clock = MemorySink(), Clock()
    async with harness(settings, sink, clock) as h:
        exp = expectation(source, job_id, clock.now - 120, poll_after=60, api=api)
        assert await h.registrar.register(exp, clock.now) == "added"
        assert await h.reconciler.run_once() == 1  # still running: polled again later
        assert terminal(sink, job_id) == []
        assert await h.reconciler.run_once() == 0  # not due yet (backoff)
        clock.now += 2
        assert await h.reconciler.run_once() == 1
        clock.now += 100
        assert await h.reconciler.run_once() == 0  # closed: never taken again
        assert await h.store.pending() == 0
        assert sample(h.metrics, CLOSED, {"source": source, "by": "poll"}) == 1
        assert sample(h.metrics, POLLS, {"source": source, "result": "running"}) == 1
    (event,) = terminal(sink, job_id)
    assert event.status is JobStatus.SUCCEEDED
    assert event.delivery.scheme == "poll"
    assert event.provider == source
    assert len(event.outputs) == outputs
    assert api.jobs[job_id].polls == 2
    assert api.jobs[job_id].unauthorized == 0


@pytest.mark.parametrize(
    ("source", "job_id"),
    [("replicate", "pfail"), ("fal", "ffail"), ("abstrakt", "afail"), ("openai", "resp_fail")],
)
async def test_a_failed_job_is_published_failed_with_the_providers_error(
    live_redis: RedisServer, apis: dict[str, FakeApi], source: str, job_id: str
) -> None:
    apis[source].jobs[job_id] = FakeJob(failed=True)
    settings = reconcile_settings(live_redis.url, apis)
    sink, clock = MemorySink(), Clock()
    async with harness(settings, sink, clock) as h:
        await h.registrar.register(
            expectation(source, job_id, clock.now - 120, api=apis[source]), clock.now
        )
        assert await h.reconciler.run_once() == 1
    (event,) = terminal(sink, job_id)
    assert event.status is JobStatus.FAILED
    assert event.error is not None
    assert event.error.code != NEVER_ARRIVED


async def test_provider_trouble_is_retried_with_backoff_and_counted(
    live_redis: RedisServer, apis: dict[str, FakeApi]
) -> None:
    api = apis["replicate"]
    api.jobs["ptrouble"] = FakeJob(rate_limited=1, retry_after="30", errors=1, garbage=1)
    settings = reconcile_settings(live_redis.url, apis)
    sink, clock = MemorySink(), Clock()
    async with harness(settings, sink, clock) as h:
        await h.registrar.register(expectation("replicate", "ptrouble", clock.now - 61), clock.now)
        assert await h.reconciler.run_once() == 1  # 429, Retry-After: 30
        due = await h.store.next_due()
        assert due is not None
        assert due >= clock.now + 30
        for result in ("http_error", "garbage"):
            clock.now += 31
            assert await h.reconciler.run_once() == 1
            assert terminal(sink, "ptrouble") == []  # nothing it cannot justify
            assert sample(h.metrics, POLLS, {"source": "replicate", "result": result}) == 1
        clock.now += 31
        assert await h.reconciler.run_once() == 1
        assert sample(h.metrics, POLLS, {"source": "replicate", "result": "rate_limited"}) == 1
    assert len(terminal(sink, "ptrouble")) == 1


async def test_an_unreachable_api_is_counted_and_never_crashes(
    live_redis: RedisServer, apis: dict[str, FakeApi]
) -> None:
    apis["replicate"].base_url = "http://127.0.0.1:9"  # discard: nothing listens
    settings = reconcile_settings(live_redis.url, apis)
    sink, clock = MemorySink(), Clock()
    async with harness(settings, sink, clock) as h:
        await h.registrar.register(expectation("replicate", "pnone", clock.now - 61), clock.now)
        assert await h.reconciler.run_once() == 1
        assert sample(h.metrics, POLLS, {"source": "replicate", "result": "unreachable"}) == 1
        assert await h.store.pending() == 1
    assert sink.events == []


@pytest.mark.parametrize(
    "job", [FakeJob(done_after=None), FakeJob(gone=True)], ids=["running", "404"]
)
async def test_a_job_that_never_finishes_fails_at_the_longest_wait(
    live_redis: RedisServer, apis: dict[str, FakeApi], job: FakeJob
) -> None:
    apis["replicate"].jobs["pforever"] = job
    settings = reconcile_settings(live_redis.url, apis)
    sink, clock = MemorySink(), Clock()
    submitted = clock.now - 61
    async with harness(settings, sink, clock) as h:
        await h.registrar.register(
            expectation("replicate", "pforever", submitted, poll_after=60, max_wait=600), clock.now
        )
        while clock.now < submitted + 600:
            await h.reconciler.run_once()
            assert terminal(sink, "pforever") == []
            due = await h.store.next_due()
            assert due is not None
            assert due <= submitted + 600
            clock.now = due
        assert await h.reconciler.run_once() == 1
        assert sample(h.metrics, CLOSED, {"source": "replicate", "by": "timeout"}) == 1
    (event,) = terminal(sink, "pforever")
    assert event.status is JobStatus.FAILED
    assert event.error is not None
    assert event.error.code == NEVER_ARRIVED
    assert event.delivery.scheme == "poll-timeout"
    assert job.polls >= 5  # backoff: more than one poll, far fewer than one per second


@pytest.fixture
def edge(live_redis: RedisServer, apis: dict[str, FakeApi]) -> tuple[Any, MemorySink, Metrics]:
    settings = reconcile_settings(live_redis.url, apis)
    return settings, MemorySink(), Metrics()


async def post(client: TestClient[Any, web.Application], settings: Any, source: str, job_id: str,
               example: str = "succeeded") -> tuple[int, dict[str, Any]]:  # fmt: skip
    raw, headers = signed(settings, source, example, job_id=job_id)
    response = await client.post(f"/webhooks/{source}", data=raw, headers=headers)
    return response.status, await response.json()


async def test_a_webhook_that_comes_closes_the_job_without_a_poll(
    aiohttp_client: AiohttpClient, edge: tuple[Any, MemorySink, Metrics], apis: dict[str, FakeApi]
) -> None:
    settings, sink, metrics = edge
    apis["replicate"].jobs["pwebhook"] = FakeJob()
    client = await aiohttp_client(create_app(settings, sink=sink, metrics=metrics))
    now = time.time()
    async with harness(settings, sink, Clock(now + 3600)) as h:
        await h.registrar.register(expectation("replicate", "pwebhook", now - 30), now)
        status, _ = await post(client, settings, "replicate", "pwebhook", "processing")
        assert status == 200
        status, body = await post(client, settings, "replicate", "pwebhook")
        assert status == 200
        assert "duplicate" not in body
        assert await h.reconciler.run_once() == 0  # past poll_after, yet nothing is due
    assert apis["replicate"].jobs["pwebhook"].polls == 0
    assert len(terminal(sink, "pwebhook")) == 1
    assert sample(metrics, CLOSED, {"source": "replicate", "by": "webhook"}) == 1
    lateness = "webhook_gateway_webhook_lateness_seconds_count"
    assert sample(metrics, lateness, {"source": "replicate"}) == 1


async def test_non_terminal_events_of_an_expected_job_pass_as_today(
    aiohttp_client: AiohttpClient, edge: tuple[Any, MemorySink, Metrics], apis: dict[str, FakeApi]
) -> None:
    settings, sink, metrics = edge
    client = await aiohttp_client(create_app(settings, sink=sink, metrics=metrics))
    now = time.time()
    async with harness(settings, sink, Clock(now)) as h:
        await h.registrar.register(expectation("replicate", "prunning", now), now)
        for example in ("starting", "processing"):
            status, body = await post(client, settings, "replicate", "prunning", example)
            assert status == 200
            assert "duplicate" not in body
        assert await h.store.pending() == 1  # still open
    assert [e.status for _, e in sink.events] == [JobStatus.QUEUED, JobStatus.RUNNING]


async def test_a_webhook_after_the_poll_is_a_duplicate(
    aiohttp_client: AiohttpClient, edge: tuple[Any, MemorySink, Metrics], apis: dict[str, FakeApi]
) -> None:
    settings, sink, metrics = edge
    apis["replicate"].jobs["plate"] = FakeJob()
    client = await aiohttp_client(create_app(settings, sink=sink, metrics=metrics))
    now = time.time()
    async with harness(settings, sink, Clock(now)) as h:
        await h.registrar.register(expectation("replicate", "plate", now - 120), now)
        assert await h.reconciler.run_once() == 1
        assert len(terminal(sink, "plate")) == 1
        for example in ("succeeded", "failed"):  # any terminal webhook: the slot is taken
            status, body = await post(client, settings, "replicate", "plate", example)
            assert (status, body.get("duplicate")) == (200, True)
        # Registering it again does not reopen it.
        assert await h.registrar.register(expectation("replicate", "plate", now), now) == (
            "already_ended"
        )
    assert len(terminal(sink, "plate")) == 1
    assert sample(metrics, "webhook_gateway_duplicates_total", {"source": "replicate"}) == 2


async def test_a_job_nobody_expects_is_published_as_before(
    aiohttp_client: AiohttpClient, edge: tuple[Any, MemorySink, Metrics]
) -> None:
    settings, sink, metrics = edge
    client = await aiohttp_client(create_app(settings, sink=sink, metrics=metrics))
    for _ in range(2):  # two terminal events of one job nobody expects: both published
        status, body = await post(client, settings, "replicate", "pfree")
        assert status == 200
        assert "duplicate" not in body
    assert len(terminal(sink, "pfree")) == 2
    assert sample(metrics, CLOSED, {"source": "replicate", "by": "webhook"}) == 0


async def test_two_instances_share_the_work_and_never_poll_a_job_at_once(
    live_redis: RedisServer, apis: dict[str, FakeApi]
) -> None:
    api = apis["replicate"]
    jobs = [f"ptwo{i:02d}" for i in range(24)]
    for job_id in jobs:
        api.jobs[job_id] = FakeJob(done_after=2, delay=0.03)
    settings = reconcile_settings(
        live_redis.url, apis, backoff_initial_seconds=0.05, batch_size=4, concurrency=4
    )
    sink = MemorySink()
    now = time.time()
    stop = asyncio.Event()
    async with harness(settings, sink, time.time) as a, harness(settings, sink, time.time) as b:
        for job_id in jobs:
            await a.registrar.register(expectation("replicate", job_id, now - 61), now)
        runs = [asyncio.create_task(h.reconciler.run(stop)) for h in (a, b)]
        try:
            async with asyncio.timeout(30):
                while sum(len(terminal(sink, j)) for j in jobs) < len(jobs):  # noqa: ASYNC110 - the sink has no event to wait on
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)  # a second terminal event would show by now
        finally:
            stop.set()
            await asyncio.gather(*runs)
        polled_by = [sample(h.metrics, POLLS, {"source": "replicate", "result": "terminal"})
                     for h in (a, b)]  # fmt: skip
    assert all(api.jobs[j].max_in_flight == 1 for j in jobs)
    assert all(len(terminal(sink, j)) == 1 for j in jobs)
    assert all(api.jobs[j].polls == 3 for j in jobs)
    assert sum(polled_by) == len(jobs)
    assert min(polled_by) > 0


# --- registering ----------------------------------------------------------------------------


@pytest.fixture
async def admin(
    aiohttp_client: AiohttpClient, edge: tuple[Any, MemorySink, Metrics]
) -> TestClient[Any, web.Application]:
    settings, sink, metrics = edge
    public = create_app(settings, sink=sink, metrics=metrics)
    admin_app = create_admin_app(public)
    await aiohttp_client(public)  # starts the public app's resources
    return await aiohttp_client(admin_app)


def body(**changes: Any) -> dict[str, Any]:
    return {"source": "replicate", "job_id": "padmin", "submitted_at": "2026-12-01T10:00:00Z",
            "poll_after_seconds": 60, "max_wait_seconds": 3600, **changes}  # fmt: skip


AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.mark.parametrize(
    ("headers", "payload", "status", "error"),
    [
        ({}, body(), 401, "unauthorized"),
        ({"Authorization": "Bearer wrong"}, body(), 401, "unauthorized"),
        (AUTH, "not json", 422, "invalid_json"),
        (AUTH, body(job_id=""), 422, "invalid_expectation"),
        (AUTH, body(submitted_at="2026-12-01T10:00:00"), 422, "invalid_expectation"),  # naive
        (AUTH, body(poll_after_seconds=7200), 422, "invalid_expectation"),  # after max wait
        (AUTH, body(surprise=1), 422, "invalid_expectation"),
        (AUTH, body(source="instantapi"), 422, "source_not_reconciled"),
        (AUTH, body(source="nowhere"), 422, "source_not_reconciled"),
        (AUTH, body(source="fal"), 422, "unpollable_job"),  # fal without its URLs
        (AUTH, body(source="openai", job_id="evalrun_1"), 422, "unpollable_job"),
    ],
)
async def test_a_malformed_expectation_is_refused_with_a_clear_error(
    admin: TestClient[Any, web.Application],
    headers: dict[str, str],
    payload: Any,
    status: int,
    error: str,
) -> None:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    response = await admin.post(
        "/expectations", data=data, headers={"Content-Type": "application/json", **headers}
    )
    assert response.status == status
    answer = await response.json()
    assert answer["error"] == error
    assert ADMIN_TOKEN not in json.dumps(answer)


async def test_the_admin_endpoint_registers_once(admin: TestClient[Any, web.Application]) -> None:
    for status, result in ((202, "added"), (200, "already_open")):
        response = await admin.post("/expectations", json=body(job_id="ponce"), headers=AUTH)
        assert response.status == status
        assert await response.json() == {"result": result, "key": "replicate:ponce"}
    response = await admin.post("/expectations", data=b"x" * 70_000,
                                headers={**AUTH, "Content-Type": "application/json"})  # fmt: skip
    assert response.status == 413


async def test_the_cli_registers_an_expectation(
    live_redis: RedisServer, apis: dict[str, FakeApi], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(reconcile_data(live_redis.url, apis)), encoding="utf-8")
    argv = ["expect", "replicate", "pcli", "--poll-after", "0", "-c", str(config)]
    assert await asyncio.to_thread(main, argv) == 0
    assert await asyncio.to_thread(main, argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        "added: replicate:pcli", "already_open: replicate:pcli"]  # fmt: skip
    store, connection = build_store(load_settings(config))
    try:
        stored = await store.lookup("replicate", "pcli")
    finally:
        await connection.close()
    assert isinstance(stored, JobExpectation)
    assert stored.poll_after_seconds == 0  # an explicit 0 is kept, not the default
    bad = ["expect", "instantapi", "x", "-c", str(config)]
    assert await asyncio.to_thread(main, bad) == 2
    assert "source_not_reconciled" in capsys.readouterr().err


def test_check_config_refuses_reconciling_a_provider_without_a_status_api(
    live_redis: RedisServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = reconcile_data(live_redis.url, {})
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["check-config", "-c", str(config)]) == 0
    data["sources"]["instantapi"]["reconcile"] = {"api_key": {"id": "k", "value": "secret-k"}}
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["check-config", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "reconcile_unsupported" in err
    assert "instantapi" in err
    assert "secret-k" not in err


def test_reconciliation_needs_the_shared_store() -> None:
    with pytest.raises(ConfigError, match=r"dedupe\.kind redis"):
        load_settings(EXAMPLE_CONFIG, reconcile={"enabled": True})


async def test_an_expectation_registered_after_its_webhook_is_not_reopened(
    aiohttp_client: AiohttpClient, edge: tuple[Any, MemorySink, Metrics], apis: dict[str, FakeApi]
) -> None:
    settings, sink, metrics = edge
    apis["replicate"].jobs["pearly"] = FakeJob()
    apis["replicate"].jobs["pfailed"] = FakeJob()
    client = await aiohttp_client(create_app(settings, sink=sink, metrics=metrics))
    now = time.time()
    status, _ = await post(client, settings, "replicate", "pearly")  # before the expectation
    assert status == 200
    sink.available = False  # this one is not written: 503, the provider will retry
    status, _ = await post(client, settings, "replicate", "pfailed")
    assert status == 503
    sink.available = True
    async with harness(settings, sink, Clock(now + 3600)) as h:
        exp = expectation("replicate", "pearly", now - 120)
        assert await h.registrar.register(exp, now) == "already_ended"
        exp = expectation("replicate", "pfailed", now - 120)
        assert await h.registrar.register(exp, now) == "added"  # the mark was undone
        assert await h.reconciler.run_once() == 1
    assert apis["replicate"].jobs["pearly"].polls == 0
    assert len(terminal(sink, "pearly")) == 1
    assert len(terminal(sink, "pfailed")) == 1


async def test_a_source_not_reconciled_costs_no_round_trip(
    aiohttp_client: AiohttpClient, live_redis: RedisServer, apis: dict[str, FakeApi]
) -> None:
    settings = reconcile_settings(live_redis.url, {"fal": apis["fal"]})  # replicate is not
    sink = MemorySink()
    client = await aiohttp_client(create_app(settings, sink=sink, metrics=Metrics()))
    direct = Redis.from_url(live_redis.url)
    try:
        await direct.config_resetstat()
        status, _ = await post(client, settings, "replicate", "pplain")
        assert status == 200
        async with asyncio.timeout(5):  # the commit lands just after the answer
            while "cmdstat_evalsha" not in (stats := await direct.info("commandstats")):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        redis_config = settings.dedupe.redis
        assert redis_config is not None
        assert await direct.keys(f"{redis_config.key_prefix}:expect:*") == []
    finally:
        await direct.aclose()
    assert "cmdstat_evalsha" in stats  # the event id's commit, as without reconciliation
    assert stats["cmdstat_set"]["calls"] == 1 + 1  # the claim's SET NX, the commit's SET
    assert stats["cmdstat_get"]["calls"] == 1  # the commit script's GET
