"""The command line as a user types it: serve, send, events tail, schema, check-config."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.schema_export import check_schemas
from tests.gateway_process import gateway_process, wait_ready, write_config
from tests.support import EXAMPLE_CONFIG, PROVIDERS, ROOT


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_committed_schema_has_not_drifted() -> None:
    assert check_schemas(ROOT / "schemas") == []


def test_schema_check_detects_drift(tmp_path: Path) -> None:
    assert main(["schema", "--out", str(tmp_path)]) == 0
    assert main(["schema", "--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "job_event.v1.schema.json").write_text("{}", encoding="utf-8")
    assert main(["schema", "--check", "--out", str(tmp_path)]) == 1


def test_check_config_example() -> None:
    result = cli("check-config", "--config", str(EXAMPLE_CONFIG))
    assert result.returncode == 0, result.stderr
    for provider in PROVIDERS:
        assert f"/webhooks/{provider}" in result.stdout
    assert "whsec_" not in result.stdout


def test_check_config_reports_missing_secret(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(
        "sources:\n  r:\n    provider: replicate\n"
        "    secrets: [{id: a, env: MISSING_SECRET_VAR}]\n",
        encoding="utf-8",
    )
    result = cli("check-config", "--config", str(path))
    assert result.returncode == 2
    assert "MISSING_SECRET_VAR" in result.stderr


def test_examples_lists_every_provider() -> None:
    result = cli("examples")
    assert result.returncode == 0
    for provider in PROVIDERS:
        assert f"{provider}: " in result.stdout
        assert "succeeded" in result.stdout


def test_send_and_tail_against_a_running_gateway(tmp_path: Path) -> None:
    config, data = write_config(tmp_path)
    with gateway_process(config, log=tmp_path / "gateway.log") as proc:
        wait_ready(data["admin"]["port"], proc=proc)
        for provider in PROVIDERS:
            sent = cli("send", provider, "--example", "succeeded", "--config", str(config))
            assert sent.returncode == 0, sent.stdout + sent.stderr
            assert sent.stdout.startswith("200 ")
        failed = cli("send", "replicate", "--example", "failed", "--config", str(config))
        assert failed.returncode == 0
        dead = cli("send", "openai", "--example", "unsupported", "--config", str(config))
        assert '"dead_letter":true' in dead.stdout
        unknown = cli("send", "fal", "--example", "nope", "--config", str(config))
        assert unknown.returncode == 2
        assert "payload-error" in unknown.stderr
        tail = cli("events", "tail", "-n", "100", "--config", str(config))
        assert tail.returncode == 0
        events = [json.loads(line) for line in tail.stdout.splitlines()]
        assert [e["source"] for e in events] == [*PROVIDERS, "replicate"]
        assert events[-1]["status"] == "failed"
        dl = cli("events", "tail", "--dead-letters", "--config", str(config))
        assert json.loads(dl.stdout)["reason"] == "unsupported_event_type"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    log = (tmp_path / "gateway.log").read_text(encoding="utf-8")
    assert "whsec_" not in log
    assert "dev-secret" not in log


def test_send_to_nothing_fails_cleanly(tmp_path: Path) -> None:
    config, _ = write_config(tmp_path)
    result = cli("send", "fal", "--config", str(config))
    assert result.returncode == 1
    assert "cannot reach" in result.stderr


@pytest.mark.parametrize("args", [["events", "tail", "--directory", "/nonexistent-dir"]])
def test_tail_without_log(args: list[str]) -> None:
    result = cli(*args)
    assert result.returncode == 1
    assert "no events yet" in result.stderr
