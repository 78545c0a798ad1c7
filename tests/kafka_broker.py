"""A real single-node Kafka broker for the test session, started through tools/kafka/kafka.sh.

The broker starts the first time a test asks for it and stops when the session ends. Tests that
need to take it down and bring it back call ``stop()`` / ``start()``: the data directory is
kept, so records written before a restart are still there after it.
"""

from __future__ import annotations

import socket
import subprocess
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


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = Broker(tmp_path_factory.mktemp("kafka"), free_port(), free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
