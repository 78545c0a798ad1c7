"""deploy/docker-compose.yml, validated by Docker Compose itself, and kept consistent with the
gateway config it mounts (deploy/gateway.compose.yaml) and the monitoring files beside it.

No Docker engine is needed: `docker compose config` only loads, interpolates, validates (the
Compose Specification schema plus Compose's own consistency checks) and prints the model. The
Compose CLI is built once from its Go module (github.com/docker/compose/v5, pinned below) into
the project cache, like tools/helm/install-helm.sh does for Helm.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from adapters import build_adapter
from gateway.settings import Settings, load_settings
from tests.support import run_check_config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
GATEWAY_CONFIG = DEPLOY / "gateway.compose.yaml"
EXAMPLE_CONFIG = DEPLOY / "gateway.example.yaml"
KAFKA_POM = ROOT / "tools" / "kafka" / "pom.xml"

COMPOSE_MODULE = "github.com/docker/compose/v5"
COMPOSE_VERSION = "v5.6.0"  # its go.mod needs Go >= 1.26.8
IN_CONTAINER_CONFIG = "/etc/webhook-gateway/gateway.yaml"


def cache_root() -> Path:
    explicit = os.environ.get("WEBHOOK_GATEWAY_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "webhook-gateway"


def _reports_version(binary: Path) -> bool:
    if not binary.is_file():
        return False
    result = subprocess.run(
        [str(binary), "version", "--short"], capture_output=True, text=True, check=False
    )
    return result.returncode == 0 and result.stdout.strip() == COMPOSE_VERSION.lstrip("v")


def _go(*args: str, cwd: Path | None = None) -> str:
    go = shutil.which("go")
    if go is None:
        pytest.fail("Go is required to build the Docker Compose CLI for this test (go not on PATH)")
    # GOTOOLCHAIN=local: fail clearly rather than download another Go toolchain.
    env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
    result = subprocess.run(
        [go, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1500, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"go {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return result.stdout


def compose_binary() -> Path:
    """The pinned Docker Compose CLI, built on first use (about 1-2 minutes, cached after)."""
    home = cache_root() / f"docker-compose-{COMPOSE_VERSION}"
    binary = home / "bin" / "docker-compose"
    if _reports_version(binary):
        return binary
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; the others reuse it
        if _reports_version(binary):
            return binary
        # `go install module@version` refuses this module (its go.mod has exclude directives),
        # so build from the module's source as fetched by the Go module proxy.
        info = json.loads(_go("mod", "download", "-json", f"{COMPOSE_MODULE}@{COMPOSE_VERSION}"))
        partial = home / "bin" / "docker-compose.partial"
        partial.parent.mkdir(parents=True, exist_ok=True)
        ldflags = f"-s -w -X {COMPOSE_MODULE}/internal.Version={COMPOSE_VERSION}"
        _go(
            "build",
            "-trimpath",
            "-buildvcs=false",
            "-ldflags",
            ldflags,
            "-o",
            str(partial),
            "./cmd",
            cwd=Path(info["Dir"]),
        )
        partial.replace(binary)
    assert _reports_version(binary), f"{binary} does not report {COMPOSE_VERSION}"
    return binary


def compose(*args: str, file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess[str]:
    """Run `docker-compose -f FILE ARGS` in a clean environment (no host overrides)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(Path.home())}
    return subprocess.run(
        [str(compose_binary()), "--project-directory", str(file.parent), "-f", str(file), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    """The project as Compose resolves it: interpolated, normalized, paths made absolute."""
    result = compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


@pytest.fixture(scope="module")
def services(model: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = model["services"]
    return found


def seconds(duration: str) -> float:
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration):
        total += float(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def mounts(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {volume["target"]: volume for volume in service.get("volumes", [])}


@pytest.fixture
def compose_env(services: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The gateway container's environment, applied to this process (nothing else leaks in)."""
    for name in list(os.environ):
        if name.startswith("WEBHOOK_GATEWAY_"):
            monkeypatch.delenv(name)
    env: dict[str, str] = services["gateway"].get("environment") or {}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def compose_settings(compose_env: dict[str, str]) -> Settings:
    return load_settings(GATEWAY_CONFIG)


# --- the real validator -------------------------------------------------------------------------


def test_compose_validates_the_file() -> None:
    result = compose("config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_an_invalid_file(tmp_path: Path) -> None:
    """The validator is not a rubber stamp: a misspelt key and a dangling depends_on fail."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    typo = tmp_path / "typo.yml"
    typo.write_text(text.replace("stop_grace_period:", "stop_grace_periode:"), encoding="utf-8")
    result = compose("config", "--quiet", file=typo)
    assert result.returncode != 0
    assert "stop_grace_periode" in result.stderr
    dangling = tmp_path / "dangling.yml"
    depends = "      kafka:\n        condition:"
    dangling.write_text(text.replace(depends, depends.replace("kafka", "kafkaa")), encoding="utf-8")
    result = compose("config", "--quiet", file=dangling)
    assert result.returncode != 0
    assert "kafkaa" in result.stderr


# --- Kafka ---------------------------------------------------------------------------------------


def test_kafka_is_the_test_suites_version(services: dict[str, Any]) -> None:
    match = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", KAFKA_POM.read_text())
    assert match, f"no kafka.version in {KAFKA_POM}"
    assert services["kafka"]["image"] == f"apache/kafka:{match.group(1)}"


def kafka_listeners(env: dict[str, str], key: str) -> dict[str, str]:
    """{listener name: host:port} from KAFKA_LISTENERS / KAFKA_ADVERTISED_LISTENERS."""
    found = {}
    for item in env[key].split(","):
        name, _, address = item.partition("://")
        found[name] = address
    return found


def test_kafka_is_a_single_kraft_node(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    env: dict[str, str] = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    node_id = env["KAFKA_NODE_ID"]
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    listeners = kafka_listeners(env, "KAFKA_LISTENERS")
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listeners) == set(protocols)
    controller_port = listeners[controller].rsplit(":", 1)[1]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node_id}@kafka:{controller_port}"
    advertised = kafka_listeners(env, "KAFKA_ADVERTISED_LISTENERS")
    assert controller not in advertised
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", key
    assert kafka["hostname"] == "kafka"
    check = kafka["healthcheck"]["test"]
    assert check[0] == "CMD"
    assert "--bootstrap-server" in check


def internal_bootstrap(services: dict[str, Any]) -> str:
    """The advertised address of the listener other containers use (host `kafka`)."""
    env = services["kafka"]["environment"]
    inside = [
        a
        for a in kafka_listeners(env, "KAFKA_ADVERTISED_LISTENERS").values()
        if a.startswith("kafka:")
    ]
    assert len(inside) == 1, inside
    return inside[0]


# --- the gateway service and its config --------------------------------------------------------


def test_gateway_is_built_from_the_dockerfile(services: dict[str, Any]) -> None:
    gateway = services["gateway"]
    build = gateway["build"]
    assert Path(build["context"]) == ROOT
    assert (Path(build["context"]) / build["dockerfile"]) == DEPLOY / "Dockerfile"
    assert gateway["depends_on"]["kafka"]["condition"] == "service_healthy"
    config = mounts(gateway)[IN_CONTAINER_CONFIG]
    assert Path(config["source"]) == GATEWAY_CONFIG
    assert config.get("read_only") is True
    assert gateway.get("read_only") is True
    assert "ALL" in gateway.get("cap_drop", [])
    assert "/var/lib/webhook-gateway" in mounts(gateway)  # the image's volume: local sink


def test_gateway_config_loads_with_the_compose_environment(
    compose_settings: Settings, compose_env: dict[str, str]
) -> None:
    specs = compose_settings.source_specs()  # resolves every env: secret
    for spec in specs.values():
        build_adapter(spec)  # what check-config does: options and key encodings are valid
    providers = {spec.provider for spec in specs.values()}
    assert providers == {
        "fal",
        "replicate",
        "openai",
        "abstrakt",
        "instantapi",
        "standard-webhooks",
        "generic",
    }
    referenced = {s.env for src in compose_settings.sources.values() for s in src.secrets if s.env}
    assert referenced == set(compose_env), "every secret env var set once, and used"
    for src in compose_settings.sources.values():
        assert all(s.value is None for s in src.secrets), "secrets come from the environment"


def test_check_config_accepts_the_compose_config(compose_env: dict[str, str]) -> None:
    """The real CLI entry point, in a clean environment holding only what compose sets."""
    result = run_check_config(GATEWAY_CONFIG, compose_env)
    assert result.returncode == 0, result.stderr
    assert "sink kafka" in result.stdout


def test_gateway_publishes_to_the_compose_kafka(
    compose_settings: Settings, services: dict[str, Any]
) -> None:
    sink = compose_settings.sink
    assert sink.kind == "kafka"
    assert sink.kafka.bootstrap_servers == internal_bootstrap(services)
    assert sink.kafka.replication_factor == 1  # a single broker
    assert str(sink.local.directory).startswith("/var/lib/webhook-gateway")


def test_published_ports_are_the_configured_ones(
    compose_settings: Settings, services: dict[str, Any]
) -> None:
    ports = services["gateway"]["ports"]
    targets = {p["target"] for p in ports}
    assert targets == {compose_settings.listen.port, compose_settings.admin.port}
    assert all(str(p["published"]) == str(p["target"]) for p in ports)
    # Reachable from the other containers and through the published ports.
    assert compose_settings.listen.host == compose_settings.admin.host == "0.0.0.0"


def test_stop_grace_period_covers_the_shutdown_grace(
    compose_settings: Settings, services: dict[str, Any]
) -> None:
    limits = compose_settings.limits
    stop = seconds(services["gateway"]["stop_grace_period"])
    assert stop > limits.drain_delay_seconds + limits.shutdown_grace_seconds


def test_default_secrets_are_the_example_configs(compose_env: dict[str, str]) -> None:
    """So `webhook-gateway send SOURCE` from the host (example config) is accepted."""
    example = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    config = yaml.safe_load(GATEWAY_CONFIG.read_text(encoding="utf-8"))
    assert set(config["sources"]) == set(example["sources"])
    for name, source in config["sources"].items():
        example_source = example["sources"][name]
        assert source["provider"] == example_source["provider"]
        example_values = {s["id"]: s["value"] for s in example_source.get("secrets", [])}
        ours = {s["id"]: compose_env[s["env"]] for s in source.get("secrets", [])}
        assert ours == example_values, name
        assert source.get("public_keys", []) == example_source.get("public_keys", [])


# --- Prometheus and Grafana ----------------------------------------------------------------------


def test_prometheus_mounts_its_config_and_scrapes_the_gateway(
    compose_settings: Settings, services: dict[str, Any]
) -> None:
    prometheus = services["prometheus"]
    config_dir = mounts(prometheus)["/etc/prometheus"]
    assert Path(config_dir["source"]) == DEPLOY / "prometheus"
    for name in ("prometheus.yml", "alerts.yml"):
        assert (DEPLOY / "prometheus" / name).is_file(), name
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = {
        target
        for job in scrape["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert f"gateway:{compose_settings.admin.port}" in targets
    assert "gateway" in services
    rule_files = scrape.get("rule_files", [])
    assert all((DEPLOY / "prometheus" / rule).is_file() for rule in rule_files), rule_files


def test_grafana_is_provisioned_with_the_dashboards(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    volumes = mounts(grafana)
    provisioning = DEPLOY / "grafana" / "provisioning"
    dashboards = DEPLOY / "grafana" / "dashboards"
    assert Path(volumes["/etc/grafana/provisioning"]["source"]) == provisioning
    assert Path(volumes["/var/lib/grafana/dashboards"]["source"]) == dashboards
    assert provisioning.is_dir()
    assert list(dashboards.glob("*.json"))
    assert {p["target"] for p in grafana["ports"]} == {3000}
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert (dashboards / Path(home).relative_to("/var/lib/grafana/dashboards")).is_file()
    # The provisioned datasource points at the compose service, the providers at the mount.
    prometheus_port = {p["target"] for p in services["prometheus"]["ports"]}
    urls = set()
    for path in (provisioning / "datasources").glob("*.y*ml"):
        for source in yaml.safe_load(path.read_text(encoding="utf-8")).get("datasources", []):
            urls.add(source.get("url"))
    assert urls
    assert urls <= {f"http://prometheus:{port}" for port in prometheus_port}
    for path in (provisioning / "dashboards").glob("*.y*ml"):
        for provider in yaml.safe_load(path.read_text(encoding="utf-8")).get("providers", []):
            assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


# --- Redis ---------------------------------------------------------------------------------------


def test_redis_is_the_gateways_shared_dedupe_store(
    compose_settings: Settings, services: dict[str, Any]
) -> None:
    redis = services["redis"]
    assert re.fullmatch(r"redis:7\.\d+\.\d+-alpine", redis["image"])
    assert redis["hostname"] == "redis"
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["gateway"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/data" in mounts(redis)  # the append-only file survives `docker compose restart`
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "volatile-lru"
    dedupe = compose_settings.dedupe
    assert dedupe.kind == "redis"
    assert dedupe.redis is not None
    assert dedupe.redis.url is not None
    url = urlsplit(dedupe.redis.url.resolve(allow_inline=compose_settings.development))
    assert (url.scheme, url.hostname, url.port or 6379) == ("redis", "redis", 6379)
    assert "ports" not in redis  # only the gateway talks to it
