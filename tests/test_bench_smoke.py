"""``make bench-smoke`` end to end, so the benchmark harness cannot rot.

A few seconds of load per phase against a real gateway publishing to the session's real Kafka
broker (deduplicating through a redis-server the harness starts, for the shared dedupe
variant). It checks that the report is complete and that no delivery answered 2xx is missing
from Kafka; it never checks timings (the machine is shared: figures are for ``make bench``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kafka_broker import Broker
from tests.support import ROOT

pytestmark = pytest.mark.kafka

SECTIONS = (
    "machine",
    "plan",
    "gateway_settings",
    "scenarios",
    "ceiling",
    "scaling",
    "memory",
    "kafka",
    "targets",
)
SETS = ("hmac", "standard-webhooks", "fal", "mixed")


def test_bench_smoke_end_to_end(kafka_broker: Broker, tmp_path: Path) -> None:
    assert shutil.which("wrk"), "wrk is missing: make system-deps (apt-get install wrk)"
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--mode", "smoke", "--bootstrap",
         kafka_broker.bootstrap, "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    reports = list(out.glob("2*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text(encoding="utf-8"))
    assert json.loads((out / "latest.json").read_text(encoding="utf-8")) == report
    for section in SECTIONS:
        assert report.get(section), section
    assert report["mode"] == "smoke"
    assert report["machine"]["nproc"] >= 1
    assert report["machine"]["cpu_model"]

    for name in SETS:
        scenario = report["scenarios"][name]
        assert scenario["max"]["ok"] > 0
        assert scenario["ceiling_max"]["ok"] > 0
        assert scenario["max"]["duplicates"] == 0  # every request was distinct
        assert scenario["throughput_ratio"] is not None
        assert [r["fraction"] for r in scenario["rates"]] == [0.25, 0.5, 0.75]
        for rate in scenario["rates"]:
            for side in ("gateway", "ceiling"):
                assert rate[side]["completed"] > 0
                assert set(rate[side]["latency_ms"]) >= {"p50", "p99", "p99.9"}
            assert rate["gateway"]["duplicates"] == 0
        assert scenario["max"]["rss_mb"]["max"], name
        kafka = scenario["kafka"]
        assert kafka["answered_2xx"] > 0
        assert kafka["answered_event_ids"] == kafka["answered_2xx"]
        assert kafka["missing"] == 0, kafka
        assert kafka["missing_by_count"] == 0, kafka

    soak = report["scenarios"]["mixed"]["soak"]
    assert soak["load"]["completed"] > 0
    assert soak["rss_mb_series"]
    assert report["scaling"]["workers"] == 2
    assert report["scaling"]["worker_processes_seen"] == 2
    assert report["scaling"]["kafka"]["missing"] == 0
    redis = report["dedupe_redis"]  # the mixed set again, with the shared dedupe store
    assert redis["set"] == "mixed"
    assert redis["max"]["ok"] > 0
    assert redis["max"]["duplicates"] == 0
    assert redis["throughput_ratio_to_memory"] is not None
    assert redis["cpu_per_request_ratio_to_memory"] is not None
    assert redis["redis_cpu_us_per_request"] is not None
    assert redis["p99_at_half_load_ms"] is not None
    assert redis["kafka"]["missing"] == 0
    assert "dedupe_redis" in report["kafka"]["runs"]
    assert report["kafka"]["missing"] == 0
    assert report["kafka"]["missing_by_count"] == 0
    assert report["kafka"]["records"] >= report["kafka"]["answered_2xx"] > 0
    assert {t["target"] for t in report["targets"]} >= {
        "records missing from Kafka",
        "mixed p99 at 50% load with Redis dedupe (ms, incl. Kafka ack)",
    }

    table = (out / "latest.md").read_text(encoding="utf-8")
    assert "| provider set |" in table
    assert "fal (Ed25519)" in table
    assert "Redis dedupe (mixed (all six)" in table


def test_dedupe_sizing_measures_a_real_redis_server() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.dedupe_sizing", "--keys", "2000"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    sizing = json.loads(result.stdout)
    assert sizing["keys"] == 2000
    assert sizing["key_example"].startswith("webhook-gateway:dedupe:evt_")
    # A key, its value and its expiry take some bytes, and far fewer than a kilobyte.
    for field in ("memory_usage_committed_bytes", "used_memory_growth_per_key_bytes"):
        assert 40 < sizing[field] < 1000, sizing
