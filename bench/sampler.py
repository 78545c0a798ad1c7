"""Resident memory and CPU time of the processes under test, sampled on a background thread.

Every ``interval`` seconds it reads, for each role (gateway, ceiling, broker, generator), the
``VmRSS``/``VmHWM`` of ``/proc/<pid>/status`` and the CPU ticks of ``/proc/<pid>/stat``, plus
the whole machine's busy ticks from ``/proc/stat``. Phases are carved out of the series
afterwards by their start and end times, so the sampler never has to know about them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

TICK = os.sysconf("SC_CLK_TCK")


def read_status(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in kB, or None if the process is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return rss, hwm


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, in seconds."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (everything running on the machine)."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / TICK


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return [int(p) for p in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


@dataclass
class Sample:
    t: float
    rss_kb: dict[str, int]  # role -> summed VmRSS
    hwm_kb: dict[str, int]  # role -> largest VmHWM of one process
    cpu_s: dict[str, float]  # role -> cumulative CPU seconds (processes that exited keep theirs)
    machine_cpu_s: float


@dataclass
class Sampler:
    interval: float
    roles: dict[str, Callable[[], list[int]]] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    _last_cpu: dict[int, tuple[str, float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, role: str, pids: Callable[[], list[int]]) -> None:
        with self._lock:
            self.roles[role] = pids

    def unwatch(self, role: str) -> None:
        with self._lock:
            self.roles.pop(role, None)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def sample_now(self) -> Sample:
        with self._lock:
            roles = dict(self.roles)
        rss: dict[str, int] = {}
        hwm: dict[str, int] = {}
        for role, get_pids in roles.items():
            for pid in get_pids():
                status = read_status(pid)
                cpu = cpu_seconds(pid)
                if status is not None:
                    rss[role] = rss.get(role, 0) + status[0]
                    hwm[role] = max(hwm.get(role, 0), status[1])
                if cpu is not None:
                    self._last_cpu[pid] = (role, cpu)
        cpu_total: dict[str, float] = {}
        for role, cpu in self._last_cpu.values():
            cpu_total[role] = cpu_total.get(role, 0.0) + cpu
        sample = Sample(time.time(), rss, hwm, cpu_total, machine_busy_seconds())
        self.samples.append(sample)
        return sample

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_now()
            self._stop.wait(self.interval)

    # -- analysis ------------------------------------------------------------------------

    def window(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.t <= end]

    def cpu_between(self, role: str, start: float, end: float) -> float | None:
        """CPU seconds ``role`` used between two times (interpolated between samples)."""
        a = self._cpu_at(role, start)
        b = self._cpu_at(role, end)
        return None if a is None or b is None else max(0.0, b - a)

    def machine_between(self, start: float, end: float) -> float | None:
        a = self._interp(start, lambda s: s.machine_cpu_s)
        b = self._interp(end, lambda s: s.machine_cpu_s)
        return None if a is None or b is None else max(0.0, b - a)

    def _cpu_at(self, role: str, t: float) -> float | None:
        return self._interp(t, lambda s: s.cpu_s.get(role))

    def _interp(self, t: float, value: Callable[[Sample], float | None]) -> float | None:
        points = [(s.t, v) for s in self.samples if (v := value(s)) is not None]
        if not points:
            return None
        before = [p for p in points if p[0] <= t]
        after = [p for p in points if p[0] >= t]
        if not before:
            return after[0][1]
        if not after:
            return before[-1][1]
        (t0, v0), (t1, v1) = before[-1], after[0]
        if t1 == t0:
            return v0
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)


def slope_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(p[0] for p in points) / n
    mean_v = sum(p[1] for p in points) / n
    var = sum((p[0] - mean_t) ** 2 for p in points)
    if var == 0:
        return None
    cov = sum((p[0] - mean_t) * (p[1] - mean_v) for p in points)
    return cov / var * 60.0
