"""``bench/wake_cost.py`` on a short window, so the probe cannot rot (its figures are for
docs/benchmark.md, never asserted here)."""

from __future__ import annotations

import os
import re

import pytest

from bench import wake_cost


def test_wake_cost_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    cpu = max(os.sched_getaffinity(0))
    argv = ["--cpu", str(cpu), "--seconds", "0.3", "--periods", "0.002"]
    assert wake_cost.main(argv) == 0
    (row,) = re.findall(r"^\| 2 ms \|(.*)\|$", capsys.readouterr().out, re.M)
    wakes, charged, busy, other = (float(c.replace(",", "")) for c in row.split("|"))
    assert 50 < wakes <= 500  # 2 ms sleeps: at most 500 a second, and not a handful
    assert charged >= 0
    assert busy >= 0
    assert -0.1 <= other <= 1.1  # a share of one CPU, read in 10 ms units of /proc/stat


def test_idle_time_only_grows() -> None:
    cpu = max(os.sched_getaffinity(0))
    first = wake_cost.idle_seconds(cpu)
    assert wake_cost.idle_seconds(cpu) >= first >= 0
    with pytest.raises(ValueError, match="no cpu"):
        wake_cost.idle_seconds(10_000)


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--periods", "soon"], ["--periods", "0"], ["--cpu", "10000"]):
        with pytest.raises(SystemExit) as exit_:
            wake_cost.main(argv)
        assert exit_.value.code == 2
    assert "error" in capsys.readouterr().err
