"""Where a request's CPU goes: the gateway with its stages removed one by one, in one run.

    python -m bench.breakdown [--set hmac] [--rounds 3] [--seconds 10] [--bootstrap HOST:PORT]

For each variant of ``bench/knockout.py`` (the whole gateway, then without the log line, then
also without metrics, the sink write, the event build, the whole pipeline; and apart from that
order, the publish of one prebuilt event with no pipeline) and for the ceiling, a fresh process
takes wrk's maximum load; its CPU time per request comes from ``/proc``. Variants are measured
in interleaved rounds and the median kept, because this machine is shared and a single pass is
noisy. The difference between neighbouring variants is what the removed stage costs; the last
variant minus the ceiling is the gateway's HTTP handling (request id, checks, response) over
bare aiohttp.

Writes ``<out>/breakdown-<timestamp>.json`` and ``.md`` (default ``bench/results/``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.deliveries import SETS
from bench.knockout import PUBLISH_ONLY, STAGES
from bench.procs import Broker, start_ceiling, start_gateway
from bench.run import QUICK, RESULTS, Run, machine_info

VARIANTS = ("none", *STAGES)
#: What removing each stage takes away, for the table.
MEANING = {
    "log": "per-request JSON log line",
    "metrics": "per-request Prometheus metrics",
    "sink": "Kafka publish under the deadline (event JSON, produce, batch, ack)",
    "event": "building the JobEvent (pydantic)",
    "pipeline": "verify, parse, normalize, event id, dedupe",
}


def measure(run: Run, port: int, role: str, set_name: str, seconds: float) -> dict[str, Any]:
    """Warm up, then wrk at maximum load; req/s and CPU µs per request of ``role``."""
    warm = run.signed_file(f"{role}-warm", set_name, 12_000)
    run.wrk(port, warm, 2, None, wrap=True)
    requests = run.signed_file(f"{role}-max", set_name, int(12_000 * seconds))
    result = run.wrk(port, requests, seconds, None, wrap=True)
    run.usage(result, role)
    return {"rps": result["rps"], "cpu_us": result["cpu_us_per_request"], "ok": result["ok"],
            "requests": result["requests"]}  # fmt: skip


def execute(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    run = Run(QUICK, workdir, args.bootstrap)
    run.sampler.start()
    broker = (
        Broker(workdir, args.bootstrap, started_here=False)
        if args.bootstrap
        else Broker.start(workdir / "kafka")
    )
    measured = (*VARIANTS, PUBLISH_ONLY, "ceiling")
    samples: dict[str, list[dict[str, Any]]] = {v: [] for v in measured}
    try:
        for round_no in range(args.rounds):
            for variant in measured:
                run.say(f"round {round_no + 1}/{args.rounds}: {variant}")
                if variant == "ceiling":
                    service, port = start_ceiling(workdir)
                    run.sampler.watch("ceiling", service.all_pids)
                    role = "ceiling"
                else:
                    topic = f"bench.breakdown.{uuid.uuid4().hex[:8]}"
                    launcher = ("-m", "bench.knockout", variant)
                    service, port, _ = start_gateway(
                        workdir, f"{variant}-{round_no}", broker.bootstrap, topic,
                        launcher=launcher,
                    )  # fmt: skip
                    run.sampler.watch("gateway", service.worker_pids)
                    role = "gateway"
                try:
                    samples[variant].append(measure(run, port, role, args.set, args.seconds))
                finally:
                    run.sampler.sample_now()
                    run.sampler.unwatch(role)
                    service.stop()
    finally:
        broker.stop()
        run.sampler.stop()
    return summarize(args, samples)


def summarize(args: argparse.Namespace, samples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    median = {
        v: {
            "rps": statistics.median(s["rps"] for s in runs),
            "cpu_us": statistics.median(s["cpu_us"] for s in runs),
        }
        for v, runs in samples.items()
    }
    ceiling = median["ceiling"]
    rows = []
    for i, variant in enumerate(VARIANTS):
        after = median[VARIANTS[i + 1]] if i + 1 < len(VARIANTS) else ceiling
        rows.append(
            {
                "variant": variant,
                "rps": median[variant]["rps"],
                "throughput_ratio": median[variant]["rps"] / ceiling["rps"],
                "cpu_us": median[variant]["cpu_us"],
                "stage": VARIANTS[i + 1] if i + 1 < len(VARIANTS) else "http",
                "stage_cpu_us": median[variant]["cpu_us"] - after["cpu_us"],
            }
        )
    result = {
        "schema": 1,
        "set": args.set,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "machine": machine_info(),
        "ceiling": ceiling,
        "rows": rows,
        "samples": samples,
    }
    if PUBLISH_ONLY in median:
        alone = median[PUBLISH_ONLY]
        whole, unpublished = median["none"], median["sink"]
        result["publish_only"] = {
            **alone,
            "throughput_ratio": alone["rps"] / ceiling["rps"],
            # Each of the two big costs with the other absent, over the ceiling (log and
            # metrics are in both, so they are counted twice in the sum).
            "kafka_path_us": alone["cpu_us"] - ceiling["cpu_us"],
            "pipeline_path_us": unpublished["cpu_us"] - ceiling["cpu_us"],
            "whole_over_ceiling_us": whole["cpu_us"] - ceiling["cpu_us"],
        }
    return result


def markdown(result: dict[str, Any]) -> str:
    ceiling = result["ceiling"]
    total = result["rows"][0]["cpu_us"]
    lines = [
        f"Breakdown, set {result['set']}, median of {result['rounds']} rounds of "
        f"{result['seconds']} s at maximum load (wrk, 64 connections). Ceiling: "
        f"{ceiling['rps']:,.0f} req/s, {ceiling['cpu_us']:.0f} µs CPU per request.",
        "",
        "| variant (stages removed so far) | req/s | x ceiling | CPU µs/req |",
        "|---|---:|---:|---:|",
    ]
    removed: list[str] = []
    for row in result["rows"]:
        if row["variant"] != "none":
            removed.append(row["variant"])
        name = "whole gateway" if not removed else "without " + ", ".join(removed)
        lines.append(f"| {name} | {row['rps']:,.0f} | {row['throughput_ratio']:.3f} | "
                     f"{row['cpu_us']:.0f} |")  # fmt: skip
    alone = result.get("publish_only")
    if alone is not None:
        lines.append(f"| HTTP, log, metrics and the Kafka publish of one prebuilt event "
                     f"(no pipeline) | {alone['rps']:,.0f} | {alone['throughput_ratio']:.3f} | "
                     f"{alone['cpu_us']:.0f} |")  # fmt: skip
    lines += ["", "| stage | CPU µs/req | share of the gateway's |", "|---|---:|---:|"]
    for row in result["rows"]:
        stage = row["stage"]
        label = MEANING.get(stage, "HTTP handling over bare aiohttp (checks, request id, reply)")
        lines.append(f"| {label} | {row['stage_cpu_us']:.0f} | "
                     f"{100 * row['stage_cpu_us'] / total:.0f} % |")  # fmt: skip
    lines.append(f"| bare aiohttp (the ceiling) | {ceiling['cpu_us']:.0f} | "
                 f"{100 * ceiling['cpu_us'] / total:.0f} % |")  # fmt: skip
    if alone is not None:
        lines += [
            "",
            "Apart, over the ceiling (log and metrics in both): the Kafka path without the "
            f"pipeline {alone['kafka_path_us']:.0f} µs, the pipeline without Kafka "
            f"{alone['pipeline_path_us']:.0f} µs; sum "
            f"{alone['kafka_path_us'] + alone['pipeline_path_us']:.0f} µs against "
            f"{alone['whole_over_ceiling_us']:.0f} µs for the whole gateway.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", default="hmac", choices=sorted(SETS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--bootstrap", help="use this running broker instead of starting one")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-breakdown-"))
    started = time.time()
    try:
        result = execute(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(started, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"breakdown-{stamp}.json"
    path.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    table = markdown(result)
    path.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
