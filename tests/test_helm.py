"""The Helm chart (helm/webhook-gateway), with a real Helm and offline Kubernetes schemas.

Helm is built once from its Go module by tools/helm/install-helm.sh (pinned; a couple of
minutes the first time, cached after). Every rendered manifest is validated against the
Kubernetes OpenAPI schemas bundled in the `kubernetes-validate` package (strict: unknown fields
fail), for the oldest and the newest Kubernetes the chart supports; the Prometheus Operator
resources are checked structurally and their rules with promtool. The rendered gateway config
goes through `webhook-gateway check-config` with the environment the Deployment would give it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from prometheus_client import CollectorRegistry

from adapters import ADAPTERS
from gateway.metrics import Metrics
from gateway.settings import LimitsConfig
from tests.support import run_check_config

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "webhook-gateway"
INSTALL_HELM = ROOT / "tools" / "helm" / "install-helm.sh"
RELEASE = "gw"
NAMESPACE = "webhooks"
FULLNAME = f"{RELEASE}-webhook-gateway"

#: The default values have no source (Helm would merge a default one into yours), so rendering
#: them needs one; `helm lint` passes on the defaults alone.
ONE_SOURCE = (
    'sources={"replicate":{"provider":"replicate",'
    '"secrets":[{"id":"primary","secretRef":{"name":"replicate-webhook","key":"secret"}}]}}'
)
CASES: dict[str, list[str]] = {
    "default": ["--set-json", ONE_SOURCE],
    "minimal": ["-f", str(CHART / "ci" / "minimal-values.yaml")],
    "production": ["-f", str(CHART / "ci" / "production-values.yaml")],
}
CRD_GROUP = "monitoring.coreos.com/v1"

Manifest = dict[str, Any]


# --- helm ----------------------------------------------------------------------------------------


def install_helm() -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HELM_VERSION"}  # the pinned version
    return subprocess.run(
        ["bash", str(INSTALL_HELM)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


_helm_home: list[Path] = []  # set by the helm fixture: a scratch HOME for Helm


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _helm_home.append(tmp_path_factory.mktemp("helm-home"))
    result = install_helm()
    if result.returncode != 0:
        pytest.fail(f"{INSTALL_HELM} failed:\n{result.stderr[-4000:]}")
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.is_file(), path
    return path


def test_install_helm_reuses_the_built_binary(helm: Path) -> None:
    again = install_helm()
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1] == str(helm)
    assert "building" not in again.stderr
    pinned = re.search(r'PINNED_HELM_VERSION="(v3\.[^"]+)"', INSTALL_HELM.read_text())
    assert pinned
    assert run_helm(helm, "version", "--template", "{{.Version}}").stdout == pinned[1]


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A scratch HOME/XDG: no user repositories, plugins or registry logins take part.
    assert _helm_home, "use the helm fixture"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(_helm_home[-1])}
    env["HELM_CACHE_HOME"] = env["HELM_CONFIG_HOME"] = env["HELM_DATA_HOME"] = env["HOME"]
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def template(helm: Path, *args: str) -> list[Manifest]:
    result = run_helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered(helm: Path) -> dict[str, list[Manifest]]:
    return {case: template(helm, *args) for case, args in CASES.items()}


def only(manifests: Sequence[Manifest], kind: str, name: str = FULLNAME) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def kinds(manifests: Sequence[Manifest]) -> set[str]:
    return {m["kind"] for m in manifests}


def pod_spec(manifests: Sequence[Manifest]) -> dict[str, Any]:
    spec: dict[str, Any] = only(manifests, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(manifests: Sequence[Manifest]) -> dict[str, Any]:
    (gateway,) = pod_spec(manifests)["containers"]
    assert isinstance(gateway, dict)
    return gateway


def gateway_config(manifests: Sequence[Manifest]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(only(manifests, "ConfigMap")["data"]["gateway.yaml"])
    return config


# --- lint and the values schema -----------------------------------------------------------------


def test_lint_default_values(helm: Path) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", CASES)
def test_lint(helm: Path, case: str) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), *CASES[case])
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendering_without_a_source_says_what_is_missing(helm: Path) -> None:
    result = run_helm(helm, "template", RELEASE, str(CHART))
    assert result.returncode != 0
    assert "configure at least one webhook source" in result.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--set", "replicaCont=2"], "replicaCont"),
        (["--set", "kafka.topik=x"], "topik"),
        (["--set", "gateway.limits.shutdownGrace=5"], "shutdownGrace"),
        (["--set", "sources.replicate.secrets[0].value=whsec_inline"], "value"),
        (["--set", "sources.replicate.provider=replicat"], "replicat"),
        (["--set", "sources.replicate.secrets[0].secretRef.name=Not_A_Name"], "Not_A_Name"),
        (["--set", "podDisruptionBudget.minAvailable=lots"], "minAvailable"),
        (["--set", "gateway.limits.failureBudgetPerSecond=0"], "failureBudgetPerSecond"),
        (["--set", "gateway.limits.failureBudgetBurst=-1"], "failureBudgetBurst"),
        (["--set", "gateway.limits.maxConnections=0"], "maxConnections"),
    ],
)
def test_values_schema_refuses(helm: Path, args: list[str], complaint: str) -> None:
    base = CASES["minimal"]
    rendered = run_helm(helm, "template", RELEASE, str(CHART), *base, *args)
    assert rendered.returncode != 0
    assert complaint in rendered.stderr, rendered.stderr
    linted = run_helm(helm, "lint", str(CHART), *base, *args)
    assert linted.returncode != 0, linted.stdout


def test_secret_env_names_must_not_collide(helm: Path) -> None:
    collide = (
        'sources={"a-b":{"provider":"openai","secrets":[{"id":"x","secretRef":{"name":"s","key":"k"}}]},'
        '"a_b":{"provider":"openai","secrets":[{"id":"x","secretRef":{"name":"s","key":"l"}}]}}'
    )
    result = run_helm(helm, "template", RELEASE, str(CHART), "--set-json", collide)
    assert result.returncode != 0
    assert "WEBHOOK_SECRET_A_B__X" in result.stderr


def test_options_cannot_override_source_keys(helm: Path) -> None:
    result = run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        *CASES["minimal"],
        "--set",
        "sources.replicate.options.provider=openai",
    )
    assert result.returncode != 0
    assert "options.provider" in result.stderr


# --- Kubernetes schemas -------------------------------------------------------------------------


def supported_kubernetes_versions() -> list[str]:
    """The chart's minimum (Chart.yaml kubeVersion) and the newest the schemas know."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    match = re.match(r">=\s*(\d+\.\d+)", chart["kubeVersion"])
    assert match, chart["kubeVersion"]
    return [f"{match.group(1)}.0", kubernetes_validate.latest_version()]


