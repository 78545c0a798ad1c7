"""``bench/accept_floor.py`` on a small burst, so the harness cannot rot (its figures are for
docs/floods.md, never asserted here)."""

from __future__ import annotations

import re

import pytest

from bench import accept_floor


def test_accept_floor_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        accept_floor.main(
            ["--connections", "200", "--batch", "100", "--rounds", "1", "--cap", "150"]
        )
        == 0
    )
    out = capsys.readouterr().out
    rows = dict(re.findall(r"^\| (noop|pending|pending, capped) \|(.*)\|$", out, re.M))
    assert set(rows) == {"noop", "pending", "pending, capped"}
    for cells in rows.values():
        user, system, longest, p99 = (c.strip() for c in cells.split("|"))
        assert float(user) + float(system) > 0
        median, worst = (float(x) for x in longest.split(" / "))
        assert worst >= median >= float(p99) >= 0
