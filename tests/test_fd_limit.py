"""The file descriptor limit against what ``limits.max_connections`` (by default
``max_in_flight`` plus the listen backlog) and the listener need: said at startup (raised when
the hard limit allows, else a warning) and by ``check-config``."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway import fd_limit
from gateway.settings import LimitsConfig
from tests.gateway_process import wait_ready, write_config

CLI = Path(sys.executable).parent / "webhook-gateway"


def limited(soft: int, hard: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


def test_needed_counts_connections_backlog_and_reserve() -> None:
    # The open connections, a whole accept queue accepted at once before the oldest idle
    # ones are closed, and the reserve.
    assert fd_limit.max_connections(LimitsConfig(max_in_flight=1000)) == 1000 + 1024
    assert fd_limit.needed(LimitsConfig(max_in_flight=1000)) == (1000 + 1024) + 1024 + 64
    assert fd_limit.needed(LimitsConfig(max_in_flight=10)) == (10 + 1024) + 1024 + 64
    capped = LimitsConfig(max_in_flight=1000, max_connections=500)
    assert fd_limit.max_connections(capped) == 500
    assert fd_limit.needed(capped) == 500 + 1024 + 64


def test_enough_raisable_and_unlimited() -> None:
    inf = resource.RLIM_INFINITY
    assert fd_limit.FdLimit(4096, 4096, 2088).enough
    low = fd_limit.FdLimit(1024, 65536, 2088)
    assert (low.enough, low.raisable) == (False, True)
    stuck = fd_limit.FdLimit(1024, 1024, 2088)
    assert (stuck.enough, stuck.raisable) == (False, False)
    assert "file descriptor limit 1024 (hard 1024)" in stuck.describe()
    assert "need 2088" in stuck.describe()
    assert fd_limit.FdLimit(inf, inf, 2088).enough
    assert fd_limit.FdLimit(1024, inf, 2088).raisable
    assert "hard unlimited" in fd_limit.FdLimit(1024, inf, 2088).describe()


@pytest.mark.parametrize(
    ("soft", "hard", "says"),
    [
        (300, 300, "warning: file descriptor limit 300 (hard 300)"),
        (300, 5000, "serve raises the soft limit to 3112"),
        (5000, 5000, "file descriptor limit 5000 (hard 5000); limits.max_connections and the "),
    ],
)
def test_check_config_reports_the_limit(tmp_path: Path, soft: int, hard: int, says: str) -> None:
    assert says in check_config(tmp_path, {"max_in_flight": 1000}, limited(soft, hard))


def check_config(
    tmp_path: Path, limits: dict[str, int], preexec: Callable[[], None] | None = None
) -> str:
    """``check-config`` on a config with these limits (under ``preexec``): what it printed."""
    config, _ = write_config(tmp_path, limits=limits)
    result = subprocess.run(
        [str(CLI), "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=preexec,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def serve_log(
    tmp_path: Path, soft: int, hard: int, config_limits: dict[str, int] | None = None
) -> tuple[list[dict[str, object]], str]:
    """Start ``serve`` under these fd limits, wait until ready, stop it: its log lines and the
    soft limit it ran with."""
    config, data = write_config(tmp_path, limits=config_limits or {"max_in_flight": 1000})
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(CLI), "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=limited(soft, hard),
        )
        try:
            wait_ready(data["admin"]["port"], 60.0, proc)
            limits = Path(f"/proc/{proc.pid}/limits").read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    (row,) = [r for r in limits.splitlines() if r.startswith("Max open files")]
    return lines, row.split()[3]


def test_serve_warns_when_the_hard_limit_is_too_low(tmp_path: Path) -> None:
    lines, soft = serve_log(tmp_path, 300, 300)
    (warning,) = [line for line in lines if line.get("event") == "fd_limit_low"]
    assert warning["level"] == "warning"
    assert (warning["soft_limit"], warning["hard_limit"], warning["needed"]) == (300, 300, 3112)
    assert "lower limits.max_in_flight" in str(warning["message"])
    assert soft == "300"


def test_serve_raises_the_soft_limit_when_it_may(tmp_path: Path) -> None:
    lines, soft = serve_log(tmp_path, 300, 5000)
    assert not [line for line in lines if line.get("event") == "fd_limit_low"]
    (raised,) = [line for line in lines if line.get("event") == "fd_limit_raised"]
    assert (raised["soft_limit"], raised["was"], raised["needed"]) == (3112, 300, 3112)
    assert soft == "3112"


def test_a_cap_not_above_max_in_flight_is_said(tmp_path: Path) -> None:
    limits = {"max_in_flight": 100, "max_connections": 100}
    said = "limits.max_connections (100) is not above limits.max_in_flight (100)"
    (tmp_path / "check").mkdir()
    assert f"warning: {said}" in check_config(tmp_path / "check", limits)
    lines, _ = serve_log(tmp_path, 5000, 5000, limits)
    (warned,) = [line for line in lines if line.get("event") == "connection_cap_below_in_flight"]
    assert warned["level"] == "warning"
    assert str(warned["message"]).startswith(said)
    assert (
        fd_limit.cap_below_in_flight(LimitsConfig(max_in_flight=100, max_connections=101)) is None
    )
    assert fd_limit.cap_below_in_flight(LimitsConfig(max_in_flight=100)) is None  # the default
