"""Profile the gateway under maximum load with py-spy (not part of ``make bench``).

Profiling slows the process it samples, so it is a run of its own: a broker (or
``--bootstrap``), one gateway on the Kafka sink, wrk at maximum load on a provider set, and
``py-spy record`` attached to the gateway for the measured seconds. py-spy is not a project
dependency: install it anywhere (``pip install py-spy``) and pass its path.

    python -m bench.profile --py-spy /path/to/py-spy [--set mixed] [--seconds 20]

Writes ``<out>/profile-<timestamp>.txt`` (the top functions, self and inclusive, of the event
loop thread) and the raw collapsed stacks next to it (for flamegraph.pl or speedscope).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench import deliveries
from bench.deliveries import SETS, Signer
from bench.procs import Broker, start_gateway
from bench.run import RESULTS, WRK_SCRIPT


def summarize(raw: Path, top: int = 30) -> str:
    """Self and inclusive shares per function, per thread (``--threads`` stacks)."""
    by_thread: collections.Counter[str] = collections.Counter()
    own: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    incl: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        by_thread[thread] += count
        if frames:
            own[thread][frames[-1]] += count
            for frame in set(frames):
                incl[thread][frame] += count
    total = sum(by_thread.values()) or 1
    out = [f"samples: {total}"]
    for thread, n in by_thread.most_common():
        out.append(f"  {100 * n / total:5.1f}%  {thread}")
    for thread, n in by_thread.most_common(2):
        out += ["", f"== {thread}: self (top {top})"]
        out += [f"{100 * c / n:5.1f}%  {f}" for f, c in own[thread].most_common(top)]
        out += ["", f"== {thread}: inclusive (top {top * 2})"]
        out += [f"{100 * c / n:5.1f}%  {f}" for f, c in incl[thread].most_common(top * 2)]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--py-spy", required=True, help="path to the py-spy binary")
    parser.add_argument("--set", default="mixed", choices=sorted(SETS))
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--bootstrap", help="use this running broker instead of starting one")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    raw = args.out / f"profile-{stamp}.collapsed"
    broker = (
        Broker(workdir, args.bootstrap, started_here=False)
        if args.bootstrap
        else Broker.start(workdir / "kafka")
    )
    try:
        topic = f"bench.profile.{uuid.uuid4().hex[:8]}"
        gateway, port, _ = start_gateway(workdir, "profile", broker.bootstrap, topic)
        try:
            signer = Signer.from_settings()
            count = 4000 * (args.seconds + 5)  # more than the gateway can take: never repeats
            requests = workdir / "profile.req"
            now = int(time.time())
            deliveries.write(requests, deliveries.generate(signer, SETS[args.set], count, now))
            wrk = subprocess.Popen(
                ["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds + 4}s", "--timeout",
                 "10s", "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}", "--", str(requests),
                 "-", "0"],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(2)  # past wrk's start and the first batches
            spy = subprocess.run(
                [args.py_spy, "record", "--pid", str(gateway.pid), "--duration",
                 str(args.seconds), "--rate", str(args.rate), "--threads", "--format", "raw",
                 "--output", str(raw), "--nonblocking"],
                capture_output=True, text=True, timeout=args.seconds + 60, check=False,
            )  # fmt: skip
            out, _ = wrk.communicate(timeout=args.seconds + 60)
        finally:
            gateway.stop()
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if spy.returncode != 0 or not raw.exists():
        print(f"py-spy failed ({spy.returncode}): {spy.stderr.strip()}")
        return 1
    rps = next((line for line in out.splitlines() if "Requests/sec" in line), "")
    text = f"set {args.set}, {args.connections} connections, wrk {rps.strip()}\n"
    text += summarize(raw)
    path = raw.with_suffix(".txt")
    path.write_text(text, encoding="utf-8")
    print(text)
    print(f"profile: {path} (collapsed stacks: {raw})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
