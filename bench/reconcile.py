"""Reconciliation figures: ``python -m bench.reconcile`` (docs/reconcile.md).

Against a fresh ``redis-server`` on a free port and the fake provider APIs of the tests (on
127.0.0.1), in one run:

* **memory**: ``used_memory`` growth per open expectation and per closed job in Redis, and the
  Python heap per expectation an instance holds in hand (``tracemalloc``);
* **throughput**: terminal events per second one reconciler closes (poll, terminal slot claim
  and commit, publish to an in-memory sink, close), as a ratio to bare GETs of the same fake
  API at the same concurrency;
* **edge cost**: CPU per terminal delivery of a job nobody expects, reconciliation on against
  off (Redis dedupe in both), and the Redis commands each makes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from multidict import CIMultiDict
from redis.asyncio import Redis

from bench.procs import RedisProcess
from gateway.app import PIPELINE, create_app
from gateway.logs import configure_logging
from gateway.reconcile.http import HttpClient
from gateway.sinks.memory import MemorySink
from schemas import JobExpectation
from tests.fake_providers import API_KEY, FakeApi, FakeJob, serving
from tests.reconcile_support import expectation, harness, reconcile_settings
from tests.support import signed


async def redis_memory(client: Redis) -> int:
    return int((await client.info("memory"))["used_memory"])


async def memory(url: str, client: Redis, count: int) -> dict[str, Any]:
    api = FakeApi("replicate")
    async with serving(api):
        settings = reconcile_settings(url, {"replicate": api}, prefix="bench-mem")
        sink = MemorySink()
        async with harness(settings, sink, time.time) as h:
            now = time.time()
            before = await redis_memory(client)
            for i in range(count):
                await h.store.add(expectation("replicate", f"p{i:010d}", now + 3600), now)
            opened = await redis_memory(client)
            for i in range(count):
                await h.store.close("replicate", f"p{i:010d}")
            closed = await redis_memory(client)
    tracemalloc.start()
    first = tracemalloc.take_snapshot()
    held = [
        JobExpectation.model_validate_json(expectation("replicate", f"p{i:010d}", now)
                                           .model_dump_json())
        for i in range(10_000)
    ]  # fmt: skip
    second = tracemalloc.take_snapshot()
    tracemalloc.stop()
    heap = sum(s.size_diff for s in second.compare_to(first, "filename"))
    del held
    return {
        "expectations": count,
        "redis_bytes_per_open_expectation": round((opened - before) / count),
        "redis_bytes_per_closed_job": round((closed - before) / count),
        "python_bytes_per_expectation_in_hand": round(heap / 10_000),
    }


async def throughput(url: str, count: int, concurrency: int) -> dict[str, Any]:
    api = FakeApi("replicate")
    for i in range(count):
        api.jobs[f"t{i:08d}"] = FakeJob(done_after=0)
    async with serving(api):
        # Bare GETs: the ceiling the fake API and the HTTP client set.
        http = HttpClient(10.0)
        await http.start()
        gate = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {API_KEY}"}

        async def get(job_id: str) -> None:
            async with gate:
                await http.get(f"{api.base_url}/v1/predictions/{job_id}", headers)

        started = time.perf_counter()
        await asyncio.gather(*(get(j) for j in api.jobs))
        bare = count / (time.perf_counter() - started)
        await http.close()
        for job in api.jobs.values():
            job.polls = 0

        settings = reconcile_settings(
            url, {"replicate": api}, prefix="bench-tp", batch_size=concurrency * 4,
            concurrency=concurrency,
        )  # fmt: skip
        sink = MemorySink()
        await sink.start()
        async with harness(settings, sink, time.time) as h:
            now = time.time()
            for job_id in api.jobs:
                await h.store.add(expectation("replicate", job_id, now - 120), now)
            started = time.perf_counter()
            while len(sink.events) < count:
                if not await h.reconciler.run_once():
                    break
            elapsed = time.perf_counter() - started
    closed = len(sink.events)
    return {
        "jobs": count,
        "concurrency": concurrency,
        "closed": closed,
        "terminal_events_per_second": round(closed / elapsed),
        "bare_gets_per_second": round(bare),
        "ratio_to_bare_gets": round(closed / elapsed / bare, 2),
    }


async def edge(url: str, client: Redis, count: int) -> dict[str, Any]:
    results: dict[str, Any] = {"deliveries": count}
    for label, enabled in (("off", False), ("on", True)):
        api = FakeApi("replicate")
        api.base_url = "http://127.0.0.1:9"  # never called: no job is expected
        settings = reconcile_settings(url, {"replicate": api}, prefix=f"bench-edge-{label}")
        settings = settings.model_copy(
            update={"reconcile": settings.reconcile.model_copy(update={"enabled": enabled})}
        )
        sink = MemorySink()
        app = create_app(settings, sink=sink)
        pipeline = app[PIPELINE]
        await sink.start()
        await pipeline.dedupe.start()
        source = pipeline.sources["replicate"]
        batch = [signed(settings, "replicate") for _ in range(count)]
        await client.config_resetstat()
        started = time.process_time()
        for raw, headers in batch:
            outcome = await pipeline.handle(source, raw, CIMultiDict(headers))
            assert outcome.status == 200, outcome
        cpu = time.process_time() - started
        stats = await client.info("commandstats")
        commands = sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_config")
        results[f"cpu_us_per_delivery_{label}"] = round(cpu / count * 1e6, 1)
        results[f"redis_commands_per_delivery_{label}"] = round(commands / count, 2)
        await pipeline.dedupe.close()
        if enabled:
            from gateway.app import RECONCILE

            await app[RECONCILE].connection.close()
    results["cpu_ratio_on_to_off"] = round(
        results["cpu_us_per_delivery_on"] / results["cpu_us_per_delivery_off"], 2
    )
    return results


async def run(port: int, args: argparse.Namespace) -> dict[str, Any]:
    url = f"redis://127.0.0.1:{port}/0"
    client = Redis(host="127.0.0.1", port=port)
    try:
        await client.ping()
        return {
            "memory": await memory(url, client, args.expectations),
            "throughput": await throughput(url, args.jobs, args.concurrency),
            "edge": await edge(url, client, args.deliveries),
            "redis_version": (await client.info("server"))["redis_version"],
        }
    finally:
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--expectations", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--deliveries", type=int, default=2_000)
    args = parser.parse_args(argv)
    configure_logging("warning", "console")
    with tempfile.TemporaryDirectory(prefix="reconcile-bench-") as directory:
        try:
            redis = RedisProcess(Path(directory))
        except RuntimeError as exc:
            print(exc, flush=True)
            return 2
        try:
            result = asyncio.run(run(redis.port, args))
        finally:
            redis.stop()
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
