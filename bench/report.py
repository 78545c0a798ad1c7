"""The short markdown table of a run (``bench/results/latest.md``)."""

from __future__ import annotations

from typing import Any

LABELS = {
    "hmac": "HMAC (abstrakt, instantapi)",
    "standard-webhooks": "Standard Webhooks (replicate, openai, standard-webhooks)",
    "fal": "fal (Ed25519)",
    "mixed": "mixed (all six)",
}


def _f(value: Any, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}{suffix}"
    return str(value)


def _flatness(flat: bool | None) -> str:
    if flat is None:
        return "too short to tell"
    return "flat" if flat else "not flat"


def _lat(latency: dict[str, float]) -> str:
    return " / ".join(_f(latency.get(q), 1) for q in ("p50", "p99", "p99.9"))


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    g = results["gateway_settings"]
    plan = results["plan"]
    lines = [
        f"Benchmark ({results['mode']}, {results['started_at']}, commit "
        f"{m.get('git_commit') or '?'}): {m['nproc']} x {m['cpu_model']}, Python {m['python']}, "
        f"kernel {m['kernel']}, load average {m['loadavg_at_start'][0]:.2f} at start. "
        f"Gateway: 1 worker, Kafka {m.get('kafka') or ''} on the same machine, acks=all, "
        f"idempotent, {g['compression']}, linger {g['linger_ms']} ms, JSON logs to a file. "
        f"Ceiling: bare aiohttp app that reads the body and answers 200. "
        f"Max: wrk, {plan['connections']} connections, {plan['max_s']:.0f} s; "
        f"latency: open-loop fixed rate (bench/loadgen.py), {plan['rate_s']:.0f} s per rate, "
        f"gateway and ceiling at the same rate."
        + (
            " Overrides: " + ", ".join(f"{k}={v}" for k, v in g["extra_environment"].items())
            if g.get("extra_environment")
            else ""
        ),
        "",
        "| provider set | max req/s | x ceiling | CPU/req x ceiling "
        "| p50 / p99 / p99.9 ms at 25 % | at 50 % | at 75 % | p99 x ceiling at 50 % "
        "| RSS at max (MB) | missing |",
        "|---|---:|---:|---:|---|---|---|---:|---:|---:|",
    ]
    for name, s in results["scenarios"].items():
        by_fraction = {r["fraction"]: r for r in s["rates"]}
        cells = [
            LABELS.get(name, name),
            _f(s["max"]["rps"]),
            _f(s["throughput_ratio"], 3),
            _f(s["cpu_per_request_ratio"], 1),
        ]
        for fraction in (0.25, 0.5, 0.75):
            r = by_fraction.get(fraction)
            cells.append(_lat(r["gateway"]["latency_ms"]) if r else "-")
        half = by_fraction.get(0.5)
        cells.append(_f(half["latency_ratio"]["p99"], 1) if half else "-")
        cells.append(_f(s["max"]["rss_mb"]["max"], 0))
        cells.append(_f(s["kafka"]["missing"]))
        lines.append("| " + " | ".join(cells) + " |")
    ceiling = results["ceiling"]
    lines.append(
        "| ceiling (same requests) | "
        + " / ".join(_f(c["max_rps"]) for c in ceiling.values())
        + " | 1 | 1 | "
        + " | ".join(
            _lat(
                next(r for r in results["scenarios"]["mixed"]["rates"] if r["fraction"] == f)[
                    "ceiling"
                ]["latency_ms"]
            )
            if "mixed" in results["scenarios"]
            else "-"
            for f in (0.25, 0.5, 0.75)
        )
        + " | 1 | "
        + _f(results["memory"]["ceiling_rss_mb_at_max_load"].get("mixed"), 0)
        + " | - |"
    )
    sc = results["scaling"]
    mem = results["memory"]
    soak = mem["soak"] or {}
    lines += [
        "",
        f"Ceiling row: max req/s per set in table order; latencies at the mixed set's rates. "
        f"Scaling, mixed set, 1 → {sc['workers']} workers: {_f(sc['one_worker_rps'])} → "
        f"{_f(sc['rps'])} req/s (x {_f(sc['ratio'], 2)}), on {m['nproc']} cores shared with "
        f"Kafka and the load generator. "
        f"Memory: peak RSS {_f(mem['peak_rss_mb_overall'], 0)} MB (VmHWM, the dedupe store "
        f"full at {_f(results['gateway_settings']['dedupe_max_entries'])} entries"
        f"{'' if soak.get('dedupe_full_by_second_half') else ' - not reached'}); "
        f"soak {_f(soak.get('duration_s'), 0)} s at {_f(soak.get('rate'), 0)} req/s: "
        f"{_f(soak.get('rss_mb_start'), 0)} → {_f(soak.get('rss_mb_end'), 0)} MB, steady "
        f"{_f(soak.get('steady_rss_mb'), 0)} MB, slope "
        f"{_f(soak.get('slope_mb_per_min_second_half'), 2)} MB/min over the second half "
        f"({_flatness(soak.get('flat'))}). "
        f"Kafka: {_f(results['kafka']['answered_2xx'])} answered 2xx, "
        f"{_f(results['kafka']['records'])} records, {_f(results['kafka']['missing'])} missing.",
    ]
    lines += _redis_lines(results)
    lines += [
        "",
        "| target | goal | measured | met |",
        "|---|---|---:|---|",
    ]
    for t in results["targets"]:
        measured = t["measured"]
        digits = 0 if isinstance(measured, int) else 3 if measured < 10 else 1
        goal = str(t["goal"]).replace("|", "\\|")
        lines.append(f"| {t['target']} | {goal} | {_f(measured, digits)} | {_f(t['met'])} |")
    if results.get("notes"):
        lines += ["", "Notes: " + "; ".join(results["notes"])]
    return "\n".join(lines) + "\n"


