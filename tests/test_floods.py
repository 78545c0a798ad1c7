"""Floods against a real ``webhook-gateway serve`` process: thousands of idle and trickling
connections, and a flood of forged deliveries, while a normal client keeps delivering.

What is asserted is what holds on a loaded two-core machine: every normal delivery is
accepted, none waits anywhere near the header timeout, the flood's connections are closed by
the gateway (by its connection cap, ``limits.max_connections``, and its header timeout),
descriptors and memory stay bounded and come back down. The latencies are printed (run with
``-s``), not asserted; ``bench/flood_phases.py`` and ``bench/forgery_flood.py`` measure them
properly. These tests take about 30 s together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway import fd_limit
from gateway.settings import Settings, load_settings
from tests.gateway_process import gateway_process, wait_ready, write_config
from tests.support import ROOT, signed

IDLE = 5000
TRICKLING = 1000
HEADER_TIMEOUT = 8.0


@pytest.fixture(autouse=True)
def enough_descriptors() -> Iterator[None]:
    """The gateway inherits this process's limit (the flooder raises its own)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = IDLE + TRICKLING + 1000
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.fail(f"the hard file descriptor limit ({hard}) is below {want}: raise it")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match is not None
    return int(match.group(1)) / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Sampler:
    """Peak descriptors and RSS of a process, sampled on the event loop."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_fds = 0
        self.peak_rss = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.peak_fds = max(self.peak_fds, open_fds(self.pid))
            self.peak_rss = max(self.peak_rss, rss_mb(self.pid))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)


async def deliver(
    settings: Settings, port: int, count: int, *, forwarded_for: str | None = None
) -> list[tuple[int, float, float]]:
    """``count`` signed deliveries over 4 kept-alive connections: (status, seconds, when it
    was sent on the ``monotonic`` clock, which the flooder's process shares) each."""
    connector = aiohttp.TCPConnector(limit=4)
    source = "abstrakt"
    results: list[tuple[int, float, float]] = []
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(n: int) -> None:
            for _ in range(n):
                raw, headers = signed(settings, source)
                if forwarded_for is not None:
                    headers["X-Forwarded-For"] = forwarded_for
                sent, started = time.monotonic(), time.perf_counter()
                async with session.post(
                    f"http://127.0.0.1:{port}/webhooks/{source}", data=raw, headers=headers
                ) as response:
                    await response.read()
                results.append((response.status, time.perf_counter() - started, sent))
                await asyncio.sleep(0.02)

        await asyncio.gather(*(worker(count // 4) for _ in range(4)))
    return results


@contextlib.asynccontextmanager
async def running(tmp_path: Path, **changes: Any) -> AsyncIterator[tuple[Any, Settings, int]]:
    config, data = write_config(tmp_path, **changes)
    with gateway_process(config, log=tmp_path / "gateway.log") as proc:
        await asyncio.to_thread(wait_ready, data["admin"]["port"], 60.0, proc)
        yield proc, load_settings(config), data["listen"]["port"]


async def wait_for_fds(pid: int, at_least: int, within: float) -> None:
    deadline = time.monotonic() + within
    while open_fds(pid) < at_least:
        if time.monotonic() > deadline:
            raise AssertionError(f"the flood never reached {at_least} descriptors")
        await asyncio.sleep(0.1)


async def test_idle_and_trickling_connections_do_not_starve_deliveries(tmp_path: Path) -> None:
    limits = {"header_timeout_seconds": HEADER_TIMEOUT}
    async with running(tmp_path, limits=limits) as (proc, settings, port):
        cap = fd_limit.max_connections(settings.limits)  # the default, 2,024
        assert cap < IDLE
        base_fds, base_rss = open_fds(proc.pid), rss_mb(proc.pid)
        sampler = Sampler(proc.pid)
        stop_sampling = asyncio.Event()
        sampling = asyncio.create_task(sampler.run(stop_sampling))
        # The flood runs in its own process, so this one's event loop measures only the
        # normal sender.
        flooder = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.connection_flood",
            str(port),
            "--idle",
            str(IDLE),
            "--trickling",
            str(TRICKLING),
            "--within",
            str(HEADER_TIMEOUT * 3),
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        await wait_for_fds(proc.pid, base_fds + cap, HEADER_TIMEOUT / 2)
        results = await deliver(settings, port, 200)
        out, _ = await asyncio.wait_for(flooder.communicate(), HEADER_TIMEOUT * 3 + 30)
        flood = json.loads(out)
        await asyncio.sleep(1.0)
        stop_sampling.set()
        await sampling
        after_fds = open_fds(proc.pid)
        evicted = scraped(scrape(settings.admin.port), "webhook_gateway_connections_evicted_total")

    statuses = [s for s, _, _ in results]
    latencies = [t for _, t, _ in results]
    # Deliveries sent while the flood was still connecting, and those sent once it was in
    # (bench/flood_phases.py measures the phases properly).
    all_open = flood["trickling_connected_at"]
    phases = {
        "ramp": [t for _, t, sent in results if sent < all_open],
        "steady": [t for _, t, sent in results if sent >= all_open],
    }
    by_phase = "; ".join(
        f"{name} ({len(values)}) p50 {statistics.median(values) * 1000:.1f} ms, "
        f"p99 {percentile(values, 0.99) * 1000:.1f} ms"
        for name, values in phases.items()
        if values
    )
    print(
        f"\nconnection flood: {IDLE} idle + {TRICKLING} trickling; normal deliveries "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms "
        f"({by_phase}); gateway fds {base_fds} -> peak {sampler.peak_fds} -> {after_fds}; "
        f"RSS {base_rss:.0f} -> peak {sampler.peak_rss:.0f} MB; {evicted:.0f} closed by the "
        f"connection cap; {flood}"
    )
    assert flooder.returncode == 0
    assert statuses == [200] * 200
    assert max(latencies) < HEADER_TIMEOUT / 2
    # The gateway held the flood up to its connection cap, and no further than the cap and one
    # accept queue taken at once (fd_limit.needed).
    assert sampler.peak_fds >= base_fds + cap
    assert sampler.peak_fds <= base_fds + cap + fd_limit.LISTEN_BACKLOG + 50
    # The cap closed the oldest silent ones as the flood came, and the header timeout the
    # rest, the trickling ones included; none of the sender's kept-alive connections.
    assert evicted >= IDLE + TRICKLING - cap
    assert flood["idle_closed"] == IDLE
    assert flood["trickling_closed"] == TRICKLING
    assert flood["closed_after_seconds"] < HEADER_TIMEOUT * 3
    assert after_fds <= base_fds + 10
    # A connection costs the gateway a few kilobytes, not a buffer per connection.
    assert sampler.peak_rss - base_rss < 200
    # What startup built was kept out of the collector's full passes, which a flood's
    # thousands of new objects trigger (docs/floods.md).
    (listening,) = [line for line in gateway_log(tmp_path) if line.get("event") == "listening"]
    assert listening["frozen_objects"] > 10_000


def gateway_log(tmp_path: Path) -> list[dict[str, Any]]:
    text = (tmp_path / "gateway.log").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def scrape(admin_port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def scraped(metrics: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", metrics, re.M)
    assert found is not None, name
    return float(found.group(1))


@contextlib.contextmanager
def limited_gateway(config: Path, log: Path, descriptors: int) -> Iterator[subprocess.Popen[bytes]]:
    """``webhook-gateway serve`` with soft and hard descriptor limits of ``descriptors``."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, descriptors))

    with gateway_process(config, log=log, preexec=limit) as proc:
        yield proc


async def test_a_flood_past_the_fd_limit_leaves_new_connections_room(tmp_path: Path) -> None:
    """Without a cap, a flood holding every descriptor makes the gateway drop each new
    connection (a sender opening one per delivery is locked out: docs/floods.md). With the
    limit what the cap needs (``fd_limit.needed``), new connections are still served."""
    cap, flood_size, header_timeout = 1000, 3000, 4.0
    limits = {"max_connections": cap, "header_timeout_seconds": header_timeout}
    config, data = write_config(tmp_path, limits=limits)
    settings = load_settings(config)
    descriptors = fd_limit.needed(settings.limits)
    assert descriptors < flood_size
    with limited_gateway(config, tmp_path / "gateway.log", descriptors) as proc:
        await asyncio.to_thread(wait_ready, data["admin"]["port"], 60.0, proc)
        port = data["listen"]["port"]
        base_fds = open_fds(proc.pid)
        flooder = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.connection_flood", str(port),
            "--idle", str(flood_size), "--trickling", "0", "--within", str(header_timeout * 3),
            stdout=asyncio.subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        await wait_for_fds(proc.pid, base_fds + cap, header_timeout / 2)
        statuses: list[int] = []
        # A new connection for every delivery, as many providers send them.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(50):
                raw, headers = signed(settings, "abstrakt")
                url = f"http://127.0.0.1:{port}/webhooks/abstrakt"
                async with session.post(url, data=raw, headers=headers) as response:
                    statuses.append(response.status)
        out, _ = await asyncio.wait_for(flooder.communicate(), header_timeout * 3 + 30)
        flood = json.loads(out)
        evicted = scraped(
            scrape(data["admin"]["port"]), "webhook_gateway_connections_evicted_total"
        )
    assert statuses == [200] * 50
    assert flood["idle_closed"] == flood_size
    assert evicted >= flood_size - cap
    log = (tmp_path / "gateway.log").read_text(encoding="utf-8")
    assert "fd_limit_low" not in log


async def test_forgery_flood_is_answered_429_and_others_still_deliver(tmp_path: Path) -> None:
    burst, refill = 20, 1.0
    limits = {"failure_budget_burst": burst, "failure_budget_per_second": refill}
    # The flood and the normal sender arrive through loopback as a trusted proxy, with their
    # client addresses forwarded: what the budget keys by.
    listen = {"trusted_proxies": ["127.0.0.1"]}
    async with running(tmp_path, limits=limits, listen=listen) as (_, settings, port):
        admin_port = settings.admin.port
        statuses: dict[int, int] = {}
        stop = asyncio.Event()
        started = time.monotonic()

        async def attack() -> None:
            connector = aiohttp.TCPConnector(limit=16)
            async with aiohttp.ClientSession(connector=connector) as session:

                async def one() -> None:
                    sent = 0
                    while not stop.is_set() and sent < 2000:
                        raw, headers = signed(settings, "fal")
                        headers["X-Forwarded-For"] = "203.0.113.66"
                        url = f"http://127.0.0.1:{port}/webhooks/fal"
                        forged = raw + b" "  # the signature no longer covers the body
                        async with session.post(url, data=forged, headers=headers) as response:
                            await response.read()
                        statuses[response.status] = statuses.get(response.status, 0) + 1
                        sent += 1

                await asyncio.gather(*(one() for _ in range(16)))

        attacking = asyncio.create_task(attack())
        await asyncio.sleep(0.5)
        results = await deliver(settings, port, 200, forwarded_for="198.51.100.7")
        stop.set()
        await attacking
        duration = time.monotonic() - started
        metrics = scrape(admin_port)

    latencies = [t for _, t, _ in results]
    print(
        f"\nforgery flood: {sum(statuses.values())} forged in {duration:.1f} s {statuses}; "
        f"normal deliveries p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
    )
    assert [s for s, _, _ in results] == [200] * 200
    assert set(statuses) == {401, 429}
    # At most the burst, what refilled meanwhile, and what was already in flight.
    assert statuses[401] <= burst + refill * duration + 16
    assert statuses[429] > statuses[401]
    refused = re.search(
        r'^webhook_gateway_failure_budget_refusals_total\{source="fal"\} (\S+)$', metrics, re.M
    )
    assert refused is not None
    assert float(refused.group(1)) == statuses[429]
    assert max(latencies) < HEADER_TIMEOUT / 2
