"""The README's benchmark table repeats the latest full run of docs/benchmark.md: when one is
updated and the other is not, this fails."""

from __future__ import annotations

import re

from tests.support import ROOT

SETS = {"HMAC": "HMAC (abstrakt, instantapi)",
        "Standard Webhooks": "Standard Webhooks (replicate, openai, standard-webhooks)",
        "fal (Ed25519)": "fal (Ed25519)"}  # fmt: skip


def _rows(text: str) -> dict[str, list[str]]:
    return {
        cells[0]: cells[1:]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("|---")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }


def test_readme_figures_are_the_latest_full_run() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## What it costs", 1)[1].split("\n## ", 1)[0]
    shown = _rows(table)
    docs = (ROOT / "docs" / "benchmark.md").read_text(encoding="utf-8")
    latest = docs.split("\n## Latest full run\n", 1)[1].split("\n### ", 1)[0]
    measured = _rows(latest)
    assert set(SETS) <= set(shown)
    for name, row_name in SETS.items():
        req_s, per_hmac, per_fal, per_ceiling, latency = shown[name]
        full = measured[row_name]
        # max req/s, x hand-written HMAC, x hand-written fal, x ceiling, ..., at 50 %
        assert [req_s, per_hmac, per_fal, per_ceiling] == full[:4], name
        p50, p99, _ = (v.strip() for v in full[7].split("/"))
        assert latency == f"{p50} / {p99}", name
        assert re.fullmatch(r"[\d,]+", req_s)
