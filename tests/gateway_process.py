"""Run ``webhook-gateway serve`` as a real subprocess on free loopback ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench.procs import poll_ready
from tests.kafka_broker import free_port
from tests.support import EXAMPLE_CONFIG


def write_config(tmp_path: Path, **changes: Any) -> tuple[Path, dict[str, Any]]:
    """The example config on free ports with its log in ``tmp_path``, plus ``changes``."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["listen"] = {"host": "127.0.0.1", "port": free_port()}
    data["admin"] = {"host": "127.0.0.1", "port": free_port()}
    data["sink"]["local"]["directory"] = str(tmp_path / "events")
    data["logging"] = {"level": "info", "format": "json"}
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path, data


def wait_ready(
    admin_port: int, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    def exited() -> str | None:
        if proc is None or proc.poll() is None:
            return None
        return f"gateway exited with {proc.returncode}"

    poll_ready(admin_port, timeout, exited)


@contextmanager
def gateway_process(
    config: Path,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    module: str = "gateway.cli",
    preexec: Callable[[], None] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``module`` is what runs ``serve`` (tests/stalled_sink.py wraps the CLI); ``preexec``
    runs in the child before it (resource limits)."""
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "serve", "--config", str(config)],
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT,
        preexec_fn=preexec,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if log is not None and hasattr(out, "close"):
            out.close()
