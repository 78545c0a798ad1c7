"""bench/breakdown.py's arithmetic and bench/knockout.py's stage order (no load needed)."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from bench import knockout
from bench.breakdown import VARIANTS, markdown, summarize


def test_stages_are_removed_cumulatively_in_order() -> None:
    assert knockout.removed("none") == ()
    assert knockout.removed("log") == ("log",)
    assert knockout.removed("sink") == ("log", "metrics", "sink")
    assert knockout.removed("pipeline") == knockout.STAGES
    with pytest.raises(ValueError, match="unknown stage"):
        knockout.removed("kafka")


def test_stage_costs_add_up_to_the_whole_gateway() -> None:
    cpu = {"none": 230.0, "log": 215.0, "metrics": 205.0, "sink": 160.0, "event": 150.0,
           "pipeline": 70.0, "ceiling": 52.0}  # fmt: skip
    samples = {
        v: [{"rps": 1e6 / c, "cpu_us": c + d, "ok": 1, "requests": 1} for d in (-3.0, 0.0, 9.0)]
        for v, c in cpu.items()
    }
    args = argparse.Namespace(set="hmac", rounds=3, seconds=10)
    result = summarize(args, samples)
    rows = {row["variant"]: row for row in result["rows"]}
    assert [row["variant"] for row in result["rows"]] == list(VARIANTS)
    assert rows["none"]["cpu_us"] == 230.0  # the median, not the mean (233.0)
    assert rows["none"]["stage"] == "log"
    assert rows["none"]["stage_cpu_us"] == pytest.approx(15.0)
    assert rows["pipeline"]["stage"] == "http"
    assert rows["pipeline"]["stage_cpu_us"] == pytest.approx(18.0)
    total = sum(row["stage_cpu_us"] for row in result["rows"]) + result["ceiling"]["cpu_us"]
    assert total == pytest.approx(230.0)
    assert rows["none"]["throughput_ratio"] == pytest.approx(52.0 / 230.0)
    table = markdown(result)
    assert "| whole gateway |" in table
    assert "| bare aiohttp (the ceiling) | 52 | 23 % |" in table


def test_knocked_out_pipeline_answers_without_verifying(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import ingest

    monkeypatch.setattr(ingest.Pipeline, "handle", ingest.Pipeline.handle)
    knockout.apply(("pipeline",))
    outcome = asyncio.run(ingest.Pipeline.handle(None, None, b"", {}))  # type: ignore[arg-type]
    assert (outcome.status, outcome.event_id) == (200, "evt_knockout")
