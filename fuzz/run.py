"""Run every fuzz target (or the ones named) for a while each: ``make fuzz``.

Each target runs as its own ``python -m fuzz.harness`` process for ``--seconds`` (the
``FUZZ_SECONDS`` of ``make fuzz``), starting from the committed corpus in ``fuzz/corpus/`` plus
a working corpus in ``var/fuzz/corpus/`` that the fuzzer grows. Findings are written to
``var/fuzz/findings/``. ``--merge`` adds the working inputs that reach new coverage to the
committed corpus (libFuzzer's ``-merge=1``), so what a long run learnt is replayed by the tests.
The table printed at the end gives the executions per target, which accumulate in
``var/fuzz/executions.json`` across runs.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
WORK = ROOT / "var" / "fuzz"
#: Longest input per target: a delivery is headers and a body; a config file is short.
MAX_LEN = {"settings_loader": 4096, "parse_json": 8192}
DEFAULT_MAX_LEN = 20000
_EXECUTED = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_DONE = re.compile(r"#(\d+)\s+DONE")


@dataclass
class Result:
    target: str
    executions: int
    seconds: float
    returncode: int
    finding: str | None


def targets() -> list[str]:
    """The target names, without importing them (that builds every adapter)."""
    return sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


def harness_command(target: str, *flags: str) -> list[str]:
    return [sys.executable, "-m", "fuzz.harness", target, *flags]


def harness_env(target: str, work: Path = WORK) -> dict[str, str]:
    """The environment a harness runs in, with a one-line program that re-runs this target
    (libFuzzer's merge runs argv[0] again with only its own flags)."""
    program = work / "bin" / target
    program.parent.mkdir(parents=True, exist_ok=True)
    program.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -m fuzz.harness {target} "$@"\n', encoding="utf-8"
    )
    program.chmod(0o755)
    return {**os.environ, "PYTHONPATH": str(ROOT), "FUZZ_HARNESS_COMMAND": str(program)}


def run_target(target: str, seconds: float, *, runs: int | None = None) -> Result:
    work = WORK / "corpus" / target
    findings = WORK / "findings"
    work.mkdir(parents=True, exist_ok=True)
    findings.mkdir(parents=True, exist_ok=True)
    flags = [
        str(work),
        str(CORPUS / target),
        f"-max_total_time={max(1, int(seconds))}",
        f"-max_len={MAX_LEN.get(target, DEFAULT_MAX_LEN)}",
        f"-artifact_prefix={findings}/{target}-",
        "-print_final_stats=1",
        "-timeout=10",
        "-rss_limit_mb=2048",
    ]
    if runs is not None:
        flags.append(f"-runs={runs}")
    started = time.monotonic()
    proc = subprocess.run(
        harness_command(target, *flags),
        cwd=ROOT,
        env=harness_env(target),
        capture_output=True,
        text=True,
        timeout=seconds + 300,
        check=False,
    )
    elapsed = time.monotonic() - started
    log = WORK / "logs" / f"{target}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    found = _EXECUTED.findall(proc.stderr) or _DONE.findall(proc.stderr)
    executions = int(found[-1]) if found else 0
    finding = None
    if proc.returncode != 0:
        artifacts = re.findall(r"Test unit written to (\S+)", proc.stderr)
        finding = artifacts[-1] if artifacts else f"exit {proc.returncode}, see {log}"
    return Result(target, executions, elapsed, proc.returncode, finding)


def merge(target: str) -> None:
    """Keep in the committed corpus the working inputs that add coverage."""
    subprocess.run(
        harness_command(
            target,
            "-merge=1",
            f"-max_len={MAX_LEN.get(target, DEFAULT_MAX_LEN)}",
            str(CORPUS / target),
            str(WORK / "corpus" / target),
        ),
        cwd=ROOT,
        env=harness_env(target),
        capture_output=True,
        timeout=1800,
        check=True,
    )


def _accumulate(results: list[Result]) -> dict[str, int]:
    path = WORK / "executions.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(WORK / "executions.lock", "w") as lock:  # several runs may finish at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        totals: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
        for r in results:
            totals[r.target] = totals.get(r.target, 0) + r.executions
        path.write_text(json.dumps(totals, indent=2, sort_keys=True) + "\n")
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__)
    parser.add_argument("targets", nargs="*", help="default: every target")
    parser.add_argument("--seconds", type=float, default=60.0, help="per target")
    parser.add_argument("--runs", type=int, default=None, help="stop a target after N inputs")
    parser.add_argument("--merge", action="store_true", help="grow the committed corpus")
    args = parser.parse_args(argv)
    chosen = args.targets or targets()
    unknown = set(chosen) - set(targets())
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    results = []
    for target in chosen:
        result = run_target(target, args.seconds, runs=args.runs)
        results.append(result)
        state = "ok" if result.finding is None else f"FINDING {result.finding}"
        print(
            f"{target:28} {result.executions:>10,} executions {result.seconds:7.1f} s  {state}",
            flush=True,
        )
        if args.merge and result.finding is None:
            merge(target)
    totals = _accumulate(results)
    print("executions so far (var/fuzz/executions.json):")
    for target in chosen:
        print(f"  {target:28} {totals[target]:>12,}")
    return 1 if any(r.finding for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
