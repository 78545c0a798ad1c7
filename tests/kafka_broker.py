"""A real single-node Kafka broker for the test session, started through tools/kafka/kafka.sh.

The broker starts the first time a test asks for it and stops when the session ends. Tests that
need to take it down and bring it back call ``stop()`` / ``start()``: the data directory is
kept, so records written before a restart are still there after it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "kafka" / "kafka.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    data: Path
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        subprocess.run(
            [
                str(SCRIPT),
                "start",
                "--data",
                str(self.data),
                "--port",
                str(self.port),
                "--controller-port",
                str(self.controller_port),
                "--timeout",
                "120",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        subprocess.run([str(SCRIPT), "stop", "--data", str(self.data)], check=True)

    def kill(self, limit_seconds: float = 30.0) -> None:
        """SIGKILL the broker, as a crash would (no shutdown, no flush); return once it is gone
        and its port is free. ``start()`` brings it back on the same data."""
        pid = int((self.data / "kafka.pid").read_text(encoding="utf-8").strip())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + limit_seconds
        while _alive(pid) or listening(self.port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"broker pid {pid} still there {limit_seconds} s after SIGKILL")
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie its parent has not reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def listening(port: int) -> bool:
    """Whether something accepts connections on the loopback ``port``."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = Broker(tmp_path_factory.mktemp("kafka"), free_port(), free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
