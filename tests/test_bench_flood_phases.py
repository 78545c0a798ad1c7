"""``bench/flood_phases.py`` on a small flood in seconds, every kind of variant, so the harness
cannot rot (its figures are for docs/floods.md, never asserted here)."""

from __future__ import annotations

import re

import pytest

from bench import flood_phases

VARIANTS = ("baseline", "no gc freeze + no cap + paced accept 16 + backlog 256", "refuse over 200")


def test_flood_phases_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--rounds", "1", "--rate", "50", "--idle", "300", "--trickling", "50"]
    args += ["--header-timeout", "1.5", "--quiet-seconds", "0.5", "--variants", ",".join(VARIANTS)]
    args += ["--load-below", "1000", "--foreign-cpu", "1000"]  # no waiting for a quiet machine
    assert flood_phases.main(args) == 0
    out = capsys.readouterr().out
    rows: dict[str, dict[str, list[str]]] = {}
    for match in re.finditer(r"^\| ([^|]+) \| (quiet|ramp idle|steady|after) \|(.*)\|$", out, re.M):
        rows.setdefault(match.group(1), {})[match.group(2)] = match.group(3).split("|")
    assert set(rows) == set(VARIANTS)
    for variant, phases in rows.items():
        deliveries, not_accepted = int(phases["quiet"][0]), int(phases["quiet"][1])
        assert deliveries > 0, variant
        assert not_accepted == 0, variant
    # The shipped gateway accepted every delivery through the flood and closed all of it.
    assert all(int(cells[1]) == 0 for cells in rows["baseline"].values())
    assert re.search(r"^\| baseline \| [^|]+ \| [^|]+ \| [^|]+ \| 350 of 350 \|", out, re.M)
