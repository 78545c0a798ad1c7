"""``python -m bench.verify_cost`` runs and reports every scheme (figures are not checked)."""

from __future__ import annotations

import json

import pytest

from bench.verify_cost import main


def test_verify_cost_reports_every_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rounds", "1", "--iterations", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert set(rows) == {
        "hmac-sha256-hex",
        "ed25519-jwks (fal)",
        "aws-sns-v1",
        "aws-sns-v2",
        "google-oidc-rs256",
    }
    assert rows["hmac-sha256-hex"]["ratio"] == 1.0
    assert all(row["us"] > 0 for row in rows.values())
