"""The processes a benchmark run starts: a Kafka broker, the gateway, the ceiling app and the
hand-written reference.

Everything binds to 127.0.0.1 on free ports, and everything started is stopped again.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from bench.deliveries import EXAMPLE_CONFIG, ROOT
from bench.sampler import children, cmdline

KAFKA_SCRIPT = ROOT / "tools" / "kafka" / "kafka.sh"


def free_port(consecutive: int = 1) -> int:
    """A free loopback port ``p`` such that ``p .. p+consecutive-1`` are all free."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + consecutive > 65535:
            continue
        if all(_is_free(port + i) for i in range(1, consecutive)):
            return port
    raise RuntimeError("no run of free ports found")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Broker:
    data: Path
    bootstrap: str
    started_here: bool

    @classmethod
    def start(cls, data: Path) -> Broker:
        port = free_port()
        controller = free_port()
        result = subprocess.run(
            [str(KAFKA_SCRIPT), "start", "--data", str(data), "--port", str(port),
             "--controller-port", str(controller), "--timeout", "120"],
            check=True, stdout=subprocess.PIPE, text=True, timeout=300,
        )  # fmt: skip
        bootstrap = result.stdout.strip().splitlines()[-1]
        return cls(data, bootstrap, True)

    def pid(self) -> list[int]:
        try:
            return [int((self.data / "kafka.pid").read_text().strip())]
        except (OSError, ValueError):
            return []

    def stop(self) -> None:
        if self.started_here:
            subprocess.run(
                [str(KAFKA_SCRIPT), "stop", "--data", str(self.data)], check=False, timeout=120
            )


def write_gateway_config(path: Path, listen_port: int, admin_port: int) -> dict[str, Any]:
    """The example config (one source per provider) on our ports, JSON logs at info.

    The sink itself is set through the environment (see ``gateway_env``), as in production.
    """
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["listen"] = {"host": "127.0.0.1", "port": listen_port}
    data["admin"] = {"host": "127.0.0.1", "port": admin_port}
    data["logging"] = {"level": "info", "format": "json"}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return data


def write_local_config(
    workdir: Path, limits: dict[str, Any], listen: dict[str, Any] | None = None
) -> tuple[Path, int, int]:
    """The example config on free ports with the local sink in ``workdir``, warnings only, and
    these ``limits`` (and ``listen`` settings) on top: the flood benchmarks' gateway. Returns
    the file, the public port and the admin port."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    port, admin = free_port(), free_port()
    data["listen"] = {"host": "127.0.0.1", "port": port, **(listen or {})}
    data["admin"] = {"host": "127.0.0.1", "port": admin}
    data["logging"] = {"level": "warning", "format": "json"}
    data["sink"]["local"]["directory"] = str(workdir / "events")
    data["limits"].update(limits)
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path, port, admin


def gateway_env(bootstrap: str, topic: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOK_GATEWAY_")}
    env.update(
        {
            "WEBHOOK_GATEWAY_SINK__KIND": "kafka",
            "WEBHOOK_GATEWAY_SINK__KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "WEBHOOK_GATEWAY_SINK__KAFKA__TOPIC": topic,
            "WEBHOOK_GATEWAY_SINK__KAFKA__DEAD_LETTER_TOPIC": f"{topic}.dead-letter",
            "WEBHOOK_GATEWAY_SINK__KAFKA__CREATE_TOPICS": "true",
        }
    )
    return env


class Service:
    """A server process we started (gateway or ceiling), stopped with SIGTERM then SIGKILL."""

    def __init__(
        self, argv: list[str], log: Path, env: Mapping[str, str] | None = None, cwd: Path = ROOT
    ) -> None:
        self.log_path = log
        self._log: IO[bytes] = log.open("wb")
        self.proc = subprocess.Popen(
            argv,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        """The serving processes: the workers of ``--workers N``, else this process itself."""
        if self.proc.poll() is not None:
            return []
        workers = [p for p in children(self.pid) if "spawn_main" in cmdline(p)]
        return workers or [self.pid]

    def all_pids(self) -> list[int]:
        if self.proc.poll() is not None:
            return []
        return [self.pid, *children(self.pid)]

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


def start_gateway(
    workdir: Path,
    name: str,
    bootstrap: str,
    topic: str,
    workers: int = 1,
    extra_env: Mapping[str, str] | None = None,
    launcher: Sequence[str] = ("-m", "gateway.cli"),
) -> tuple[Service, int, list[int]]:
    """A gateway on the Kafka sink; ``launcher`` is what runs it (bench/knockout.py wraps it)."""
    listen = free_port()
    admin = free_port(consecutive=workers)
    config = workdir / f"gateway-{name}.yaml"
    write_gateway_config(config, listen, admin)
    argv = [sys.executable, *launcher, "serve", "--config", str(config)]
    argv += ["--workers", str(workers)]
    env = {**gateway_env(bootstrap, topic), **(extra_env or {})}
    service = Service(argv, workdir / f"gateway-{name}.log", env)
    admin_ports = [admin + i for i in range(workers)]
    try:
        for port in admin_ports:
            wait_ready(port, service)
    except BaseException:
        service.stop()
        raise
    return service, listen, admin_ports


def start_ceiling(workdir: Path) -> tuple[Service, int]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.ceiling", "--port", str(port)]
    return _listening(Service(argv, workdir / "ceiling.log"), port, "ceiling")


def start_reference(workdir: Path, bootstrap: str, topic: str) -> tuple[Service, int]:
    """The hand-written verify-and-produce app (``bench/reference.py``) on its own topic."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.reference", "--port", str(port)]
    argv += ["--bootstrap", bootstrap, "--topic", topic]
    return _listening(Service(argv, workdir / "reference.log"), port, "reference", 90)


def _listening(service: Service, port: int, name: str, timeout: float = 30) -> tuple[Service, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.proc.poll() is not None:
            tail = service.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} exited with {service.proc.returncode}:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return service, port
        except OSError:
            time.sleep(0.05)
    service.stop()
    raise TimeoutError(f"{name} not listening")


def wait_ready(admin_port: int, service: Service, timeout: float = 90.0) -> None:
    def exited() -> str | None:
        if service.proc.poll() is None:
            return None
        tail = service.log_path.read_text(errors="replace")[-2000:]
        return f"gateway exited with {service.proc.returncode}:\n{tail}"

    poll_ready(admin_port, timeout, exited)


def poll_ready(admin_port: int, timeout: float, exited: Callable[[], str | None]) -> None:
    """Poll ``/readyz`` until it answers 200; ``exited()`` says why to give up early, if so."""
    url = f"http://127.0.0.1:{admin_port}/readyz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        why = exited()
        if why is not None:
            raise RuntimeError(why)
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"gateway not ready on {url}")


class RedisProcess:
    """A ``redis-server`` (Debian's package) on a free port, no persistence: the shared dedupe
    store of the ``dedupe.kind: redis`` variant."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing: make system-deps")
        self.port = free_port()
        directory = workdir / "redis"
        directory.mkdir(exist_ok=True)
        self.service = Service(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory),
             "--save", "", "--appendonly", "no"],
            directory / "redis.log",
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            if self.service.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.service.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.service.stop()
                raise TimeoutError("redis-server not answering")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def pid(self) -> list[int]:
        return [self.service.pid] if self.service.proc.poll() is None else []

    def stop(self) -> None:
        self.service.stop()