@pytest.mark.parametrize("case", CASES)
def test_manifests_match_the_kubernetes_schemas(
    rendered: dict[str, list[Manifest]], case: str
) -> None:
    errors = []
    checked = 0
    for manifest in rendered[case]:
        if manifest["apiVersion"] == CRD_GROUP:
            continue  # not in the Kubernetes schemas: see test_prometheus_operator_resources
        for version in supported_kubernetes_versions():
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                errors.append(f"{manifest['kind']} (k8s {version}) {where}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                errors.append(exc.message)
            checked += 1
    assert not errors, "\n".join(errors)
    assert checked >= 2 * 4  # at least the ConfigMap, the Deployment and both Services


def test_the_validator_catches_a_misspelt_field(rendered: dict[str, list[Manifest]]) -> None:
    deployment = only(rendered["minimal"], "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFs"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_which_resources_each_case_renders(rendered: dict[str, list[Manifest]]) -> None:
    always = {"ConfigMap", "Deployment", "Service"}
    assert kinds(rendered["minimal"]) == always
    assert kinds(rendered["default"]) == always | {"ServiceAccount", "Pod"}  # Pod: helm test
    assert kinds(rendered["production"]) == always | {
        "ServiceAccount",
        "Pod",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PrometheusRule",
        "NetworkPolicy",
    }
    for manifests in rendered.values():
        assert "Secret" not in kinds(manifests)  # secrets are referenced, never rendered


# --- the gateway config and its secrets ---------------------------------------------------------


def fake_secret(name: str) -> str:
    """A value valid for every provider (whsec_ + base64), derived from the variable's name."""
    return "whsec_" + base64.b64encode(hashlib.sha256(name.encode()).digest()).decode()


def container_env(manifests: Sequence[Manifest]) -> dict[str, str]:
    """The container's environment, secretKeyRef-backed variables filled with fake values."""
    env: dict[str, str] = {}
    for entry in container(manifests).get("env", []):
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
        else:
            assert set(entry["valueFrom"]) == {"secretKeyRef"}, entry
            env[entry["name"]] = fake_secret(entry["name"])
    return env


def check_config(config: dict[str, Any], env: dict[str, str], tmp_path: Path) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = run_check_config(path, env)
    return "" if result.returncode == 0 else f"exit {result.returncode}: {result.stderr}"


@pytest.mark.parametrize("case", CASES)
def test_rendered_config_passes_check_config(
    rendered: dict[str, list[Manifest]], case: str, tmp_path: Path
) -> None:
    manifests = rendered[case]
    config = gateway_config(manifests)
    env = container_env(manifests)
    assert config["mode"] == "production"
    failure = check_config(config, env, tmp_path)
    assert not failure, failure


@pytest.mark.parametrize("case", CASES)
def test_every_secret_is_an_env_reference_to_an_existing_secret(
    rendered: dict[str, list[Manifest]], case: str
) -> None:
    manifests = rendered[case]
    config = gateway_config(manifests)
    from_secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container(manifests).get("env", [])
        if "valueFrom" in e
    }
    referenced = set()
    for name, source in config["sources"].items():
        for secret in source.get("secrets", []):
            assert set(secret) == {"id", "env"}, f"{name}: {secret}"
            assert not secret["env"].startswith("WEBHOOK_GATEWAY_"), secret["env"]
            referenced.add(secret["env"])
        poll = source.get("reconcile")
        if poll is not None:
            assert set(poll["api_key"]) == {"id", "env"}
            referenced.add(poll["api_key"]["env"])
    token = config.get("reconcile", {}).get("admin_token")
    if token is not None:
        referenced.add(token["env"])
    kafka = config["sink"]["kafka"]
    if "sasl_password" in kafka:
        referenced.add(kafka["sasl_password"]["env"])
    redis = config["dedupe"].get("redis", {})
    for ref in (redis.get("password"), redis.get("sentinel", {}).get("password")):
        if ref is not None:
            assert set(ref) == {"id", "env"}
            referenced.add(ref["env"])
    assert referenced == set(from_secrets)
    for ref in from_secrets.values():
        assert ref["name"]
        assert ref["key"]
        assert not ref.get("optional", False)


def test_rotation_renders_both_secrets(rendered: dict[str, list[Manifest]]) -> None:
    replicate = gateway_config(rendered["production"])["sources"]["replicate"]
    assert [s["id"] for s in replicate["secrets"]] == ["2026-11", "2026-05"]
    assert replicate["topic"] == "ai.replicate.jobs"


def test_config_sink_is_kafka_from_values(rendered: dict[str, list[Manifest]]) -> None:
    config = gateway_config(rendered["production"])
    values = yaml.safe_load((CHART / "ci" / "production-values.yaml").read_text(encoding="utf-8"))
    kafka = config["sink"]["kafka"]
    assert config["sink"]["kind"] == "kafka"
    assert kafka["bootstrap_servers"] == values["kafka"]["bootstrapServers"]
    assert kafka["security_protocol"] == "SASL_SSL"
    assert kafka["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["logging"]["format"] == "json"


def test_dedupe_is_in_memory_by_default(rendered: dict[str, list[Manifest]]) -> None:
    dedupe = gateway_config(rendered["default"])["dedupe"]
    assert dedupe == {
        "kind": "memory",
        "max_entries": 200000,
        "ttl_seconds": 3600,
        "on_store_error": "publish",
    }
    assert not [e for e in container(rendered["default"])["env"] if "REDIS" in e["name"]]


def test_production_dedupe_is_redis_from_values(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["production"]
    redis = gateway_config(manifests)["dedupe"]["redis"]
    env = {e["name"]: e for e in container(manifests)["env"]}
    assert redis["topology"] == "standalone"
    assert env[redis["url"]["env"]]["value"] == "rediss://redis-master.data.svc:6380/0"
    assert env[redis["password"]["env"]]["valueFrom"]["secretKeyRef"] == {
        "name": "webhook-gateway-redis",
        "key": "password",
    }
    assert redis["tls"] == {"enabled": True}
    assert redis["key_prefix"] == f"{NAMESPACE}.{FULLNAME}"  # one per deployment


def test_dedupe_through_sentinel(helm: Path, tmp_path: Path) -> None:
    sentinel = (
        'gateway.dedupe={"kind":"redis","onStoreError":"reject","redis":{"keyPrefix":"eu1",'
        '"sentinel":{"hosts":["s-0.sentinel:26379","s-1.sentinel:26379"],"serviceName":"dedupe",'
        '"passwordSecretRef":{"name":"sentinel","key":"password"}},'
        '"urlSecretRef":{"name":"","key":""}}}'
    )
    manifests = template(helm, *CASES["minimal"], "--set-json", sentinel)
    config = gateway_config(manifests)
    redis = config["dedupe"]["redis"]
    assert config["dedupe"]["on_store_error"] == "reject"
    assert redis["topology"] == "sentinel"
    assert redis["key_prefix"] == "eu1"
    assert redis["sentinel"]["hosts"] == ["s-0.sentinel:26379", "s-1.sentinel:26379"]
    assert "url" not in redis
    password_env = redis["sentinel"]["password"]["env"]
    [entry] = [e for e in container(manifests)["env"] if e["name"] == password_env]
    assert entry["valueFrom"]["secretKeyRef"] == {"name": "sentinel", "key": "password"}
    failure = check_config(config, container_env(manifests), tmp_path)
    assert not failure, failure


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--set", "gateway.dedupe.kind=redis"], "set gateway.dedupe.redis.url"),
        (
            [
                "--set",
                "gateway.dedupe.kind=redis",
                "--set",
                "gateway.dedupe.redis.url=redis://r:1",
                "--set",
                "gateway.dedupe.redis.sentinel.hosts[0]=s:26379",
            ],
            "not both",
        ),
        (["--set", "gateway.dedupe.onStoreError=drop"], "onStoreError"),
        (["--set", "gateway.dedupe.redis.url=http://r:1"], "url"),
    ],
)
def test_dedupe_values_are_checked(helm: Path, args: list[str], complaint: str) -> None:
    result = run_helm(helm, "template", RELEASE, str(CHART), *CASES["minimal"], *args)
    assert result.returncode != 0
    assert complaint in result.stderr, result.stderr


def checksum(manifests: Sequence[Manifest]) -> str:
    annotations = only(manifests, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    value = annotations["checksum/config"]
    assert re.fullmatch(r"[0-9a-f]{64}", value)
    return str(value)


def test_config_checksum_rolls_pods_when_a_source_changes(
    helm: Path, rendered: dict[str, list[Manifest]]
) -> None:
    base = checksum(rendered["minimal"])
    minimal = CASES["minimal"]
    added_secret = template(
        helm,
        *minimal,
        "--set",
        "sources.replicate.secrets[1].id=next",
        "--set",
        "sources.replicate.secrets[0].secretRef.name=replicate-webhook",
        "--set",
        "sources.replicate.secrets[0].secretRef.key=secret",
        "--set",
        "sources.replicate.secrets[0].id=primary",
        "--set",
        "sources.replicate.secrets[1].secretRef.name=replicate-webhook",
        "--set",
        "sources.replicate.secrets[1].secretRef.key=next",
    )
    new_topic = template(helm, *minimal, "--set", "sources.replicate.topic=elsewhere")
    more_replicas = template(helm, *minimal, "--set", "replicaCount=3")
    assert checksum(added_secret) != base
    assert checksum(new_topic) != base
    assert checksum(more_replicas) == base  # only the config rolls pods, not the replica count


def test_notes_list_endpoints_and_the_secrets_to_create(helm: Path, tmp_path: Path) -> None:
    """NOTES.txt, rendered through `tpl` in a copy of the chart (`helm template` skips it)."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "notes.txt")
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data:\n  notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}\n',
        encoding="utf-8",
    )
    result = run_helm(
        helm,
        "template",
        RELEASE,
        str(chart),
        "--namespace",
        NAMESPACE,
        *CASES["production"],
        "--show-only",
        "templates/zz-notes.yaml",
    )
    assert result.returncode == 0, result.stderr
    notes: str = yaml.safe_load(result.stdout)["data"]["notes"]
    for name in gateway_config(template(helm, *CASES["production"]))["sources"]:
        assert f"/webhooks/{name} " in notes
    creates = [line.split() for line in notes.splitlines() if "create secret generic" in line]
    names = [words[words.index("generic") + 1] for words in creates]
    assert sorted(names) == sorted(set(names))  # one command per Secret, every key in it
    assert {
        "replicate-webhook",
        "openai-webhook",
        "abstrakt-webhook",
        "instantapi-webhook",
        "acme-webhook",
        "kafka-webhook-gateway",
    } == set(names)
    replicate = next(words for words in creates if "replicate-webhook" in words)
    assert any(w.startswith("--from-literal=secret-2026-11=") for w in replicate)
    assert any(w.startswith("--from-literal=secret-2026-05=") for w in replicate)
    assert "deduplicate by event_id" in notes


# --- the pod -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_termination_grace_covers_drain_and_shutdown(
    rendered: dict[str, list[Manifest]], case: str
) -> None:
    manifests = rendered[case]
    limits = gateway_config(manifests)["limits"]
    drain, grace = limits["drain_delay_seconds"], limits["shutdown_grace_seconds"]
    assert drain > 0  # Kubernetes needs a moment to take the pod out of the endpoints
    period = pod_spec(manifests)["terminationGracePeriodSeconds"]
    assert period > drain + grace
    assert period == math.ceil(drain + grace) + 10
    assert "lifecycle" not in container(manifests)  # the gateway drains itself: no preStop


def test_production_grace_follows_values(rendered: dict[str, list[Manifest]]) -> None:
    limits = gateway_config(rendered["production"])["limits"]
    assert limits["shutdown_grace_seconds"] == 25
    assert limits["drain_delay_seconds"] == 5
    assert pod_spec(rendered["production"])["terminationGracePeriodSeconds"] == 5 + 25 + 10


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def test_every_limit_is_a_chart_value(rendered: dict[str, list[Manifest]]) -> None:
    """Each ``limits.*`` setting has a value, a schema entry and a line in the ConfigMap, so a
    new one cannot be left out of the chart unnoticed."""
    fields = set(LimitsConfig.model_fields)
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    in_values = set(values["gateway"]["limits"])
    assert in_values == {camel(f) for f in fields}
    assert set(schema["properties"]["gateway"]["properties"]["limits"]["properties"]) == in_values
    for manifests in rendered.values():
        assert set(gateway_config(manifests)["limits"]) == fields


def test_the_failure_budget_and_connection_cap_follow_values(
    rendered: dict[str, list[Manifest]],
) -> None:
    defaults = LimitsConfig()
    limits = gateway_config(rendered["default"])["limits"]
    assert limits["failure_budget_burst"] == defaults.failure_budget_burst
    assert limits["failure_budget_per_second"] == defaults.failure_budget_per_second
    assert limits["failure_budget_max_clients"] == defaults.failure_budget_max_clients
    assert limits["max_connections"] is None  # max_in_flight + the listen backlog
    production = gateway_config(rendered["production"])["limits"]
    assert production["max_connections"] == 4000
    assert production["failure_budget_burst"] == 40
    assert production["failure_budget_per_second"] == 0.5
    assert production["failure_budget_max_clients"] == defaults.failure_budget_max_clients


@pytest.mark.parametrize("case", CASES)
def test_security_context(rendered: dict[str, list[Manifest]], case: str) -> None:
    manifests = rendered[case]
    pod = pod_spec(manifests)["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == 10001
    assert pod["fsGroup"] == 10001
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    ctx = container(manifests)["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert ctx["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod_spec(manifests)["automountServiceAccountToken"] is False


@pytest.mark.parametrize("case", CASES)
def test_writable_paths_are_empty_dirs(rendered: dict[str, list[Manifest]], case: str) -> None:
    manifests = rendered[case]
    config = gateway_config(manifests)
    volumes = {v["name"]: v for v in pod_spec(manifests)["volumes"]}
    mounts = {m["mountPath"]: m for m in container(manifests)["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    data = mounts["/var/lib/webhook-gateway"]
    assert "emptyDir" in volumes[data["name"]]
    assert config["sink"]["local"]["directory"].startswith("/var/lib/webhook-gateway/")
    config_mount = mounts["/etc/webhook-gateway"]
    assert config_mount["readOnly"] is True
    assert volumes[config_mount["name"]]["configMap"]["name"] == FULLNAME
    assert container(manifests)["args"] == [
        "serve",
        "--config",
        "/etc/webhook-gateway/gateway.yaml",
    ]


@pytest.mark.parametrize("case", CASES)
def test_probes_and_ports(rendered: dict[str, list[Manifest]], case: str) -> None:
    manifests = rendered[case]
    config = gateway_config(manifests)
    gateway = container(manifests)
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    assert ports == {"http": config["listen"]["port"], "metrics": config["admin"]["port"]}
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert gateway["startupProbe"]["httpGet"]["port"] == "metrics"
    assert gateway["resources"]["requests"]["cpu"]  # the HPA needs a CPU request
    assert gateway["resources"]["limits"]["memory"]


@pytest.mark.parametrize("case", CASES)
def test_services(rendered: dict[str, list[Manifest]], case: str) -> None:
    manifests = rendered[case]
    public = only(manifests, "Service")["spec"]
    admin = only(manifests, "Service", f"{FULLNAME}-admin")["spec"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in public["ports"]] == [
        ("http", 80, "http")
    ]
    assert [(p["name"], p["port"], p["targetPort"]) for p in admin["ports"]] == [
        ("metrics", 9102, "metrics")
    ]
    pod_labels = only(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    for selector in (public["selector"], admin["selector"]):
        assert selector.items() <= pod_labels.items()


def test_topology_spread(rendered: dict[str, list[Manifest]]) -> None:
    spread = pod_spec(rendered["default"])["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    selector = only(rendered["default"], "Deployment")["spec"]["selector"]["matchLabels"]
    assert all(c["labelSelector"]["matchLabels"] == selector for c in spread)
    assert "topologySpreadConstraints" not in pod_spec(rendered["minimal"])


# --- the optional resources (production) ---------------------------------------------------------


def test_hpa_owns_the_replica_count(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["production"]
    assert "replicas" not in only(manifests, "Deployment")["spec"]
    hpa = only(manifests, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": FULLNAME,
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert only(rendered["minimal"], "Deployment")["spec"]["replicas"] == 1


def test_pdb_and_ingress(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["production"]
    pdb = only(manifests, "PodDisruptionBudget")["spec"]
    assert pdb == {
        "minAvailable": 2,
        "selector": only(manifests, "Deployment")["spec"]["selector"],
    }
    ingress = only(manifests, "Ingress")["spec"]
    assert ingress["tls"] == [
        {"secretName": "webhooks-example-com-tls", "hosts": ["webhooks.example.com"]}
    ]
    (rule,) = ingress["rules"]
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/webhooks"  # the admin endpoints are never routed
    assert path["backend"]["service"] == {"name": FULLNAME, "port": {"name": "http"}}


def test_network_policy_uses_the_pods_ports(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["production"]
    policy = only(manifests, "NetworkPolicy")["spec"]
    names = {p["name"] for p in container(manifests)["ports"]}
    ingress_ports = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
    assert ingress_ports == names
    assert (
        policy["podSelector"]["matchLabels"]
        == (only(manifests, "Deployment")["spec"]["selector"]["matchLabels"])
    )
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    dns = policy["egress"][0]["ports"]
    assert {(p["port"], p["protocol"]) for p in dns} == {(53, "UDP"), (53, "TCP")}


def ingress_rules_by_port(policy: Manifest) -> dict[str, list[Any]]:
    """Port name -> the ``from`` peers allowed to reach it (``[None]``: from anywhere)."""
    rules: dict[str, list[Any]] = {}
    for rule in policy["spec"]["ingress"]:
        for port in rule["ports"]:
            rules.setdefault(port["port"], []).append(rule.get("from"))
    return rules


def test_admin_port_exposure_matches_the_threat_model(
    helm: Path, rendered: dict[str, list[Manifest]]
) -> None:
    """THREAT_MODEL.md: the admin port is a ClusterIP service, never routed by the Ingress, and
    with the NetworkPolicy on it is reachable only from metricsFrom, else this namespace."""
    for manifests in rendered.values():
        admin = only(manifests, "Service", f"{FULLNAME}-admin")["spec"]
        assert admin["type"] == "ClusterIP"
    ingress = only(rendered["production"], "Ingress")["spec"]
    backends = {
        p["backend"]["service"]["port"]["name"]
        for rule in ingress["rules"]
        for p in rule["http"]["paths"]
    }
    assert backends == {"http"}

    production = ingress_rules_by_port(only(rendered["production"], "NetworkPolicy"))
    assert production["metrics"] == [
        [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    ]
    assert None not in production["metrics"]

    default = template(helm, *CASES["default"], "--set", "networkPolicy.enabled=true")
    rules = ingress_rules_by_port(only(default, "NetworkPolicy"))
    assert rules["metrics"] == [[{"podSelector": {}}]]  # this namespace, not everyone
    assert rules["http"] == [None]  # webhooks: from anywhere unless webhookFrom says otherwise
    assert set(rules) == {"http", "metrics"}


def metric_names() -> set[str]:
    """Every series name the gateway exposes (and Prometheus' own `up`)."""
    registry = Metrics(CollectorRegistry()).registry
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names = {"up"}
    for family in registry.collect():
        names.update(family.name + suffix for suffix in suffixes[family.type])
    return names


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: `make system-deps` installs Debian's prometheus")
    return found


def test_prometheus_operator_resources(rendered: dict[str, list[Manifest]], tmp_path: Path) -> None:
    manifests = rendered["production"]
    admin = only(manifests, "Service", f"{FULLNAME}-admin")
    public = only(manifests, "Service")

    monitor = only(manifests, "ServiceMonitor")
    assert monitor["apiVersion"] == CRD_GROUP
    assert set(monitor["spec"]) <= {"selector", "namespaceSelector", "endpoints", "jobLabel"}
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= admin["metadata"]["labels"].items()
    assert not selector.items() <= public["metadata"]["labels"].items()  # metrics port only
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in admin["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert re.fullmatch(r"\d+[smh]", endpoint["interval"])

    rule = only(manifests, "PrometheusRule")
    assert rule["apiVersion"] == CRD_GROUP
    assert set(rule["spec"]) == {"groups"}
    known = metric_names()
    job = f'job="{admin["metadata"]["name"]}"'  # the job the operator gives the scrape
    values = yaml.safe_load((CHART / "ci" / "production-values.yaml").read_text(encoding="utf-8"))
    extra = {r["alert"] for r in values["prometheusRule"]["extraRules"]}
    for group in rule["spec"]["groups"]:
        assert set(group) <= {"name", "interval", "rules"}
        assert group["rules"]
        for item in group["rules"]:
            assert set(item) <= {"alert", "record", "expr", "for", "labels", "annotations"}
            assert ("alert" in item) != ("record" in item)
            assert item["expr"]
            used = set(re.findall(r"\b(webhook_gateway_[a-z_]+|up)\b(?=\{|\[|\))", item["expr"]))
            assert used <= known, f"{item.get('alert')}: unknown series {used - known}"
            if item.get("alert") not in extra:  # the chart's own rules watch this release
                assert job in item["expr"]
                assert f'namespace="{NAMESPACE}"' in item["expr"]
                assert item["labels"]["severity"] in {"critical", "warning"}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rule["spec"]), encoding="utf-8")
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_chart_provider_names_match_the_registry() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    assert schema["definitions"]["source"]["properties"]["provider"]["enum"] == sorted(ADAPTERS)


def test_allowlists_and_trusted_proxies_reach_the_config(helm: Path) -> None:
    values = (
        'sources={"stripe":{"provider":"github",'
        '"secrets":[{"id":"a","secretRef":{"name":"gh","key":"k"}}],'
        '"allowedIps":["192.30.252.0/22","2606:50c0::/32"],'
        '"publicUrl":"https://hooks.example.com/webhooks/stripe"}},'
        'gateway={"trustedProxies":["10.0.0.0/8"]}'
    )
    config = gateway_config(template(helm, "--set-json", values))
    source = config["sources"]["stripe"]
    assert source["allowed_ips"] == ["192.30.252.0/22", "2606:50c0::/32"]
    assert source["public_url"] == "https://hooks.example.com/webhooks/stripe"
    assert config["listen"]["trusted_proxies"] == ["10.0.0.0/8"]
    assert config["sink"]["kafka"]["webhook_topic"] == "webhooks.events"


def test_the_reconciler_deployment(rendered: dict[str, list[Manifest]], helm: Path) -> None:
    manifests = rendered["production"]
    name = f"{FULLNAME}-reconciler"
    deployment = only(manifests, "Deployment", name)
    pod = deployment["spec"]["template"]
    (reconciler,) = pod["spec"]["containers"]
    assert reconciler["args"][0] == "reconcile"
    assert deployment["spec"]["replicas"] == 2
    # Never behind the gateway's Services, never counted by its Deployment.
    for service in (only(manifests, "Service"), only(manifests, "Service", f"{FULLNAME}-admin")):
        assert not service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    gateway_selector = only(manifests, "Deployment")["spec"]["selector"]["matchLabels"]
    assert not gateway_selector.items() <= pod["metadata"]["labels"].items()
    metrics = only(manifests, "Service", name)
    assert metrics["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    monitor = only(manifests, "ServiceMonitor", name)
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()
    )
    # The same config file and the same secrets as the gateway, the API key among them.
    env = {e["name"] for e in reconciler["env"]}
    assert {e["name"] for e in container(manifests)["env"]} <= env
    assert "RECONCILE_API_KEY_REPLICATE" in env
    config = gateway_config(manifests)
    assert config["reconcile"]["enabled"] is True
    assert config["sources"]["replicate"]["reconcile"]["api_key"]["env"] == (
        "RECONCILE_API_KEY_REPLICATE"
    )
    rules = only(manifests, "PrometheusRule")["spec"]["groups"][0]["rules"]
    missing = next(r for r in rules if r.get("alert") == "WebhookGatewayWebhooksGoingMissing")
    assert f'job="{name}"' in missing["expr"]
    for case in ("minimal", "default"):
        assert all(m["metadata"]["name"] != name for m in rendered[case])
    result = run_helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                      *CASES["default"], "--set", "reconciler.enabled=true")  # fmt: skip
    assert result.returncode != 0
    assert "reconciler.enabled needs gateway.dedupe.kind redis" in result.stderr
