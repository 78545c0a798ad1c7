"""What one wake from idle costs a process on this machine.

    python -m bench.wake_cost [--cpu N] [--seconds 5] [--periods 0.001,0.0002]

An event loop with nothing to do sleeps in ``epoll_wait``; the next request, Kafka ack or timer
wakes it. A saturated loop seldom sleeps, so its wakes are shared by many requests; a loop at a
moderate rate pays one every few requests, which is much of why CPU per request grows as the
rate falls (``docs/benchmark.md``). On bare metal a wake costs a few microseconds; on a virtual
machine the halt and the timer can go through the hypervisor. This runs a process that only
sleeps and wakes, pinned to one CPU, and reports the CPU time it is charged per wake (the
scheduler's runtime, from ``wait4``) and how much less that CPU was idle than in equal windows
without it (``/proc/stat``, whose idle time a tickless kernel measures exactly).

Figures for the docs; nothing is asserted from them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

_SLEEPER = """
import os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
period, count = float(sys.argv[2]), int(sys.argv[3])
for _ in range(count):
    time.sleep(period)
"""


def idle_seconds(cpu: int) -> float:
    """The CPU's idle plus iowait time so far, from ``/proc/stat``."""
    with open("/proc/stat", encoding="ascii") as stat:
        for line in stat:
            if line.startswith(f"cpu{cpu} "):
                fields = line.split()
                return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")
    raise ValueError(f"no cpu{cpu} in /proc/stat")


def window(cpu: int, sleeper: list[str] | None, seconds: float) -> tuple[float, float, float]:
    """(busy cores of ``cpu``, cores charged to ``sleeper``, wall seconds) over one window:
    the sleeper's run, or ``seconds`` with nothing of ours on the CPU."""
    started, idle = time.monotonic(), idle_seconds(cpu)
    charged = 0.0
    if sleeper is None:
        time.sleep(seconds)
    else:
        child = subprocess.Popen(sleeper)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, for its rusage
        if child.returncode != 0:
            raise RuntimeError(f"the sleeper exited with {child.returncode}")
        charged = usage.ru_utime + usage.ru_stime
    wall = time.monotonic() - started
    busy = 1.0 - (idle_seconds(cpu) - idle) / wall
    return busy, charged / wall, wall


def measure(cpu: int, seconds: float, period: float) -> dict[str, float]:
    count = max(1, round(seconds / (period + 0.00006)))  # a wake itself takes some time
    argv = [sys.executable, "-c", _SLEEPER, str(cpu), str(period), str(count)]
    baseline, _, _ = window(cpu, None, seconds)
    busy, charged, wall = window(cpu, argv, seconds)
    after, _, _ = window(cpu, None, seconds)
    extra = max(0.0, busy - (baseline + after) / 2)
    wakes = count / wall
    return {
        "period_s": period,
        "wakes_per_s": wakes,
        "baseline_busy_cores": (baseline + after) / 2,
        "charged_us_per_wake": charged / wakes * 1e6,
        "busy_us_per_wake": extra / wakes * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--periods", default="0.001,0.0002")
    args = parser.parse_args(argv)
    try:
        periods = [float(p) for p in args.periods.split(",") if p]
    except ValueError:
        parser.error("--periods: comma-separated seconds")
    if not periods or min(periods) <= 0 or args.seconds <= 0:
        parser.error("periods and seconds must be positive")
    if args.cpu not in os.sched_getaffinity(0):
        parser.error(f"cpu {args.cpu} is not available to this process")
    print(
        f"| sleep | wakes/s | CPU charged to the process, µs per wake | CPU {args.cpu} not idle, "
        "µs per wake (other work subtracted) | other work on that CPU, cores |"
    )
    print("|---:|---:|---:|---:|---:|")
    for period in periods:
        row = measure(args.cpu, args.seconds, period)
        print(f"| {period * 1e3:g} ms | {row['wakes_per_s']:,.0f} | "
              f"{row['charged_us_per_wake']:.1f} | {row['busy_us_per_wake']:.1f} | "
              f"{row['baseline_busy_cores']:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