def _redis_lines(results: dict[str, Any]) -> list[str]:
    """The shared dedupe variant: its own figures, and ratios to in-memory dedupe."""
    r = results.get("dedupe_redis")
    if r is None:
        return []
    half = next((x for x in r["rates"] if x["fraction"] == 0.5), None)
    latency = _lat(half["gateway"]["latency_ms"]) if half else "-"
    return [
        "",
        f"Redis dedupe ({LABELS.get(r['set'], r['set'])}, dedupe.kind redis, a local "
        f"redis-server, same run): max {_f(r['max']['rps'])} req/s = x "
        f"{_f(r['throughput_ratio_to_memory'], 3)} of in-memory dedupe "
        f"({_f(r['throughput_ratio'], 3)} of the ceiling); CPU per delivery x "
        f"{_f(r['cpu_per_request_ratio_to_memory'], 3)} of in-memory dedupe, plus "
        f"{_f(r['redis_cpu_us_per_request'], 0)} µs in redis-server; p50 / p99 / p99.9 at 50 % "
        f"of its maximum {latency} ms (p99 x {_f(r['p99_at_half_load_ratio_to_memory'], 2)} of "
        f"in-memory dedupe at its own half load); missing {_f(r['kafka']['missing'])}.",
    ]


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.report RESULTS.json``: print the table of a saved run again."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    print(markdown(json.loads(args.results.read_text(encoding="utf-8"))), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def quick(results: dict[str, Any]) -> str:
    """One line for an A/B of one change: the mixed set's figures as ratios to the ceiling."""
    s = results["scenarios"]["mixed"]
    rate = s["rates"][0]
    gw_cpu = s["max"]["cpu_us_per_request"]
    ce_cpu = s["ceiling_max"]["cpu_us_per_request"]
    return (
        f"quick ({results.get('gateway_settings', {}).get('extra_environment') or 'defaults'}): "
        f"max {s['max']['rps']:.0f}/s = {s['throughput_ratio']:.3f} of ceiling; "
        f"CPU/req {gw_cpu:.0f} us = {gw_cpu / ce_cpu:.2f} x ceiling; "
        f"p50/p99 at 50 %: {rate['gateway']['latency_ms']['p50']:.1f}/"
        f"{rate['gateway']['latency_ms']['p99']:.1f} ms "
        f"(p99 {rate['latency_ratio']['p99']:.1f} x ceiling); "
        f"missing {s['kafka']['missing']}\n"
    ) + "".join(line + "\n" for line in _redis_lines(results) if line)
