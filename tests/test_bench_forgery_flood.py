"""``bench/forgery_flood.py`` in seconds (all four variants), so the harness cannot rot."""

from __future__ import annotations

import re

import pytest

from bench import forgery_flood


def number(text: str) -> float:
    return float(text.replace(",", ""))


def test_forgery_flood_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert forgery_flood.main(["--seconds", "3", "--rounds", "1", "--rate", "20"]) == 0
    out = capsys.readouterr().out
    rows = {
        m.group(1): [c.strip() for c in m.group(2).split("|")]
        for m in re.finditer(r"^\| (quiet|no budget|429|close) \|(.*)\|$", out, re.M)
    }
    assert set(rows) == set(forgery_flood.VARIANTS)
    # columns: flood req/s, 401, 429, closed, CPU/req, CPU share, p50 / p99, ratio
    assert number(rows["quiet"][0]) == 0
    assert number(rows["no budget"][1]) > 0
    assert number(rows["no budget"][2]) == 0
    assert number(rows["429"][2]) > number(rows["429"][1]) > 0
    assert number(rows["close"][3]) > 0
    assert number(rows["close"][2]) == 0
