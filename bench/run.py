"""The benchmark: ``python -m bench.run --mode full`` (``make bench``) or ``--mode smoke``.

One run, on one machine, in one go, so that every gateway figure can be given as a ratio to
the ceiling measured minutes apart under the same conditions:

1. a real Kafka broker (``tools/kafka/kafka.sh``, or ``--bootstrap`` for one already running)
   and the ceiling (``bench/ceiling.py``: aiohttp that reads the body and answers 200);
2. per provider set (HMAC, Standard Webhooks, fal, mixed) a fresh ``webhook-gateway serve``
   (Kafka sink, ``acks=all``, idempotent, its own topic) and:
   * a warm-up, then the maximum throughput with wrk (closed loop, 64 connections), on the
     gateway and on the ceiling, with the same pre-signed, all-distinct requests;
   * latency at fixed rates of 25/50/75 % of that maximum with ``bench/loadgen.py`` (open
     loop, corrected for coordinated omission), on the gateway and on the ceiling at the
     same rates;
   * the mixed set then goes on with the soak: 75 % of its maximum for ``soak`` seconds;
   * the gateway is stopped (it flushes) and the topic is read back: every event id answered
     2xx must be there;
3. ``--workers 2`` on the mixed set: maximum throughput, the scaling ratio to one worker;
4. the mixed set again with the shared dedupe store (``dedupe.kind: redis``, a local
   ``redis-server``): throughput and CPU per delivery as ratios to in-memory dedupe, latency
   at half of its own maximum;
5. the results: ``<out>/<timestamp>.json`` (everything), ``<out>/latest.md`` (a table).

Memory (VmRSS/VmHWM) and CPU time of every process are sampled all along (``sampler.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import deliveries, report
from bench.deliveries import SETS, Signer
from bench.kafka_check import check
from bench.procs import Broker, RedisProcess, Service, start_ceiling, start_gateway
from bench.sampler import Sampler, slope_per_minute
from gateway.settings import load_settings

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk.lua"
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Plan:
    mode: str
    sets: tuple[str, ...]
    connections: int
    warmup_s: float
    max_s: float
    rate_s: float
    rate_fractions: tuple[float, ...]
    soak_s: float
    scaling_workers: int
    sample_interval_s: float
    #: Requests pre-signed per expected request of a wrk phase (there must never be too few).
    headroom: float
    #: The set run again with ``dedupe.kind: redis`` (a local redis-server), for ratios to
    #: the in-memory dedupe of the same set in the same run.
    redis_dedupe_set: str | None = "mixed"


FULL = Plan(
    mode="full",
    sets=("hmac", "standard-webhooks", "fal", "mixed"),
    connections=64,
    warmup_s=5,
    max_s=20,
    rate_s=20,
    rate_fractions=(0.25, 0.5, 0.75),
    soak_s=300,
    scaling_workers=2,
    sample_interval_s=1.0,
    headroom=2.0,
)
# For A/B comparisons of one change (about a minute): the mixed set, max and 50 % only.
QUICK = Plan(
    mode="quick",
    sets=("mixed",),
    connections=64,
    warmup_s=3,
    max_s=10,
    rate_s=10,
    rate_fractions=(0.5,),
    soak_s=0,
    scaling_workers=1,
    sample_interval_s=0.5,
    headroom=2.0,
)
SMOKE = Plan(
    mode="smoke",
    sets=("hmac", "standard-webhooks", "fal", "mixed"),
    connections=16,
    warmup_s=0.5,
    max_s=1.0,
    rate_s=0.7,
    rate_fractions=(0.25, 0.5, 0.75),
    soak_s=3,
    scaling_workers=2,
    sample_interval_s=0.2,
    headroom=3.0,
)


class Run:
    def __init__(
        self,
        plan: Plan,
        workdir: Path,
        bootstrap: str | None,
        gateway_env: dict[str, str] | None = None,
    ) -> None:
        self.plan = plan
        self.gateway_env = gateway_env or {}
        self.workdir = workdir
        self.bootstrap_given = bootstrap
        self.broker: Broker | None = None
        self.ceiling: Service | None = None
        self.ceiling_port = 0
        self.ceiling_warm = False
        self.sampler = Sampler(plan.sample_interval_s)
        self.signer = Signer.from_settings()
        self.run_id = uuid.uuid4().hex[:8]
        self.log_lines: list[str] = []
        self.started = time.time()
        self.notes: list[str] = []

    def say(self, text: str) -> None:
        line = f"[bench {time.time() - self.started:7.1f}s] {text}"
        self.log_lines.append(line)
        print(line, flush=True)

    # -- load -----------------------------------------------------------------------------

    def wrk(
        self, port: int, requests_file: Path, seconds: float, ids: Path | None, wrap: bool
    ) -> dict[str, Any]:
        argv = [
            "wrk", "-t1", f"-c{self.plan.connections}", f"-d{max(1, math.ceil(seconds))}s",
            "--timeout", "10s", "--latency", "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}",
            "--", str(requests_file), str(ids) if ids else "-", "1" if wrap else "0",
        ]  # fmt: skip
        start = time.time()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.sampler.watch("generator", lambda: [proc.pid] if proc.poll() is None else [])
        try:
            out, err = proc.communicate(timeout=seconds + 60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        end = time.time()
        found = re.search(r"^WRK_JSON (.*)$", out, re.MULTILINE)
        if proc.returncode != 0 or found is None:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {err.strip()}\n{out}")
        result: dict[str, Any] = json.loads(found.group(1))
        duration = result["duration_us"] / 1e6
        result["duration_s"] = duration
        result["rps"] = result["requests"] / duration if duration else 0.0
        result["ok"] = sum(n for s, n in result["status"].items() if s.startswith("2"))
        result["latency_ms"] = {k: v / 1000 for k, v in result.pop("latency_us").items()}
        result["started_at"], result["ended_at"] = start, end
        result["connections"] = self.plan.connections
        return result

    def signed_file(self, name: str, set_name: str, count: int) -> Path:
        path = self.workdir / f"{name}.req"
        now = int(time.time())
        deliveries.write(path, deliveries.generate(self.signer, SETS[set_name], count, now))
        return path

    def loadgen(self, phases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        plan_path = self.workdir / f"plan-{uuid.uuid4().hex[:6]}.json"
        out_path = plan_path.with_suffix(".out.json")
        plan_path.write_text(json.dumps({"phases": phases, "drain_seconds": 10}), encoding="utf-8")
        budget = sum(float(p["duration"]) + 20 + float(p["duration"]) * 0.2 for p in phases) + 60
        argv = [sys.executable, "-m", "bench.loadgen", "--plan", str(plan_path)]
        argv += ["--out", str(out_path)]
        log = (self.workdir / "loadgen.log").open("ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.sampler.watch("generator", lambda: [proc.pid] if proc.poll() is None else [])
        try:
            proc.wait(budget)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError("load generator overran its time budget") from None
        finally:
            log.close()
        if proc.returncode != 0:
            tail = (self.workdir / "loadgen.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"load generator failed ({proc.returncode}):\n{tail}")
        results: list[dict[str, Any]] = json.loads(out_path.read_text(encoding="utf-8"))
        for result in results:
            result["ok"] = sum(n for s, n in result["status"].items() if s.startswith("2"))
        return results

    # -- accounting -----------------------------------------------------------------------

    def usage(self, phase: dict[str, Any], role: str) -> None:
        """Add CPU and memory figures of ``role`` (and the machine) over the phase's window."""
        start, end = phase["started_at"], phase["ended_at"]
        seconds = max(1e-9, end - start)
        cpu = {
            r: self.sampler.cpu_between(r, start, end)
            for r in ("gateway", "ceiling", "broker", "generator", "redis")
        }
        machine = self.sampler.machine_between(start, end)
        ours = sum(v for v in cpu.values() if v is not None)
        served = phase.get("ok") or phase.get("completed") or phase.get("requests") or 0
        own = cpu.get(role)
        phase["cpu_cores"] = {r: (v / seconds if v is not None else None) for r, v in cpu.items()}
        phase["cpu_cores"]["machine"] = machine / seconds if machine is not None else None
        phase["cpu_cores"]["others"] = (
            max(0.0, (machine - ours) / seconds) if machine is not None else None
        )
        phase["cpu_us_per_request"] = own / served * 1e6 if own is not None and served else None
        window = self.sampler.window(start, end)
        rss = [s.rss_kb.get(role, 0) for s in window if role in s.rss_kb]
        phase["rss_mb"] = {
            "max": max(rss) / 1024 if rss else None,
            "mean": statistics.fmean(rss) / 1024 if rss else None,
        }
        with open("/proc/loadavg", encoding="ascii") as f:
            phase["loadavg_after"] = float(f.read().split()[0])

    # -- scenarios ------------------------------------------------------------------------

    def scenario(
        self, set_name: str, soak: bool, variant: str = "", env: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """One provider set on one gateway; ``variant`` names extra settings (``env``)."""
        plan = self.plan
        assert self.broker is not None
        name = f"{set_name}-{variant}" if variant else set_name
        topic = f"bench.{self.run_id}.{name}.w1"
        self.say(f"{name}: starting the gateway (topic {topic})")
        gateway, port, _admin = start_gateway(
            self.workdir, name, self.broker.bootstrap, topic, 1, {**self.gateway_env, **(env or {})}
        )
        self.sampler.watch("gateway", gateway.worker_pids)
        ids_files: list[Path] = []
        answered = 0
        result: dict[str, Any] = {"set": set_name, "sources": list(SETS[set_name]), "workers": 1}
        try:
            # Warm-up: the gateway's and the ceiling's first seconds are not measured. It also
            # tells how many requests to pre-sign for the measured phase.
            warm_file = self.signed_file(f"{name}-warm", set_name, int(3000 * plan.warmup_s))
            warm_ids = self.workdir / f"{name}-warm.ids"
            warm = self.wrk(port, warm_file, plan.warmup_s, warm_ids, wrap=False)
            ids_files.append(warm_ids)
            answered += warm["ok"]
            if not self.ceiling_warm:  # one process for the whole run: warm it once
                self.wrk(self.ceiling_port, warm_file, plan.warmup_s, None, wrap=True)
                self.ceiling_warm = True
            expected = max(200, math.ceil(warm["rps"] * plan.max_s * plan.headroom))

            self.say(f"{name}: maximum throughput (wrk, {plan.connections} connections)")
            max_file = self.signed_file(f"{name}-max", set_name, expected)
            max_ids = self.workdir / f"{name}-max.ids"
            gw_max = self.wrk(port, max_file, plan.max_s, max_ids, wrap=False)
            self.usage(gw_max, "gateway")
            ids_files.append(max_ids)
            answered += gw_max["ok"]
            ceiling_max = self.wrk(self.ceiling_port, max_file, plan.max_s, None, wrap=True)
            self.usage(ceiling_max, "ceiling")
            if gw_max["exhausted"]:
                self.notes.append(f"{name}: max phase used up its {expected} requests early")
            result["max"] = gw_max
            result["ceiling_max"] = ceiling_max
            result["throughput_ratio"] = _ratio(gw_max["rps"], ceiling_max["rps"])
            result["cpu_per_request_ratio"] = _ratio(
                gw_max["cpu_us_per_request"], ceiling_max["cpu_us_per_request"]
            )

            self.say(f"{name}: fixed rates {plan.rate_fractions} of {gw_max['rps']:.0f}/s")
            phases = []
            for fraction in plan.rate_fractions:
                rate = max(1.0, gw_max["rps"] * fraction)
                ids = self.workdir / f"{name}-rate{int(fraction * 100)}.ids"
                ids_files.append(ids)
                common = {"set": set_name, "rate": rate, "duration": plan.rate_s,
                          "connections": plan.connections}  # fmt: skip
                phases.append({**common, "label": f"gateway@{fraction}", "port": port,
                               "ids": str(ids)})  # fmt: skip
                phases.append({**common, "label": f"ceiling@{fraction}", "port": self.ceiling_port})
            loads = self.loadgen(phases)
            rates = []
            for fraction, gw, ce in zip(plan.rate_fractions, loads[0::2], loads[1::2], strict=True):
                self.usage(gw, "gateway")
                self.usage(ce, "ceiling")
                answered += gw["ok"]
                rates.append(
                    {
                        "fraction": fraction,
                        "rate": gw["target_rate"],
                        "gateway": gw,
                        "ceiling": ce,
                        "latency_ratio": {
                            q: _ratio(gw["latency_ms"].get(q), ce["latency_ms"].get(q))
                            for q in ("p50", "p99", "p99.9")
                        },
                    }
                )
            result["rates"] = rates

            if soak:
                result["soak"] = self.soak(set_name, port, gw_max["rps"], answered, ids_files)
                answered += result["soak"]["load"]["ok"]
        finally:
            self.sampler.sample_now()
            self.sampler.unwatch("gateway")
            code = gateway.stop()
        result["gateway_exit_code"] = code
        result["peak_rss_mb"] = self.peak_rss("gateway", result)
        self.say(f"{name}: reading topic {topic} back")
        result["kafka"] = check(self.broker.bootstrap, topic, ids_files, answered)
        self.say(
            f"{name}: max {gw_max['rps']:.0f}/s = {result['throughput_ratio']:.3f} of the "
            f"ceiling ({ceiling_max['rps']:.0f}/s); missing {result['kafka']['missing']}"
        )
        return result

    def peak_rss(self, role: str, result: dict[str, Any]) -> float | None:
        start = result["max"]["started_at"] if "max" in result else self.started
        window = [s for s in self.sampler.samples if s.t >= start and role in s.hwm_kb]
        return max(s.hwm_kb[role] for s in window) / 1024 if window else None

    def soak(
        self, set_name: str, port: int, max_rps: float, answered_before: int, ids: list[Path]
    ) -> dict[str, Any]:
        plan = self.plan
        rate = max(1.0, max_rps * 0.75)
        self.say(f"{set_name}: soak at {rate:.0f}/s for {plan.soak_s:.0f} s")
        soak_ids = self.workdir / f"{set_name}-soak.ids"
        ids.append(soak_ids)
        phase = {"label": "soak", "port": port, "set": set_name, "rate": rate,
                 "duration": plan.soak_s, "connections": plan.connections,
                 "ids": str(soak_ids)}  # fmt: skip
        load = self.loadgen([phase])[0]
        self.usage(load, "gateway")
        start, end = load["started_at"], load["ended_at"]
        series = [
            (s.t - start, s.rss_kb["gateway"] / 1024)
            for s in self.sampler.window(start, end)
            if "gateway" in s.rss_kb
        ]
        half = (end - start) / 2
        second = [p for p in series if p[0] >= half]
        slope = slope_per_minute(second)
        steady = statistics.median(v for _, v in second) if second else None
        settings = load_settings(deliveries.EXAMPLE_CONFIG)
        accepted_by_half = answered_before + load["ok"] / 2
        # Flat: the second half grows by less than 1 MB over a 5-minute soak (0.2 MB/min);
        # a shorter soak (smoke) cannot tell and says so.
        return {
            "rate": rate,
            "duration_s": end - start,
            "load": load,
            "rss_mb_series": [[round(t, 1), round(v, 2)] for t, v in series],
            "rss_mb_start": series[0][1] if series else None,
            "rss_mb_end": series[-1][1] if series else None,
            "rss_mb_max": max((v for _, v in series), default=None),
            "steady_rss_mb": steady,
            "slope_mb_per_min_second_half": slope,
            "flat": None if slope is None or plan.soak_s < 120 else abs(slope) <= 0.2,
            "dedupe_max_entries": settings.dedupe.max_entries,
            "dedupe_full_by_second_half": accepted_by_half >= settings.dedupe.max_entries,
        }

    def scaling(self, set_name: str, one_worker: dict[str, Any]) -> dict[str, Any]:
        plan = self.plan
        workers = plan.scaling_workers
        assert self.broker is not None
        topic = f"bench.{self.run_id}.{set_name}.w{workers}"
        self.say(f"scaling: {set_name} with --workers {workers}")
        gateway, port, _admin = start_gateway(
            self.workdir,
            f"{set_name}-w{workers}",
            self.broker.bootstrap,
            topic,
            workers,
            self.gateway_env,
        )
        self.sampler.watch("gateway", gateway.worker_pids)
        ids_files: list[Path] = []
        answered = 0
        try:
            warm_file = self.signed_file(
                f"{set_name}-w{workers}-warm", set_name, int(6000 * plan.warmup_s)
            )
            warm_ids = self.workdir / f"{set_name}-w{workers}-warm.ids"
            warm = self.wrk(port, warm_file, plan.warmup_s, warm_ids, wrap=False)
            ids_files.append(warm_ids)
            answered += warm["ok"]
            expected = max(200, math.ceil(warm["rps"] * plan.max_s * plan.headroom))
            max_file = self.signed_file(f"{set_name}-w{workers}-max", set_name, expected)
            max_ids = self.workdir / f"{set_name}-w{workers}-max.ids"
            gw_max = self.wrk(port, max_file, plan.max_s, max_ids, wrap=False)
            self.usage(gw_max, "gateway")
            ids_files.append(max_ids)
            answered += gw_max["ok"]
            # Latency at the rate that was 50 % of one worker's maximum.
            rate = max(1.0, one_worker["max"]["rps"] * 0.5)
            rate_ids = self.workdir / f"{set_name}-w{workers}-rate.ids"
            ids_files.append(rate_ids)
            load = self.loadgen(
                [
                    {
                        "label": f"gateway-w{workers}@w1-0.5",
                        "port": port,
                        "set": set_name,
                        "rate": rate,
                        "duration": plan.rate_s,
                        "connections": plan.connections,
                        "ids": str(rate_ids),
                    }
                ]
            )[0]
            self.usage(load, "gateway")
            answered += load["ok"]
            processes = len(gateway.worker_pids())
        finally:
            self.sampler.sample_now()
            self.sampler.unwatch("gateway")
            code = gateway.stop()
        kafka = check(self.broker.bootstrap, topic, ids_files, answered)
        ratio = _ratio(gw_max["rps"], one_worker["max"]["rps"])
        self.say(f"scaling: {gw_max['rps']:.0f}/s with {workers} workers = {ratio:.2f}x one")
        w1_rate = next(r for r in one_worker["rates"] if r["fraction"] == 0.5)
        return {
            "set": set_name,
            "workers": workers,
            "worker_processes_seen": processes,
            "max": gw_max,
            "one_worker_rps": one_worker["max"]["rps"],
            "rps": gw_max["rps"],
            "ratio": ratio,
            "at_one_worker_half_rate": load,
            "p99_ratio_to_one_worker": _ratio(
                load["latency_ms"].get("p99"), w1_rate["gateway"]["latency_ms"].get("p99")
            ),
            "gateway_exit_code": code,
            "kafka": kafka,
        }

    def redis_dedupe(self, set_name: str, memory: dict[str, Any]) -> dict[str, Any]:
        """``set_name`` again with the shared dedupe store; ratios to ``memory`` (the same set
        with in-memory dedupe, minutes before, same run)."""
        self.say("starting redis-server for the shared dedupe variant")
        redis = RedisProcess(self.workdir)
        self.sampler.watch("redis", redis.pid)
        env = {
            "WEBHOOK_GATEWAY_DEDUPE__KIND": "redis",
            "WEBHOOK_GATEWAY_DEDUPE__REDIS__URL__ID": "bench",
            "WEBHOOK_GATEWAY_DEDUPE__REDIS__URL__VALUE": redis.url,
            "WEBHOOK_GATEWAY_DEDUPE__REDIS__KEY_PREFIX": f"bench-{self.run_id}",
        }
        try:
            result = self.scenario(set_name, soak=False, variant="redis", env=env)
        finally:
            self.sampler.sample_now()
            self.sampler.unwatch("redis")
            redis.stop()
        gw_max = result["max"]
        redis_cpu = self.sampler.cpu_between("redis", gw_max["started_at"], gw_max["ended_at"])
        half = next((r for r in result["rates"] if r["fraction"] == 0.5), None)
        memory_half = next((r for r in memory["rates"] if r["fraction"] == 0.5), None)
        p99 = half["gateway"]["latency_ms"].get("p99") if half else None
        memory_p99 = memory_half["gateway"]["latency_ms"].get("p99") if memory_half else None
        result.update(
            {
                "variant": "dedupe.kind redis (local redis-server, no persistence)",
                "throughput_ratio_to_memory": _ratio(gw_max["rps"], memory["max"]["rps"]),
                "cpu_per_request_ratio_to_memory": _ratio(
                    gw_max["cpu_us_per_request"], memory["max"]["cpu_us_per_request"]
                ),
                "redis_cpu_us_per_request": (
                    redis_cpu / gw_max["ok"] * 1e6
                    if redis_cpu is not None and gw_max["ok"]
                    else None
                ),
                "p99_at_half_load_ms": p99,
                "p99_at_half_load_ratio_to_memory": _ratio(p99, memory_p99),
            }
        )
        self.say(
            f"redis dedupe: throughput x {_f3(result['throughput_ratio_to_memory'])}, CPU per "
            f"delivery x {_f3(result['cpu_per_request_ratio_to_memory'])} of memory dedupe; "
            f"p99 at half load {_f3(p99)} ms"
        )
        return result

    # -- the whole run --------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        plan = self.plan
        results: dict[str, Any] = {
            "schema": 1,
            "mode": plan.mode,
            "started_at": _iso(self.started),
            "plan": asdict(plan),
            "machine": machine_info(),
        }
        self.sampler.start()
        try:
            if self.bootstrap_given:
                self.broker = Broker(self.workdir, self.bootstrap_given, started_here=False)
            else:
                self.say("starting a Kafka broker")
                self.broker = Broker.start(self.workdir / "kafka")
            self.sampler.watch("broker", self.broker.pid)
            results["kafka_broker"] = {
                "bootstrap": self.broker.bootstrap,
                "started_by_bench": self.broker.started_here,
            }
            self.ceiling, self.ceiling_port = start_ceiling(self.workdir)
            self.sampler.watch("ceiling", self.ceiling.all_pids)
            results["gateway_settings"] = gateway_settings_summary(self.gateway_env)
            scenarios: dict[str, Any] = {}
            for set_name in plan.sets:
                soak = set_name == "mixed" and plan.soak_s > 0
                scenarios[set_name] = self.scenario(set_name, soak=soak)
            results["scenarios"] = scenarios
            base = "mixed" if "mixed" in scenarios else plan.sets[-1]
            if plan.scaling_workers > 1:
                results["scaling"] = self.scaling(base, scenarios[base])
            if plan.redis_dedupe_set is not None and plan.redis_dedupe_set in scenarios:
                results["dedupe_redis"] = self.redis_dedupe(
                    plan.redis_dedupe_set, scenarios[plan.redis_dedupe_set]
                )
        finally:
            if self.ceiling is not None:
                self.ceiling.stop()
            if self.broker is not None:
                self.say("stopping the Kafka broker" if self.broker.started_here else "done")
                self.broker.stop()
            self.sampler.stop()
        results["ceiling"] = {
            name: {"max_rps": s["ceiling_max"]["rps"], "max": s["ceiling_max"]}
            for name, s in results["scenarios"].items()
        }
        results["memory"] = memory_summary(results)
        results["kafka"] = kafka_summary(results)
        if plan.mode != "quick":
            results["targets"] = targets(results)
        results["notes"] = self.notes
        results["finished_at"] = _iso(time.time())
        results["duration_s"] = time.time() - self.started
        return results


# -- summaries -------------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _f3(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def machine_info() -> dict[str, Any]:
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="ascii") as f:
        mem_kb = int(f.readline().split()[1])
    with open("/proc/loadavg", encoding="ascii") as f:
        load = [float(x) for x in f.read().split()[:3]]
    versions: dict[str, str | None] = {}
    for package in ("aiohttp", "aiokafka", "uvloop", "pydantic", "orjson", "pynacl"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    wrk_banner = (wrk.stdout + wrk.stderr).strip().splitlines()
    kafka = subprocess.run(
        [str(deliveries.ROOT / "tools" / "kafka" / "kafka.sh"), "version"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False, cwd=deliveries.ROOT,
    )  # fmt: skip
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "loadavg_at_start": load,
        "packages": versions,
        "wrk": wrk_banner[0] if wrk_banner else None,
        "kafka": kafka.stdout.strip() or None,
        "git_commit": commit.stdout.strip() or None,
    }


def gateway_settings_summary(extra_env: dict[str, str]) -> dict[str, Any]:
    """The settings the gateway ran with, as it resolves them (with the extra overrides)."""
    saved = {k: os.environ.get(k) for k in extra_env}
    os.environ.update(extra_env)
    try:
        settings = load_settings(deliveries.EXAMPLE_CONFIG)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    k = settings.sink.kafka
    return {
        "config": str(deliveries.EXAMPLE_CONFIG.relative_to(deliveries.ROOT)),
        "sink": "kafka (environment override)",
        "acks": "all",
        "idempotence": True,
        "compression": k.compression_type,
        "linger_ms": k.linger_ms,
        "partitions": k.partitions,
        "replication_factor": k.replication_factor,
        "logging": "json, info, one line per request, to a file",
        "dedupe_max_entries": settings.dedupe.max_entries,
        "max_in_flight": settings.limits.max_in_flight,
        "extra_environment": extra_env,
    }


def memory_summary(results: dict[str, Any]) -> dict[str, Any]:
    scenarios = results["scenarios"]
    at_max = {n: s["max"]["rss_mb"]["max"] for n, s in scenarios.items()}
    peaks = {n: s["peak_rss_mb"] for n, s in scenarios.items()}
    soak = next((s["soak"] for s in scenarios.values() if "soak" in s), None)
    return {
        "rss_mb_at_max_load": at_max,
        "peak_rss_mb": peaks,
        "peak_rss_mb_overall": max((v for v in peaks.values() if v is not None), default=None),
        "rss_mb_at_max_load_overall": max(
            (v for v in at_max.values() if v is not None), default=None
        ),
        "ceiling_rss_mb_at_max_load": {
            n: s["ceiling_max"]["rss_mb"]["max"] for n, s in scenarios.items()
        },
        "soak": None
        if soak is None
        else {
            k: soak[k]
            for k in (
                "rate",
                "duration_s",
                "rss_mb_start",
                "rss_mb_end",
                "rss_mb_max",
                "steady_rss_mb",
                "slope_mb_per_min_second_half",
                "flat",
                "dedupe_full_by_second_half",
            )
        },
        "scaling_rss_mb_at_max_load": (
            results["scaling"]["max"]["rss_mb"]["max"] if "scaling" in results else None
        ),
    }


def kafka_summary(results: dict[str, Any]) -> dict[str, Any]:
    runs = {n: s["kafka"] for n, s in results["scenarios"].items()}
    if "scaling" in results:
        runs["scaling"] = results["scaling"]["kafka"]
    if "dedupe_redis" in results:
        runs["dedupe_redis"] = results["dedupe_redis"]["kafka"]
    return {
        "runs": {
            n: {
                "answered_2xx": r["answered_2xx"],
                "records": r["records"],
                "missing": r["missing"],
                "missing_by_count": r["missing_by_count"],
            }
            for n, r in runs.items()
        },
        "answered_2xx": sum(r["answered_2xx"] for r in runs.values()),
        "records": sum(r["records"] for r in runs.values()),
        "missing": sum(r["missing"] for r in runs.values()),
        "missing_by_count": sum(r["missing_by_count"] for r in runs.values()),
    }


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The project's targets, reported (never asserted: the machine is shared and noisy)."""
    out: list[dict[str, Any]] = []
    scenarios = results["scenarios"]
    for name, goal in (("hmac", 0.75), ("standard-webhooks", 0.75), ("fal", 0.45)):
        if name in scenarios:
            got = scenarios[name]["throughput_ratio"]
            out.append(_target(f"{name} throughput / ceiling, 1 worker", f">= {goal}", got,
                               got is not None and got >= goal))  # fmt: skip
    for name, s in scenarios.items():
        half = next((r for r in s["rates"] if r["fraction"] == 0.5), None)
        if half is not None:
            p99 = half["gateway"]["latency_ms"].get("p99")
            out.append(_target(f"{name} p99 at 50% load (ms, incl. Kafka ack)", "<= 10", p99,
                               p99 is not None and p99 <= 10))  # fmt: skip
    memory = results["memory"]
    # The worst case: VmHWM over max load and the soak (where the dedupe store fills up).
    rss = max(
        (v for v in (memory["rss_mb_at_max_load_overall"], memory["peak_rss_mb_overall"]) if v),
        default=None,
    )
    out.append(_target("peak RSS, 1 worker, max load and soak (MB)", "<= 150", rss,
                       rss is not None and rss <= 150))  # fmt: skip
    soak = memory["soak"]
    if soak is not None:
        out.append(_target("RSS flat over the soak (MB/min, second half)", "abs(slope) <= 0.2",
                           soak["slope_mb_per_min_second_half"], soak["flat"]))  # fmt: skip
    redis = results.get("dedupe_redis")
    if redis is not None:
        p99 = redis["p99_at_half_load_ms"]
        name = f"{redis['set']} p99 at 50% load with Redis dedupe (ms, incl. Kafka ack)"
        out.append(_target(name, "<= 10", p99, p99 is not None and p99 <= 10))
    missing = results["kafka"]["missing"]
    out.append(_target("records missing from Kafka", "== 0", missing, missing == 0))
    return out


def _target(name: str, goal: str, measured: Any, met: bool | None) -> dict[str, Any]:
    return {"target": name, "goal": goal, "measured": measured, "met": met}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("full", "smoke", "quick"), default="full")
    parser.add_argument(
        "--out", type=Path, help=f"results directory (default: {RESULTS}, smoke: its smoke/)"
    )
    parser.add_argument("--bootstrap", help="use this running broker instead of starting one")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="WEBHOOK_GATEWAY_X=V",
        help="extra setting override for the gateway (an experiment, recorded in the results)",
    )
    args = parser.parse_args(argv)
    extra: dict[str, str] = {}
    for item in args.gateway_env:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("WEBHOOK_GATEWAY_"):
            parser.error(f"--gateway-env wants WEBHOOK_GATEWAY_...=VALUE, not {item!r}")
        extra[key] = value
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk (make system-deps)", file=sys.stderr)
        return 2
    plan = {"full": FULL, "smoke": SMOKE, "quick": QUICK}[args.mode]
    if args.out is None:  # only a full run replaces the full run's latest table
        args.out = RESULTS if plan is FULL else RESULTS / plan.mode
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{plan.mode}-"))
    run = Run(plan, workdir, args.bootstrap, extra)
    try:
        results = run.execute()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work directory kept: {workdir}")
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(run.started, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path = args.out / f"{stamp}.json"
    json_path.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    shutil.copyfile(json_path, args.out / "latest.json")
    table = report.quick(results) if plan is QUICK else report.markdown(results)
    (args.out / "latest.md").write_text(table, encoding="utf-8")
    print(table)
    print(f"results: {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
