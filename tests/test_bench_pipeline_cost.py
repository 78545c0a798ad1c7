"""``bench/pipeline_cost.py`` on a few deliveries, so the harness cannot rot (its figures are
for docs/benchmark.md, never asserted here)."""

from __future__ import annotations

import re

import pytest

from bench import pipeline_cost


def test_pipeline_cost_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert pipeline_cost.main(["--sets", "hmac,fal", "--count", "20", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    rows = dict(re.findall(r"^\| (hmac|fal) \|(.*)\|$", out, re.M))
    assert set(rows) == {"hmac", "fal"}
    for cells in rows.values():
        median, low, high = (float(c) for c in cells.split("|"))
        assert high >= median >= low > 0


def test_an_unknown_set_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        pipeline_cost.main(["--sets", "nope"])
    assert exit_.value.code == 2
    assert "sets from" in capsys.readouterr().err
