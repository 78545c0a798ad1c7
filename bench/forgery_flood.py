"""A flood of forged fal deliveries against a real gateway, and what it does to everyone else.

Four variants, interleaved over ``--rounds`` rounds in one run, medians kept:

* ``quiet``: no flood, the baseline;
* ``no budget``: the flood, ``limits.failure_budget_burst: 0``: every forgery is verified
  (fal's Ed25519, about 56 µs each) and answered 401;
* ``429``: the flood with the per-client budget: past the burst, 429 + Retry-After on the
  kept-alive connection, before anything is verified;
* ``close``: the same budget, but a client over it has its connection closed instead of an
  answer (the gateway patched for this measurement only: ``python -m bench.forgery_flood
  serve-close``).

The flooder is wrk (16 kept-alive connections, reconnecting when closed) replaying forged
deliveries; a normal sender delivers to another source at a fixed rate, open loop (latency
counted from when each request was due). Both come through loopback as a trusted proxy, with
their client addresses in ``X-Forwarded-For``, which is what the budget keys by. Reported:
the flood's rate, the gateway's CPU per flood request, and the normal sender's p50/p99 with
its p99 as a ratio to ``quiet``.

    python -m bench.forgery_flood [--seconds 10] [--rounds 2] [--rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.deliveries import EXAMPLE_CONFIG, ROOT
from bench.procs import poll_ready, write_local_config
from bench.sampler import cpu_seconds

VARIANTS = ("quiet", "no budget", "429", "close")
#: Client addresses as the trusted proxy (loopback) forwards them: the budget keys by these.
ATTACKER, SENDER = "203.0.113.66", "198.51.100.7"
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk.lua"


def apply_close() -> None:
    """A client over its budget loses its connection instead of getting a 429."""
    from gateway import app
    from gateway.errors import TooManyFailures

    admit = app._admit

    def closing(request: Any, *args: Any) -> Any:
        try:
            return admit(request, *args)
        except TooManyFailures:
            if request.transport is not None:
                request.transport.close()
            raise

    app._admit = closing  # type: ignore[assignment]


def write_config(workdir: Path, budget: bool) -> tuple[Path, int, int]:
    limits = {"failure_budget_burst": 20 if budget else 0}
    return write_local_config(workdir, limits, {"trusted_proxies": ["127.0.0.1"]})


def write_forgeries(path: Path, port: int, count: int = 200) -> None:
    """Forged fal deliveries (valid headers, a body the signature does not cover) for wrk."""
    from gateway.settings import load_settings
    from tests.support import signed

    settings = load_settings(EXAMPLE_CONFIG)
    with path.open("wb") as out:
        for _ in range(count):
            raw, headers = signed(settings, "fal")
            body = raw + b" "
            lines = [
                "POST /webhooks/fal HTTP/1.1",
                f"Host: 127.0.0.1:{port}",
                f"Content-Length: {len(body)}",
                f"X-Forwarded-For: {ATTACKER}",
                *(f"{k}: {v}" for k, v in headers.items()),
            ]
            request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
            out.write(b"%d\n" % len(request) + request)


def flood(port: int, seconds: float, workdir: Path) -> subprocess.Popen[str]:
    """wrk, 16 kept-alive connections (reconnecting when closed), the forgeries in a loop."""
    requests = workdir / "forgeries.txt"
    write_forgeries(requests, port)
    command = ["wrk", "-t1", "-c16", f"-d{seconds:.0f}s", "-s", str(WRK_SCRIPT)]
    command += [f"http://127.0.0.1:{port}", "--", str(requests), "-", "1"]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
    )


async def send_normal(port: int, seconds: float, rate: float) -> list[float]:
    from gateway.settings import load_settings
    from tests.support import signed

    settings = load_settings(EXAMPLE_CONFIG)
    latencies: list[float] = []
    failures = 0
    connector = aiohttp.TCPConnector(limit=16)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(due: float) -> None:
            nonlocal failures
            raw, headers = signed(settings, "abstrakt")
            headers["X-Forwarded-For"] = SENDER
            async with session.post(
                f"http://127.0.0.1:{port}/webhooks/abstrakt", data=raw, headers=headers
            ) as response:
                await response.read()
            if response.status != 200:
                failures += 1
            latencies.append(time.perf_counter() - due)

        start = time.perf_counter()
        tasks = []
        for n in range(int(seconds * rate)):
            due = start + n / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
    if failures:
        raise RuntimeError(f"{failures} normal deliveries were not accepted")
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def measure(variant: str, seconds: float, rate: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="forgery-flood-") as tmp:
        config, port, admin = write_config(Path(tmp), budget=variant in ("429", "close"))
        command = (
            ["-m", "bench.forgery_flood", "serve-close"]
            if variant == "close"
            else [
                "-m",
                "gateway.cli",
                "serve",
            ]
        )
        gateway = subprocess.Popen(
            [sys.executable, *command, "--config", str(config)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            poll_ready(admin, 60, lambda: None if gateway.poll() is None else "gateway exited")
            flooder = None
            if variant != "quiet":
                flooder = flood(port, seconds, Path(tmp))
                time.sleep(1.0)  # the flood is under way before the measurement starts
            cpu_before = cpu_seconds(gateway.pid) or 0.0
            latencies = asyncio.run(send_normal(port, seconds - 2, rate))
            cpu = (cpu_seconds(gateway.pid) or 0.0) - cpu_before
            counts: dict[str, int] = {}
            if flooder is not None:
                out, _ = flooder.communicate(timeout=seconds + 60)
                (line,) = [x for x in out.splitlines() if x.startswith("WRK_JSON ")]
                result = json.loads(line.removeprefix("WRK_JSON "))
                counts = dict(result["status"])
                counts["closed"] = result["errors"]["read"] + result["errors"]["write"]
        finally:
            gateway.terminate()
            gateway.wait(30)
    flooded = sum(counts.values())
    return {
        "flood_rps": flooded / seconds,
        "cpu_us_per_flood_request": cpu / max(1, flooded * (seconds - 2) / seconds) * 1e6
        if flooded
        else 0.0,
        "cpu_share": cpu / (seconds - 2),
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
        "refused_429": counts.get("429", 0),
        "closed": counts.get("closed", 0),
        "verified_401": counts.get("401", 0),
    }


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve-close"]:
        apply_close()
        from gateway.cli import main as gateway_main

        return gateway_main(["serve", *args[1:]])
    parser = argparse.ArgumentParser(prog="python -m bench.forgery_flood", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=float, default=100.0, help="normal deliveries per second")
    opts = parser.parse_args(args)
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for _ in range(opts.rounds):
        for variant in VARIANTS:
            runs[variant].append(measure(variant, opts.seconds, opts.rate))
    median = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in runs.items()}
    base = median["quiet"]["p99"]
    print(
        f"Forgery flood, {opts.rounds} rounds of {opts.seconds:.0f} s per variant, medians; "
        f"normal sender {opts.rate:.0f}/s to abstrakt; load average "
        f"{os.getloadavg()[0]:.2f}.\n"
    )
    print(
        "| variant | flood req/s | 401 (verified) | 429 | closed | gateway CPU µs per flood "
        "request | gateway CPU share | normal p50 / p99 ms | p99 x quiet |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for v, m in median.items():
        print(
            f"| {v} | {m['flood_rps']:,.0f} | {m['verified_401']:,.0f} | {m['refused_429']:,.0f} "
            f"| {m['closed']:,.0f} | {m['cpu_us_per_flood_request']:.0f} | {m['cpu_share']:.2f} "
            f"| {m['p50']:.1f} / {m['p99']:.1f} | {m['p99'] / base:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
