"""``docs/providers.md`` and the chart's provider names are generated from the registry, and the
committed copies must not drift from it."""

from __future__ import annotations

import shutil
from pathlib import Path

from adapters import ADAPTERS
from gateway import provider_docs
from gateway.cli import CHART_SCHEMA, PROVIDER_DOCS, main


def test_committed_files_have_not_drifted() -> None:
    assert not provider_docs.drifted(PROVIDER_DOCS)
    assert not provider_docs.chart_drifted(CHART_SCHEMA)


def test_every_provider_has_a_row() -> None:
    text = PROVIDER_DOCS.read_text(encoding="utf-8")
    for name in ADAPTERS:
        assert f"| `{name}` |" in text
    assert f"{len(ADAPTERS)} providers" in text


def test_check_detects_drift(tmp_path: Path) -> None:
    docs, chart = tmp_path / "providers.md", tmp_path / "values.schema.json"
    shutil.copy(CHART_SCHEMA, chart)
    assert main(["docs", "--out", str(docs), "--chart", str(chart)]) == 0
    assert main(["docs", "--check", "--out", str(docs), "--chart", str(chart)]) == 0
    docs.write_text(docs.read_text(encoding="utf-8").replace("fal.ai", "fal"), encoding="utf-8")
    assert main(["docs", "--check", "--out", str(docs), "--chart", str(chart)]) == 1
    assert main(["docs", "--out", str(docs), "--chart", str(chart)]) == 0
    chart.write_text(chart.read_text(encoding="utf-8").replace('"github",', ""), encoding="utf-8")
    assert main(["docs", "--check", "--out", str(docs), "--chart", str(chart)]) == 1
