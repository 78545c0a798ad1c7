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


def test_the_publish_only_variant_is_read_apart() -> None:
    cpu = {"none": 200.0, "log": 190.0, "metrics": 185.0, "sink": 110.0, "event": 105.0,
           "pipeline": 50.0, knockout.PUBLISH_ONLY: 120.0, "ceiling": 40.0}  # fmt: skip
    samples = {v: [{"rps": 1e6 / c, "cpu_us": c, "ok": 1, "requests": 1}] for v, c in cpu.items()}
    result = summarize(argparse.Namespace(set="hmac", rounds=1, seconds=10), samples)
    alone = result["publish_only"]
    assert alone["kafka_path_us"] == pytest.approx(80.0)
    assert alone["pipeline_path_us"] == pytest.approx(70.0)
    assert alone["whole_over_ceiling_us"] == pytest.approx(160.0)
    assert alone["throughput_ratio"] == pytest.approx(40.0 / 120.0)
    table = markdown(result)
    assert "(no pipeline) | 8,333 | 0.333 | 120 |" in table
    assert "sum 150 µs against 160 µs" in table
    # Without the variant (older results), the table is as before.
    del samples[knockout.PUBLISH_ONLY]
    assert "no pipeline" not in markdown(
        summarize(argparse.Namespace(set="hmac", rounds=1, seconds=10), samples)
    )


def test_publish_only_publishes_a_real_event_through_the_sink(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    from gateway import ingest
    from gateway.app import PIPELINE, create_app
    from gateway.sinks.memory import MemorySink
    from schemas import JobEvent
    from tests.support import example_settings

    event = knockout.sample_event()
    assert isinstance(event, JobEvent)
    assert event.source in ("abstrakt", "instantapi")
    monkeypatch.setattr(ingest.Pipeline, "handle", ingest.Pipeline.handle)
    knockout.publish_only(event)
    sink = MemorySink()
    pipeline = create_app(example_settings(), sink=sink)[PIPELINE]

    async def deliver(available: bool) -> ingest.Outcome:
        await sink.start()
        sink.available = available
        headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
        return await pipeline.handle(pipeline.sources["abstrakt"], b"not even json", headers)

    outcome = asyncio.run(deliver(True))
    assert (outcome.status, outcome.event_id) == (200, event.event_id)
    assert sink.events == [(None, event)]
    outcome = asyncio.run(deliver(False))  # the sink's failure is the gateway's answer
    assert (outcome.status, outcome.reason) == (503, "sink_unavailable")
