"""A normal sender's latency through a connection flood, phase by phase, and the levers tried.

``python -m bench.flood_phases [--rounds 2] [--rate 200] [--fresh] [--variants baseline,...]``

A real gateway (the example config, the local sink on tmpfs, an 8 s header timeout) takes signed
deliveries from a normal sender at a fixed rate, open loop (latency counted from when each
request was due, so a stalled event loop is not hidden by the sender waiting for it), over
kept-alive connections, or with ``--fresh`` a new connection per delivery as many providers
do. Two seconds in, ``bench.connection_flood`` (its own process) opens 5,000 idle connections
in batches of 500 and then 1,000 that trickle their headers. The gateway's descriptor count
and CPU time, sampled by a process of their own, cut each delivery into the phase it was due
in:

* ``quiet``: before the flood;
* ``ramp idle``: the idle connections being accepted, 500 at a time;
* ``ramp trickling``: the trickling ones being accepted (1,000 at once);
* ``steady``: the flood in (every connection open, or as many as the connection cap keeps),
  the trickling ones sending a byte a second each;
* ``teardown``: the header timeout closing them;
* ``after``: the flood gone.

Each variant is a way of running the gateway (``serve VARIANT`` patches it, for the
measurement only): ``baseline`` as shipped; ``no gc freeze`` without ``gc.freeze()`` after
startup; ``cap N`` with ``limits.max_connections`` N, ``no cap`` with none
(``gateway/connection_cap.py``); ``refuse over N`` the rejected alternative, a connection
past N open closed as soon as it is accepted; ``asyncio loop`` without uvloop; ``backlog N``
another listen queue; ``paced accept N`` at most N connections accepted per event-loop turn
(uvloop takes every pending one at once); ``fd limit N`` the gateway's descriptor limit (soft
and hard). ``A + B`` applies both. Variants are interleaved over the rounds and each phase's
latencies are pooled over the rounds.

A run starts only when the 1-minute load average is below ``--load-below`` (1.5), and is
measured again when other processes on the machine used more than ``--foreign-cpu`` cores
meanwhile. Printed: per variant and phase the deliveries (and how many were not accepted),
p50 / p99 / max, p99 as a ratio to the same variant's quiet phase, and the gateway's CPU
(share of one core); then the phases' lengths, how much of the flood the gateway closed, and
the connections the kernel dropped from a full listen queue.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import errno
import gc
import json
import math
import os
import re
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.deliveries import EXAMPLE_CONFIG, ROOT
from bench.procs import poll_ready, write_local_config
from bench.sampler import cpu_seconds, machine_busy_seconds

SENDER_CONNECTIONS = 16
PHASES = ("quiet", "ramp idle", "ramp trickling", "steady", "teardown", "after")
#: The phases while flood connections were open: pooled into one row, the flood as a whole.
DURING = ("ramp idle", "ramp trickling", "steady", "teardown")


# --- the variants (run in the gateway's process) -------------------------------------------------


def _backlog(size: int) -> Callable[[], None]:
    def apply() -> None:
        from gateway import fd_limit

        fd_limit.LISTEN_BACKLOG = size

    return apply


def _asyncio_loop() -> None:
    import builtins

    real_import = builtins.__import__

    def no_uvloop(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "uvloop":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    builtins.__import__ = no_uvloop


class _PacedServer:
    """A listening socket whose accept loop yields to the event loop every ``batch``."""

    def __init__(self, sock: socket.socket, factory: Any, batch: int) -> None:
        self.sockets = [sock]
        self._connecting: set[asyncio.Task[Any]] = set()
        self._task = asyncio.get_running_loop().create_task(self._accept(sock, factory, batch))

    async def _accept(self, sock: socket.socket, factory: Any, batch: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(sock, _wake, readable)
            try:
                await readable
            finally:
                loop.remove_reader(sock)
            accepted = batch
            while accepted == batch:
                accepted, exhausted = self._take(sock, factory, batch, loop)
                await asyncio.sleep(1.0 if exhausted else 0)

    def _take(
        self, sock: socket.socket, factory: Any, batch: int, loop: asyncio.AbstractEventLoop
    ) -> tuple[int, bool]:
        """Accept up to ``batch``: how many, and whether descriptors ran out."""
        for accepted in range(batch):
            try:
                conn, _peer = sock.accept()
            except (BlockingIOError, InterruptedError):
                return accepted, False
            except OSError as exc:
                return accepted, exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS)
            conn.setblocking(False)
            task = loop.create_task(loop.connect_accepted_socket(factory, conn))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)
        return batch, False

    def close(self) -> None:
        self._task.cancel()
        for sock in self.sockets:
            sock.close()

    async def wait_closed(self) -> None:
        return None


def _wake(readable: asyncio.Future[None]) -> None:
    if not readable.done():
        readable.set_result(None)


def _handler_per_accept() -> None:
    """The gateway before ``gateway/pending_connection.py``: aiohttp builds its handler for
    every connection as it is accepted."""
    from aiohttp import web

    from gateway import server

    def site(runner: Any, cap: Any, host: str, port: int, **kwargs: Any) -> web.TCPSite:
        return web.TCPSite(runner, host, port, **kwargs)  # looked up now: paced accept applies

    server.PendingSite = site  # type: ignore[assignment,attr-defined]


def _paced_accept(batch: int) -> Callable[[], None]:
    """At most ``batch`` accepts per loop turn, with aiohttp's handler built at each accept
    (as it was measured, before ``gateway/pending_connection.py``)."""

    def apply() -> None:
        from aiohttp import web

        _handler_per_accept()

        class PacedSite(web.TCPSite):
            async def start(self) -> None:
                self._runner._reg_site(self)
                sock = socket.create_server(
                    (self._host or "0.0.0.0", self._port),
                    backlog=self._backlog,
                    reuse_port=bool(self._reuse_port),
                )
                sock.setblocking(False)
                assert self._runner.server is not None
                self._server = _PacedServer(sock, self._runner.server, batch)  # type: ignore[assignment]
                self._bound_port = sock.getsockname()[1]

        web.TCPSite = PacedSite  # type: ignore[misc]

    return apply


def _cap(limit: int) -> Callable[[], None]:
    """``limits.max_connections`` as ``limit``, whatever the config says."""

    def apply() -> None:
        from gateway import fd_limit

        fd_limit.max_connections = lambda limits: limit

    return apply


def _refuse_over(limit: int) -> Callable[[], None]:
    """The rejected alternative to ``gateway/connection_cap.py``: past ``limit`` open, close the
    connection just accepted, whoever it is (and no cap of the gateway's own)."""

    def apply() -> None:
        from aiohttp import web_server

        _cap(NO_CAP)()
        _handler_per_accept()  # Server.connection_made at the accept, as it was measured
        made = web_server.Server.connection_made

        def refusing(self: web_server.Server, handler: Any, transport: asyncio.Transport) -> None:
            made(self, handler, transport)
            if len(self._connections) > limit:
                transport.close()

        web_server.Server.connection_made = refusing  # type: ignore[method-assign]

    return apply


def _fd_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


def _no_gc_freeze() -> None:
    """The gateway as it was before it froze its startup objects (``gateway/server.py``)."""
    from gateway import server

    server._freeze_startup_objects = lambda: 0


NO_CAP = 10**9

FIXED: dict[str, Callable[[], None]] = {
    "baseline": lambda: None,
    "no cap": _cap(NO_CAP),
    "no gc freeze": _no_gc_freeze,
    "handler per accept": _handler_per_accept,
    "asyncio loop": _asyncio_loop,
}
SIZED: dict[str, Callable[[int], Callable[[], None]]] = {
    r"backlog (\d+)": _backlog,
    r"paced accept (\d+)": _paced_accept,
    r"cap (\d+)": _cap,
    r"refuse over (\d+)": _refuse_over,
    r"fd limit (\d+)": _fd_limit,
}
DEFAULT_VARIANTS = (
    "no gc freeze + no cap,no cap,baseline,cap 1000,refuse over 1000,asyncio loop + no cap,"
    "backlog 128 + no cap,paced accept 1 + no cap,paced accept 16 + no cap,"
    "paced accept 64 + no cap"
)


def patches(name: str) -> Callable[[], None]:
    """What ``name`` (parts joined by `` + ``) does to the gateway; ``KeyError`` if unknown."""
    parts: list[Callable[[], None]] = []
    for part in name.split(" + "):
        if part in FIXED:
            parts.append(FIXED[part])
            continue
        sized = [(f, m) for pattern, f in SIZED.items() if (m := re.fullmatch(pattern, part))]
        if not sized:
            raise KeyError(part)
        ((make, match),) = sized
        parts.append(make(int(match.group(1))))

    def apply() -> None:
        for part in parts:
            part()

    return apply


# --- measuring ---------------------------------------------------------------------------------

GC_LOG = "FLOOD_PHASES_GC_LOG"


def log_gc_pauses(path: Path) -> None:
    """Record every collection of the cyclic garbage collector (monotonic start, seconds,
    generation, objects tracked) and write them to ``path`` when the process exits."""
    pauses: list[tuple[float, float, int]] = []
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.monotonic()
        else:
            pauses.append((started[0], time.monotonic() - started[0], info["generation"]))

    def write() -> None:
        path.write_text(json.dumps(pauses), encoding="utf-8")

    gc.callbacks.append(callback)
    atexit.register(write)


@dataclass(frozen=True)
class Flood:
    idle: int = 5000
    trickling: int = 1000
    #: The gateway's ``limits.header_timeout_seconds``: how long the flood is held.
    header_timeout: float = 8.0
    #: How long the sender delivers before the flood starts.
    quiet_seconds: float = 2.0


def write_config(workdir: Path, flood: Flood) -> tuple[Path, int, int]:
    return write_local_config(workdir, {"header_timeout_seconds": flood.header_timeout})


def sample(pid: int, interval: float) -> None:
    """Print ``time descriptors cpu-seconds`` of ``pid`` until it exits or stdin has a line. A
    process of its own, so listing thousands of descriptors never holds the sender's GIL."""
    while True:
        try:
            count = len(os.listdir(f"/proc/{pid}/fd"))
        except FileNotFoundError:
            return
        print(f"{time.monotonic():.4f} {count} {cpu_seconds(pid) or 0.0:.2f}", flush=True)
        if select.select([sys.stdin], [], [], interval)[0]:
            return


@dataclass
class Series:
    times: list[float] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @classmethod
    def parse(cls, out: bytes) -> Series:
        series = cls()
        for line in out.decode().splitlines():
            t, count, cpu = line.split()
            series.times.append(float(t))
            series.fds.append(int(count))
            series.cpu.append(float(cpu))
        return series

    def first(self, after: float, test: Callable[[int], bool]) -> float:
        found = (t for t, c in zip(self.times, self.fds, strict=True) if t >= after and test(c))
        return next(found, self.times[-1])

    def cpu_share(self, start: float, end: float) -> float:
        inside = [c for t, c in zip(self.times, self.cpu, strict=True) if start <= t <= end]
        span = [t for t in self.times if start <= t <= end]
        if len(inside) < 2 or span[-1] <= span[0]:
            return float("nan")
        return (inside[-1] - inside[0]) / (span[-1] - span[0])


def phase_starts(
    series: Series, flood_started: float, flood: Flood, flooded: dict[str, Any]
) -> dict[str, float]:
    """When each phase began. A ramp ends once the flooder has established its connections
    and the gateway has accepted them (its descriptors reach the flood; with a connection cap
    they never do, and the flooder's times alone count); the teardown begins when the
    descriptors fall from what the gateway held once the flood was in."""
    times, fds = series.times, series.fds
    base = [c for t, c in zip(times, fds, strict=True) if t < flood_started][-1]

    def reached(after: float, test: Callable[[int], bool]) -> float | None:
        return next((t for t, c in zip(times, fds, strict=True) if t >= after and test(c)), None)

    idle_in = reached(flood_started, lambda c: c >= base + flood.idle)
    idle_done = max(flooded["idle_connected_at"], idle_in or flood_started)
    all_in = reached(idle_done, lambda c: c >= base + flood.idle + flood.trickling)
    all_done = max(flooded["trickling_connected_at"], idle_done, all_in or idle_done)
    held = next((c for t, c in zip(times, fds, strict=True) if t >= all_done), base)
    closing = reached(all_done, lambda c: c < held - 50) or times[-1]
    # The sender may have opened more of its own connections meanwhile.
    closed = reached(closing, lambda c: c <= base + SENDER_CONNECTIONS + 5) or times[-1]
    return {
        "quiet": float("-inf"),  # the sender may start before the first sample
        "ramp idle": flood_started,
        "ramp trickling": idle_done,
        "steady": all_done,
        "teardown": closing,
        "after": closed,
        "end": times[-1],
    }


async def send(
    port: int, rate: float, fresh: bool, stop: asyncio.Event
) -> list[tuple[float, float]]:
    """(due time, latency) of signed abstrakt deliveries at ``rate`` per second until ``stop``;
    the latency is ``nan`` for one the gateway did not accept (a status or a reset)."""
    from gateway.settings import load_settings
    from tests.support import signed

    settings = load_settings(EXAMPLE_CONFIG)
    results: list[tuple[float, float]] = []
    connector = aiohttp.TCPConnector(limit=SENDER_CONNECTIONS, force_close=fresh)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(due: float) -> None:
            raw, headers = signed(settings, "abstrakt")
            try:
                async with session.post(
                    f"http://127.0.0.1:{port}/webhooks/abstrakt", data=raw, headers=headers
                ) as response:
                    await response.read()
                accepted = response.status == 200
            except aiohttp.ClientError:
                accepted = False
            results.append((due, time.monotonic() - due if accepted else float("nan")))

        start = time.monotonic()
        tasks = []
        n = 0
        while not stop.is_set():
            due = start + n / rate
            n += 1
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
    return results


@dataclass
class Run:
    latencies: dict[str, list[float]]
    cpu: dict[str, float]
    lengths: dict[str, float]
    flood: dict[str, Any]
    #: Connections the kernel dropped because a listen queue was full (machine-wide).
    listen_overflows: int
    #: CPU (cores) that other processes on the machine used during the run.
    foreign_cpu: float
    #: The gateway's full (generation 2) garbage collections per phase, in ms each.
    full_gc_ms: dict[str, list[float]]


def listen_overflows() -> int:
    """The kernel's ``TcpExt ListenOverflows`` counter (every listener on the machine)."""
    lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()]
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names[0] == "TcpExt:":
            return int(values[names.index("ListenOverflows")])
    return 0


