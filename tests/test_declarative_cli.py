"""A generic source from the command line: ``check-config`` explains a bad block precisely,
warns about weak ones, and ``send`` signs for any generic source against a running gateway."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gateway_process import gateway_process, wait_ready, write_config
from tests.support import run_check_config
from tests.test_cli import cli

HMAC = {"auth": "hmac", "header": "X-Sig", "signed_content": "{body}"}
JOB = {"kind": "job", "job_id": "id", "status": "state", "status_map": {"done": "succeeded"}}


def config_file(tmp_path: Path, source: dict[str, Any], mode: str = "development") -> Path:
    path = tmp_path / "gateway.yaml"
    source = {"provider": "generic", "secrets": [{"id": "k", "env": "SRC_SECRET"}], **source}
    path.write_text(yaml.safe_dump({"mode": mode, "sources": {"src": source}}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ({"scheme": {**HMAC, "signed_content": "{bdy}"}}, "source 'src': unknown token {bdy}"),
        ({"scheme": {**HMAC, "signed_content": "{timestamp}.{body}"}}, "scheme.timestamp"),
        ({"scheme": HMAC, "mapping": {**JOB, "job_id": "data.[id"}}, "mapping.job_id"),
        ({"scheme": HMAC, "mapping": {**JOB, "status_map": {"done": "finished"}}},
         "status_map"),
        ({"scheme": {**HMAC, "timestamp": {"source": "header", "header": "T",
                                            "max_age_seconds": 0}}}, "max_age_seconds"),
        ({"scheme": HMAC, "tolerance_seconds": 0}, "tolerance_seconds"),
        ({"scheme": {"auth": "none"}}, "allow_unauthenticated"),
        ({"scheme": {**HMAC, "signed_content": "{url}{body}"}}, "public_url"),
        ({"scheme": HMAC, "handshakes": [{"kind": "echo"}]}, "handshakes"),
    ],
)  # fmt: skip
def test_check_config_explains_a_bad_block(
    tmp_path: Path, source: dict[str, Any], fragment: str
) -> None:
    mode = "production" if source["scheme"].get("auth") == "none" else "development"
    result = run_check_config(config_file(tmp_path, source, mode), {"SRC_SECRET": "hunter2"})
    assert result.returncode == 2, result.stdout
    assert fragment in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_check_config_warns_about_weak_sources(tmp_path: Path) -> None:
    source = {"scheme": {"auth": "none"}, "allow_unauthenticated": True}
    result = run_check_config(config_file(tmp_path, source, "production"), {"SRC_SECRET": "x"})
    assert result.returncode == 0, result.stderr
    assert "warning: scheme.auth none" in result.stdout
    kie_like = {"scheme": {**HMAC, "signed_content": "{json:data.task_id}"}}
    result = run_check_config(config_file(tmp_path, kie_like), {"SRC_SECRET": "x"})
    assert "does not cover the body" in result.stdout
    assert "no signed timestamp" in result.stdout


def test_send_signs_for_a_generic_source(tmp_path: Path) -> None:
    config, data = write_config(tmp_path)
    with gateway_process(config, log=tmp_path / "gateway.log") as proc:
        wait_ready(data["admin"]["port"], proc=proc)
        sent = cli("send", "acme", "--config", str(config))
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert sent.stdout.startswith("200 ")
        again = cli("send", "acme", "--example", "invoice-paid", "--config", str(config))
        assert again.returncode == 0
        missing = cli("send", "acme", "--example", "refund", "--config", str(config))
        assert missing.returncode == 2
        assert "invoice-paid" in missing.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    lines = (Path(data["sink"]["local"]["directory"]) / "webhook-events.jsonl").read_text()
    events = [json.loads(line) for line in lines.splitlines()]
    assert [(e["provider"], e["event_type"]) for e in events] == [("acme", "invoice.paid")] * 2
    assert events[0]["delivery"]["id"] != events[1]["delivery"]["id"]
    assert "acme-dev-secret" not in (tmp_path / "gateway.log").read_text(encoding="utf-8")
