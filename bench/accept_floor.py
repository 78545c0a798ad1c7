"""What accepting a burst of connections costs an event loop that does nothing else.

``python -m bench.accept_floor [--connections 5000] [--batch 500] [--rounds 3]``

A uvloop server on loopback whose protocol only keeps its transport (``noop``), or the
gateway's own ``PendingConnection`` in front of a real aiohttp server and the connection cap
(``pending``; ``pending, capped`` with the cap at ``--cap``, 2,024 by default, so that a
burst also closes the oldest), takes the connections another process opens in bursts of
``--batch``, as ``bench/connection_flood.py`` does. A 1 ms ticker on the loop records how
late each tick came: the longest lateness is the longest stall a delivery in flight would
have waited. The process's user and system CPU per connection come from ``getrusage``.

The ``noop`` row is the floor under any gateway on one event loop: the kernel's accept, the
event loop's transport and one Python object per connection, every pending connection taken
in one loop turn (``docs/floods.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys

import uvloop
from aiohttp import web

from gateway.connection_cap import ConnectionCap
from gateway.metrics import Metrics
from gateway.pending_connection import PendingConnection

FLOODER = """
import socket, sys, time
port, total, batch = (int(a) for a in sys.argv[1:4])
held = []
for _ in range(total // batch):
    for _ in range(batch):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        held.append(s)
    time.sleep(0.05)
time.sleep(1.0)
"""


class Noop(asyncio.Protocol):
    __slots__ = ("transport",)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport


async def _ticker(lateness: list[float]) -> None:
    loop = asyncio.get_running_loop()
    last = loop.time()
    while True:
        await asyncio.sleep(0.001)
        now = loop.time()
        lateness.append(now - last - 0.001)
        last = now


async def measure(kind: str, connections: int, batch: int, cap_at: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    runner = web.AppRunner(web.Application(), access_log=None)
    await runner.setup()
    assert runner.server is not None
    limit = cap_at if kind == "pending, capped" else 10 * connections
    cap = ConnectionCap(limit, Metrics(), header_timeout=60.0)
    cap.install(runner.server)
    server = runner.server

    def factory() -> asyncio.Protocol:
        return Noop() if kind == "noop" else PendingConnection(server, cap)

    listener = await loop.create_server(factory, "127.0.0.1", 0, backlog=1024)
    port = listener.sockets[0].getsockname()[1]
    lateness: list[float] = []
    ticker = asyncio.create_task(_ticker(lateness))
    await asyncio.sleep(0.3)
    lateness.clear()
    before = resource.getrusage(resource.RUSAGE_SELF)
    flooder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FLOODER, str(port), str(connections), str(batch)
    )
    await flooder.wait()
    after = resource.getrusage(resource.RUSAGE_SELF)
    ticker.cancel()
    listener.close()
    cap.close_waiting()
    await runner.cleanup()
    lateness.sort()
    return {
        "user_us": (after.ru_utime - before.ru_utime) * 1e6 / connections,
        "sys_us": (after.ru_stime - before.ru_stime) * 1e6 / connections,
        "max_stall_ms": lateness[-1] * 1000,
        "p99_stall_ms": lateness[int(0.99 * len(lateness))] * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cap", type=int, default=2024, help="the capped variant's bound")
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, float]]] = {"noop": [], "pending": [], "pending, capped": []}
    for _ in range(args.rounds):  # interleaved
        for kind, runs in results.items():
            runs.append(uvloop.run(measure(kind, args.connections, args.batch, args.cap)))
    print(
        f"{args.connections:,} connections in bursts of {args.batch}, {args.rounds} rounds, "
        "medians, and the longest stall of any round\n"
    )
    print(
        "| protocol | user µs/conn | system µs/conn | longest stall ms (median / worst) "
        "| p99 tick lateness ms |"
    )
    print("|---|---:|---:|---:|---:|")
    for kind, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        worst = max(r["max_stall_ms"] for r in runs)
        print(
            f"| {kind} | {med['user_us']:.1f} | {med['sys_us']:.1f} "
            f"| {med['max_stall_ms']:.1f} / {worst:.1f} "
            f"| {med['p99_stall_ms']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