def own_cpu_seconds() -> float:
    """CPU of this process and of its children that have been waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def wait_until_quiet(load_below: float, busy_below: float, within: float = 3600.0) -> None:
    """Wait until the 1-minute load average is below ``load_below`` and the machine, with
    nothing of ours running, used less than ``busy_below`` cores over three seconds."""
    deadline = time.monotonic() + within
    while True:
        if busy_below >= (os.cpu_count() or 1):
            return  # nothing could be busy enough
        if os.getloadavg()[0] < load_below:
            before = machine_busy_seconds()
            time.sleep(3.0)
            if (machine_busy_seconds() - before) / 3.0 < busy_below:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the machine was not quiet for {within:.0f} s")
        time.sleep(10)


async def _flood_while_sending(
    port: int, rate: float, fresh: bool, flood: Flood
) -> tuple[list[tuple[float, float]], float, dict[str, Any]]:
    stop = asyncio.Event()
    sending = asyncio.create_task(send(port, rate, fresh, stop))
    await asyncio.sleep(flood.quiet_seconds)
    started = time.monotonic()
    flooder = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.connection_flood", str(port),
        "--idle", str(flood.idle), "--trickling", str(flood.trickling),
        "--within", str(flood.header_timeout * 3),
        stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    out, _ = await flooder.communicate()
    await asyncio.sleep(1.0)
    stop.set()
    return await sending, started, json.loads(out)


def measure(variant: str, rate: float, fresh: bool, flood: Flood) -> Run:
    overflows = listen_overflows()
    busy, own, clock = machine_busy_seconds(), own_cpu_seconds(), time.monotonic()
    # The event log on tmpfs when there is one: another process's disk flushes would show up as
    # the local sink's fsync stalling deliveries, which is not what this measures.
    scratch = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="flood-phases-", dir=scratch) as tmp:
        config, port, admin = write_config(Path(tmp), flood)
        gc_log = Path(tmp) / "gc.json"
        gateway = subprocess.Popen(
            [sys.executable, "-m", "bench.flood_phases", "serve", variant, "--config", str(config)],
            cwd=ROOT,
            env={**os.environ, GC_LOG: str(gc_log)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            poll_ready(admin, 60, lambda: None if gateway.poll() is None else "gateway exited")
            sampler = subprocess.Popen(
                [sys.executable, "-m", "bench.flood_phases", "sample", str(gateway.pid)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert sampler.stdout is not None
            first = sampler.stdout.readline()  # sampling has begun before anything is sent
            results, started, flooded = asyncio.run(_flood_while_sending(port, rate, fresh, flood))
            series = Series.parse(first + sampler.communicate(b"stop\n", timeout=30)[0])
        finally:
            gateway.terminate()
            gateway.wait(30)
        pauses = json.loads(gc_log.read_text()) if gc_log.exists() else []
    foreign = (machine_busy_seconds() - busy) - (own_cpu_seconds() - own)
    foreign_share = max(0.0, foreign / (time.monotonic() - clock))
    overflows = listen_overflows() - overflows
    starts = phase_starts(series, started, flood, flooded)
    latencies: dict[str, list[float]] = {p: [] for p in PHASES}
    for due, latency in results:
        phase = next(p for p in reversed(PHASES) if due >= starts[p])
        latencies[phase].append(latency)
    starts["quiet"] = series.times[0]
    bounds = [starts[p] for p in (*PHASES, "end")]
    cpu = {p: series.cpu_share(bounds[i], bounds[i + 1]) for i, p in enumerate(PHASES)}
    lengths = {p: bounds[i + 1] - bounds[i] for i, p in enumerate(PHASES)}
    gc_ms: dict[str, list[float]] = {p: [] for p in PHASES}
    for at, seconds, generation in pauses:
        if generation == 2 and at >= starts["quiet"]:
            gc_ms[next(p for p in reversed(PHASES) if at >= starts[p])].append(seconds * 1000)
    return Run(latencies, cpu, lengths, flooded, overflows, foreign_share, gc_ms)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def report(
    runs: dict[str, list[Run]], opts: argparse.Namespace, flood: Flood, load: list[float]
) -> None:
    sender = "a new connection per delivery" if opts.fresh else "kept-alive connections"
    print(
        f"\nConnection flood ({flood.idle:,} idle + {flood.trickling:,} trickling, header "
        f"timeout {flood.header_timeout:g} s); normal sender "
        f"{opts.rate:.0f}/s open loop over {sender}; {opts.rounds} round(s) per variant, "
        f"interleaved, pooled; each run started at a 1-minute load average below "
        f"{opts.load_below} ({min(load):.2f} to {max(load):.2f}), other processes using at most "
        f"{max(r.foreign_cpu for rs in runs.values() for r in rs):.2f} of the "
        f"{os.cpu_count()} cores during a run.\n"
    )
    print(
        "| variant | phase | deliveries | not accepted | p50 ms | p99 ms | max ms | p99 x quiet "
        "| gateway CPU | full GCs (longest ms) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for variant, rs in runs.items():
        quiet = pct([x for r in rs for x in r.latencies["quiet"] if not math.isnan(x)], 0.99)
        for phase in PHASES:
            sent = [x for r in rs for x in r.latencies[phase]]
            values = [x for x in sent if not math.isnan(x)]
            if not values:
                continue
            cpu = statistics.median(r.cpu[phase] for r in rs)
            gcs = [ms for r in rs for ms in r.full_gc_ms[phase]]
            print(
                f"| {variant} | {phase} | {len(sent)} | {len(sent) - len(values)} "
                f"| {statistics.median(values) * 1000:.1f} | {pct(values, 0.99):.1f} "
                f"| {max(values) * 1000:.1f} | {pct(values, 0.99) / quiet:.1f} | {cpu:.2f} "
                f"| {len(gcs)} ({max(gcs, default=0):.0f}) |"
            )
        sent = [x for r in rs for p in DURING for x in r.latencies[p]]
        values = [x for x in sent if not math.isnan(x)]
        if values:
            gcs = [ms for r in rs for p in DURING for ms in r.full_gc_ms[p]]
            print(
                f"| {variant} | whole flood (ramp to teardown) | {len(sent)} "
                f"| {len(sent) - len(values)} | {statistics.median(values) * 1000:.1f} "
                f"| {pct(values, 0.99):.1f} | {max(values) * 1000:.1f} "
                f"| {pct(values, 0.99) / quiet:.1f} | - | {len(gcs)} ({max(gcs, default=0):.0f}) |"
            )
    print(
        "\n| variant | ramp s (idle + trickling) | steady s | teardown s | flood closed "
        "| listen overflows |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for variant, rs in runs.items():
        med = {p: statistics.median(r.lengths[p] for r in rs) for p in PHASES}
        closed = min(r.flood["idle_closed"] + r.flood["trickling_closed"] for r in rs)
        print(
            f"| {variant} | {med['ramp idle']:.2f} + {med['ramp trickling']:.2f} "
            f"| {med['steady']:.2f} | {med['teardown']:.2f} "
            f"| {closed:,} of {flood.idle + flood.trickling:,} "
            f"| {sum(r.listen_overflows for r in rs):,} |"
        )


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["sample"]:
        sample(int(args[1]), 0.05)
        return 0
    if args[:1] == ["serve"]:
        log_gc_pauses(Path(os.environ[GC_LOG]))
        patches(args[1])()
        from gateway.cli import main as gateway_main

        return gateway_main(["serve", *args[2:]])
    parser = argparse.ArgumentParser(prog="python -m bench.flood_phases", description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=float, default=200.0, help="normal deliveries per second")
    parser.add_argument("--fresh", action="store_true", help="a new connection per delivery")
    parser.add_argument(
        "--variants",
        default=DEFAULT_VARIANTS,
        help="comma-separated; each of: "
        + ", ".join([*FIXED, *(p.replace("(\\d+)", "N") for p in SIZED)]),
    )
    parser.add_argument(
        "--load-below", type=float, default=1.5, help="start a run only below this load average"
    )
    parser.add_argument(
        "--foreign-cpu",
        type=float,
        default=0.15,
        help="measure a run again when other processes used more cores than this",
    )
    parser.add_argument("--idle", type=int, default=Flood.idle)
    parser.add_argument("--trickling", type=int, default=Flood.trickling)
    parser.add_argument("--header-timeout", type=float, default=Flood.header_timeout)
    parser.add_argument("--quiet-seconds", type=float, default=Flood.quiet_seconds)
    opts = parser.parse_args(args)
    flood = Flood(opts.idle, opts.trickling, opts.header_timeout, opts.quiet_seconds)
    chosen = opts.variants.split(",")
    for name in chosen:
        try:
            patches(name)
        except KeyError as exc:
            parser.error(f"unknown variant: {exc.args[0]}")
    # The gateway inherits this limit (it raises its own only to what max_in_flight needs).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (max(soft, flood.idle + flood.trickling + 1000), hard)
    )
    runs: dict[str, list[Run]] = {v: [] for v in chosen}
    load: list[float] = []
    for round_ in range(opts.rounds):
        for variant in chosen:
            for _attempt in range(20):
                wait_until_quiet(opts.load_below, opts.foreign_cpu)
                load.append(os.getloadavg()[0])
                run = measure(variant, opts.rate, opts.fresh, flood)
                lengths = {p: round(s, 2) for p, s in run.lengths.items()}
                print(
                    f"# round {round_ + 1} {variant}: load {load[-1]:.2f}, other processes "
                    f"{run.foreign_cpu:.2f} cores, listen overflows {run.listen_overflows}; "
                    f"{lengths} {run.flood}",
                    flush=True,
                )
                if run.foreign_cpu <= opts.foreign_cpu:
                    break
                print("# (measured again: other processes were busy)", flush=True)
            else:
                raise RuntimeError("other processes kept the machine busy")
            runs[variant].append(run)
    report(runs, opts, flood, load)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
