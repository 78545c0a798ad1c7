"""Real processes for the monitoring tests: the gateway (``webhook-gateway serve``) and a
Prometheus server scraping it.

Everything binds 127.0.0.1 on free ports, writes under the test's ``tmp_path`` and logs to a
file whose tail goes into failure messages. The binaries come from Debian's ``prometheus``
package (``make system-deps``); when they are missing the test fails, it does not skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERT_RULES = PROMETHEUS_DIR / "alerts.yml"
ALERT_TESTS = PROMETHEUS_DIR / "alerts.test.yml"
GATEWAY_EXAMPLE_CONFIG = ROOT / "deploy" / "gateway.example.yaml"
JOB = "webhook-gateway"
LOOPBACK = "127.0.0.1"


def require_binary(name: str) -> str:
    """The binary's path; fails the test (never skips) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name!r} is not on PATH: install Debian's prometheus package "
            "(`make system-deps`, or `apt-get install prometheus`)",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@dataclass
class Process:
    """A child process whose output goes to a log file; ``stop()`` always reaps it."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes]

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path,
        env: Mapping[str, str] | None = None,
    ) -> Process:
        log = log_path.open("wb")
        try:
            popen = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        except BaseException:
            log.close()
            raise
        return cls(name, popen, log_path, log)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- {self.name} (exit {self.popen.poll()}), last lines of {self.log_path}:\n{tail}"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait, then SIGKILL: the process is gone when this returns."""
        try:
            if self.popen.poll() is None:
                self.popen.terminate()
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait(timeout)
        finally:
            self._log.close()


def wait_until_ok(url: str, process: Process, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail early, with the log, if the process dies."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not process.alive():
            pytest.fail(f"{process.name} exited before {url} was ready\n{process.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    pytest.fail(f"{url} not ready after {timeout} s ({last})\n{process.log_tail()}")


def write_gateway_config(
    path: Path, *, listen_port: int, admin_port: int, events_dir: Path
) -> Path:
    """The example config (development mode, local sink), on loopback ports, logging to tmp."""
    config: dict[str, Any] = yaml.safe_load(GATEWAY_EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    config["mode"] = "development"
    config["listen"] = {"host": LOOPBACK, "port": listen_port}
    config["admin"] = {"host": LOOPBACK, "port": admin_port}
    config.setdefault("limits", {})["shutdown_grace_seconds"] = 2
    config["sink"]["kind"] = "local"
    config["sink"]["local"] = {"directory": str(events_dir), "fsync": False}
    config["logging"] = {"level": "info", "format": "json"}
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def start_gateway(config: Path, workdir: Path) -> Process:
    """``webhook-gateway serve --config FILE``, without any WEBHOOK_GATEWAY_* overrides."""
    script = Path(sys.executable).with_name("webhook-gateway")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOK_GATEWAY_")}
    return Process.start(
        "webhook-gateway",
        [*argv, "serve", "--config", str(config)],
        log_path=workdir / "gateway.log",
        cwd=workdir,
        env=env,
    )


def write_prometheus_config(path: Path, *, target: str, interval: str = "1s") -> Path:
    """deploy/prometheus/prometheus.yml, scraping ``target`` every ``interval``.

    The rule files are the repository's own (absolute paths), evaluated at the same interval.
    """
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    timing = {"scrape_interval": interval, "scrape_timeout": interval}
    config["global"] = {**config.get("global", {}), **timing, "evaluation_interval": interval}
    config["rule_files"] = [str((PROMETHEUS_DIR / name).resolve()) for name in config["rule_files"]]
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == JOB]
    job.update(timing)
    job["static_configs"] = [{"targets": [target]}]
    config["scrape_configs"] = [job]
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def start_prometheus(config: Path, workdir: Path, port: int) -> Process:
    data = workdir / "tsdb"
    data.mkdir(exist_ok=True)
    return Process.start(
        "prometheus",
        [
            require_binary("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--log.level=warn",
        ],
        log_path=workdir / "prometheus.log",
        cwd=workdir,
    )


class PrometheusAPIError(AssertionError):
    """Prometheus answered an API call with an error (bad PromQL, for instance)."""


async def api_get(
    session: aiohttp.ClientSession,
    base_url: str,
    path: str,
    params: Mapping[str, str] | None = None,
) -> Any:
    """``GET /api/v1/<path>``; the ``data`` of a successful answer."""
    async with session.get(f"{base_url}/api/v1/{path}", params=params) as response:
        body: dict[str, Any] = await response.json(content_type=None)
    if body.get("status") != "success":
        raise PrometheusAPIError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


async def instant_query(
    session: aiohttp.ClientSession, base_url: str, expr: str
) -> list[dict[str, Any]]:
    """An instant vector query: ``[{"metric": {...}, "value": [ts, "1"]}, ...]``."""
    data = await api_get(session, base_url, "query", {"query": expr})
    result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else []
    return result
