"""Helpers for gateway tests: settings from the example config, signed requests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from adapters import build_adapter
from adapters.examples import render
from gateway.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "deploy" / "gateway.example.yaml"
PROVIDERS = ("fal", "standard-webhooks", "replicate", "openai", "abstrakt", "instantapi")


def example_settings(**overrides: Any) -> Settings:
    return load_settings(EXAMPLE_CONFIG, **overrides)


def signed(
    settings: Settings,
    source: str,
    example: str = "succeeded",
    *,
    job_id: str | None = None,
    delivery_id: str | None = None,
    now: int | None = None,
    body: bytes | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A body and the headers its provider would send, signed with the configured key."""
    spec = settings.source_specs()[source]
    adapter = build_adapter(spec)
    now = int(time.time()) if now is None else now
    job_id = job_id or uuid.uuid4().hex[:20]
    raw = body if body is not None else render(spec.provider, example, job_id=job_id, now=now)
    if delivery_id is None:
        delivery_id = job_id if spec.provider == "fal" else f"msg_{uuid.uuid4().hex}"
    headers = {"Content-Type": "application/json"}
    headers.update(adapter.sign(raw, now, delivery_id=delivery_id))
    return raw, headers


def run_check_config(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``webhook-gateway check-config`` in a clean environment holding only ``env`` (and PATH),
    as a container or a pod would run it."""
    cli = Path(sys.executable).parent / "webhook-gateway"
    return subprocess.run(
        [str(cli), "check-config", "--config", str(config)],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
