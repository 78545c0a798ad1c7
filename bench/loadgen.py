"""Open-loop load at a fixed rate, corrected for coordinated omission (what wrk2 does).

wrk is closed-loop: a connection sends its next request only after the previous answer, so a
slow server is sent less and its stalls hide from the percentiles. Debian has no ``wrk2``, so
the fixed-rate phases use this generator instead, as its own process:

* request ``i`` of a phase is due at ``t0 + i / rate``, whatever happened before;
* a pool of keep-alive connections (raw HTTP/1.1 on asyncio + uvloop, pre-encoded requests, no
  client library in the hot path) takes due requests in order;
* latency is counted from the *due* time whenever the request had to wait for a free
  connection (the server was behind: that wait is the server's), and from the actual send
  otherwise, so the millisecond granularity of the event loop's timers is not billed to the
  server. ``late_sends`` says how often the due time was used; ``send_lag_ms`` shows the timer
  granularity left out.

Each request is distinct and signed with the time it is due (the replay window holds for a
long soak). Event ids of 2xx answers go to a file, to be checked against the Kafka topic.

    python -m bench.loadgen --plan plan.json --out result.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from bench.deliveries import SETS, Signer, generate

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)
_EVENT_ID = re.compile(rb'"event_id":"(evt_[0-9a-f]+)"')


class Answer:
    __slots__ = ("body", "close", "status")

    def __init__(self, status: int, body: bytes, close: bool) -> None:
        self.status = status
        self.body = body
        self.close = close


class Client(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        waiter = self.waiter
        if waiter is None:
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[: end + 2])
        match = _CONTENT_LENGTH.search(head)
        total = end + 4 + (int(match.group(1)) if match else 0)
        if len(self.buf) < total:
            return
        answer = Answer(
            int(head[9:12]), bytes(self.buf[end + 4 : total]), bool(_CLOSE.search(head))
        )
        del self.buf[:total]
        self.waiter = None
        if not waiter.done():
            waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    async def send(self, data: bytes) -> Answer:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def percentiles(values: array[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max/mean in milliseconds (nearest rank)."""
    if not values:
        return {}
    ordered = sorted(values)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, max(0, math.ceil(q / 100 * n) - 1))] * 1000

    return {
        "p50": rank(50),
        "p90": rank(90),
        "p99": rank(99),
        "p99.9": rank(99.9),
        "max": ordered[-1] * 1000,
        "mean": sum(ordered) / n * 1000,
    }


@dataclass
class _State:
    next: int = 0
    late: int = 0
    duplicates: int = 0
    last_answer: float = 0.0


async def run_phase(
    phase: dict[str, Any], signer: Signer, request_timeout: float, drain_seconds: float
) -> tuple[dict[str, Any], list[bytes]]:
    """Run one phase; returns its figures and the event ids of its 2xx answers."""
    rate = float(phase["rate"])
    duration = float(phase["duration"])
    count = max(1, math.ceil(rate * duration))
    connections = int(phase.get("connections", 64))
    loop = asyncio.get_running_loop()

    gen_started = time.time()
    base = int(gen_started)
    due_second = [base + int(i / rate) for i in range(count)]
    requests = list(generate(signer, SETS[phase["set"]], count, due_second))
    generation_seconds = time.time() - gen_started

    clients: list[Client] = []
    for _ in range(connections):
        _, client = await loop.create_connection(Client, "127.0.0.1", int(phase["port"]))
        clients.append(client)

    latencies: array[float] = array("d")
    lags: array[float] = array("d")
    statuses: Counter[str] = Counter()
    ids: list[bytes] = []
    errors: Counter[str] = Counter()
    state = _State()
    interval = 1.0 / rate
    t0_wall = time.time()
    t0 = time.perf_counter() + 0.05

    async def worker(client: Client) -> None:
        while True:
            i = state.next
            if i >= count:
                return
            state.next = i + 1
            due = t0 + i * interval
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
                sent = time.perf_counter()
                start = sent
                lags.append(sent - due)
            else:
                sent = time.perf_counter()
                start = due  # waited for a free connection: the server's delay, counted
                state.late += 1
            if client.closed:
                _, client = await loop.create_connection(Client, "127.0.0.1", int(phase["port"]))
                clients.append(client)
            try:
                async with asyncio.timeout(request_timeout):
                    answer = await client.send(requests[i])
            except (TimeoutError, ConnectionError, OSError) as exc:
                errors[type(exc).__name__] += 1
                client.close()
                client.closed = True
                continue
            now = time.perf_counter()
            state.last_answer = now
            latencies.append(now - start)
            statuses[str(answer.status)] += 1
            if 200 <= answer.status < 300:
                if b'"duplicate"' in answer.body:
                    state.duplicates += 1
                found = _EVENT_ID.search(answer.body)
                if found:
                    ids.append(found.group(1))
            if answer.close:
                client.close()
                client.closed = True

    tasks = [asyncio.create_task(worker(c)) for c in clients]
    try:
        async with asyncio.timeout(duration + drain_seconds + 1):
            await asyncio.gather(*tasks)
        drained = True
    except TimeoutError:
        drained = False
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finished = time.perf_counter()
    for client in clients:
        client.close()

    completed = len(latencies)
    elapsed = max(1e-9, (state.last_answer or finished) - t0)
    figures = {
        "label": phase.get("label"),
        "set": phase["set"],
        "port": phase["port"],
        "target_rate": rate,
        "duration_s": duration,
        "connections": connections,
        "scheduled": count,
        "completed": completed,
        "achieved_rate": completed / elapsed,
        "status": dict(statuses),
        "errors": dict(errors),
        "duplicates": state.duplicates,
        "late_sends": state.late,
        "drained": drained,
        "latency_ms": percentiles(latencies),
        "send_lag_ms": percentiles(lags),
        "generation_s": generation_seconds,
        "signing_skew_s": t0_wall - base,
        "started_at": t0_wall,
        "ended_at": t0_wall + (finished - t0),
        "event_ids": len(ids),
    }
    return figures, ids


async def run_plan(plan: dict[str, Any]) -> list[tuple[dict[str, Any], list[bytes]]]:
    signer = Signer.from_settings()
    results = []
    for phase in plan["phases"]:
        results.append(
            await run_phase(
                phase,
                signer,
                float(plan.get("request_timeout", 30.0)),
                float(plan.get("drain_seconds", 10.0)),
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plan", required=True, help="JSON: {phases: [{port, set, rate, ...}]}")
    parser.add_argument("--out", required=True, help="JSON results, one entry per phase")
    args = parser.parse_args()
    plan = json.loads(Path(args.plan).read_text(encoding="utf-8"))
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        results = runner.run(run_plan(plan))
    for phase, (_figures, ids) in zip(plan["phases"], results, strict=True):
        if phase.get("ids"):
            Path(phase["ids"]).write_bytes(b"".join(event_id + b"\n" for event_id in ids))
    figures = [figures for figures, _ids in results]
    Path(args.out).write_text(json.dumps(figures, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
