"""Monitoring assets: Prometheus config and alert rules, the Grafana dashboard, and the metrics
they rely on.

* promtool validates the config and rules and runs the rule unit tests (alerts.test.yml);
* every metric (and label) that an alert or a panel queries exists in the app's registry;
* the dashboard is well formed and shows every metric family;
* exact metric values after a scripted mix of deliveries;
* a real Prometheus scrapes a real ``webhook-gateway serve`` and sees those series, the
  alert rules evaluate cleanly on them, and every dashboard query parses.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import generate_latest
from prometheus_client.metrics import MetricWrapperBase

from gateway import __version__
from gateway.app import create_admin_app, create_app
from gateway.metrics import Metrics
from gateway.settings import Settings, load_settings
from gateway.sinks.memory import MemorySink
from tests.prometheus_server import (
    ALERT_RULES,
    ALERT_TESTS,
    JOB,
    LOOPBACK,
    PROMETHEUS_CONFIG,
    ROOT,
    Process,
    api_get,
    free_port,
    instant_query,
    require_binary,
    start_gateway,
    start_prometheus,
    wait_until_ok,
    write_gateway_config,
    write_prometheus_config,
)
from tests.support import PROVIDERS, signed

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, web.Application]]]

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "webhook-gateway.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "dashboards.yml"

METRIC_NAME = re.compile(r"webhook_gateway_[a-z_]+")
# A selector: the metric name and, when present, its {matchers}.
SELECTOR = re.compile(r"(webhook_gateway_[a-z_]+)\s*(?:\{([^}]*)\})?")
MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
LEGEND_LABEL = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
# Sample-name suffixes by metric family type (text exposition format).
SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "unknown": ("",),
}
FAMILY_SUFFIX = re.compile(r"_(total|created|bucket|count|sum|info|gcount|gsum)$")

REQUIRED_ALERTS = frozenset(
    {
        "WebhookGatewaySinkNotReady",
        "WebhookGatewayPublishFailures",
        "WebhookGatewayRefusalRatioHigh",
        "WebhookGatewayLatencyP99High",
        "WebhookGatewayDeadLetters",
        "WebhookGatewayOverloaded",
        "WebhookGatewayDown",
        "WebhookGatewayJwksRefreshFailing",
        "WebhookGatewayDedupeStoreErrors",
    }
)


# --- the app's metrics, as a scrape sees them ----------------------------------------------


@dataclass(frozen=True)
class Exposition:
    """What a scrape of the app's registry can contain."""

    families: dict[str, str]  # family name (registry.collect()) -> type
    samples: dict[str, frozenset[str]]  # exposed sample name -> its label names

    def family_of(self, sample: str) -> str | None:
        """The family a sample name belongs to, by the suffix rules of its type."""
        for family, kind in self.families.items():
            if any(family + suffix == sample for suffix in SUFFIXES.get(kind, ("",))):
                return family
        return None

    def unknown(self, names: Iterable[str]) -> dict[str, str]:
        """Referenced names that no scrape contains -> why (with a hint when close)."""
        problems: dict[str, str] = {}
        for name in sorted(set(names)):
            if name in self.samples:
                continue
            stem = FAMILY_SUFFIX.sub("", name)
            family = stem if stem in self.families else None
            if name in self.families:
                kind = self.families[name]
                exposed = ", ".join(name + s for s in SUFFIXES.get(kind, ("",)))
                problems[name] = f"is a {kind} family name; its samples are {exposed}"
            elif family is not None:
                kind = self.families[family]
                exposed = ", ".join(family + s for s in SUFFIXES.get(kind, ("",)))
                problems[name] = f"{family} is a {kind}: it exposes {exposed}"
            else:
                problems[name] = "no such metric in gateway.metrics.Metrics"
        return problems


def app_exposition() -> Exposition:
    """Families from ``registry.collect()``; sample names and labels from a real rendering.

    Labelled metrics expose nothing until a child exists, so one child of each is created
    with placeholder values first: the rendering then holds every sample name with its labels
    (including ``le``, and ``*_created`` unless prometheus-client is told to drop them).
    """
    metrics = Metrics()
    for collector in vars(metrics).values():
        if isinstance(collector, MetricWrapperBase) and collector._labelnames:
            collector.labels(*("probe" for _ in collector._labelnames))
    # The per-request families (gateway/request_stats.py) appear once something is counted.
    metrics.stats.request("probe", "probe", "200", "accepted", 0.001)
    metrics.stats.published("probe", "probe")
    metrics.stats.key_match("probe", "probe")
    metrics.stats.publish_duration("probe", 0.001)
    families = {family.name: family.type for family in metrics.registry.collect()}
    samples: dict[str, set[str]] = {}
    for line in generate_latest(metrics.registry).decode().splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s", line)
        assert match is not None, line
        name, labels = match.group(1), match.group(2) or ""
        samples.setdefault(name, set()).update(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="', labels))
    for name in samples:
        assert FAMILY_SUFFIX.sub("", name) in families or name in families, name
    return Exposition(families, {name: frozenset(labels) for name, labels in samples.items()})


@pytest.fixture(scope="module")
def exposition() -> Exposition:
    return app_exposition()


# --- what the monitoring assets query --------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    doc = load_yaml(ALERT_RULES)
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def load_dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def dashboard_panels() -> list[dict[str, Any]]:
    """All panels, including those nested in collapsed rows."""
    panels: list[dict[str, Any]] = []
    for panel in load_dashboard()["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(where, expr, legendFormat) for every panel target and query variable."""
    queries = [
        (
            f"panel {p['id']} {p['title']!r} target {t.get('refId')}",
            t["expr"],
            t.get("legendFormat", ""),
        )
        for p in dashboard_panels()
        for t in p.get("targets", [])
    ]
    for var in load_dashboard()["templating"]["list"]:
        if var.get("type") == "query":
            query = var["query"]
            expr = query["query"] if isinstance(query, dict) else query
            queries.append((f"variable ${var['name']}", expr, ""))
    return queries


def alert_queries() -> list[tuple[str, str, str]]:
    return [(f"alert {r['alert']}", r["expr"], "") for r in alert_rules()]


def all_queries() -> list[tuple[str, str, str]]:
    return alert_queries() + dashboard_queries()


def referenced_metrics(exprs: Iterable[str]) -> set[str]:
    return {name for expr in exprs for name in METRIC_NAME.findall(expr)}


def label_problems(exposition: Exposition, queries: Iterable[tuple[str, str, str]]) -> list[str]:
    """Labels that a query matches on, groups by or shows in its legend but no metric has."""
    problems: list[str] = []
    for where, expr, legend in queries:
        known = set(TARGET_LABELS)
        for name, matchers in SELECTOR.findall(expr):
            labels = exposition.samples.get(name, frozenset()) | TARGET_LABELS
            known |= labels
            for label in MATCHER_LABEL.findall(matchers):
                if label not in labels:
                    problems.append(f"{where}: {name} has no label {label!r}")
        if not METRIC_NAME.search(expr):
            continue  # e.g. up{job=...}: not ours to check
        grouped = {x.strip() for group in GROUPING.findall(expr) for x in group.split(",")}
        for label in sorted((grouped | set(LEGEND_LABEL.findall(legend))) - {""} - known):
            problems.append(f"{where}: label {label!r} is on none of its metrics")
    return problems


def test_exposition_knows_every_metric_family(exposition: Exposition) -> None:
    """The checks below are only as good as this view of the registry."""
    assert set(exposition.families) >= {
        "webhook_gateway_requests",
        "webhook_gateway_request_duration_seconds",
        "webhook_gateway_verification_failures",
        "webhook_gateway_request_errors",
        "webhook_gateway_events_published",
        "webhook_gateway_publish_duration_seconds",
        "webhook_gateway_publish_failures",
        "webhook_gateway_duplicates",
        "webhook_gateway_dead_letters",
        "webhook_gateway_in_flight_requests",
        "webhook_gateway_sink_ready",
        "webhook_gateway_key_refreshes",
        "webhook_gateway_key_matches",
        "webhook_gateway_build",
    }
    assert exposition.samples["webhook_gateway_requests_total"] == {
        "source",
        "provider",
        "status",
        "outcome",
    }
    assert exposition.samples["webhook_gateway_request_duration_seconds_bucket"] == {
        "source",
        "le",
    }
    assert exposition.samples["webhook_gateway_build_info"] == {"version"}
    assert exposition.family_of("webhook_gateway_requests_total") == "webhook_gateway_requests"
    assert exposition.family_of("webhook_gateway_build_info") == "webhook_gateway_build"
    assert exposition.family_of("webhook_gateway_sink_ready") == "webhook_gateway_sink_ready"


@pytest.mark.parametrize(
    ("source", "queries"),
    [("alerts.yml", alert_queries), ("dashboard", dashboard_queries)],
)
def test_every_referenced_metric_exists(
    exposition: Exposition, source: str, queries: Callable[[], list[tuple[str, str, str]]]
) -> None:
    referenced = referenced_metrics(expr for _, expr, _ in queries())
    assert referenced, f"{source} references no webhook_gateway_* metric"
    assert exposition.unknown(referenced) == {}, source


def test_every_referenced_label_exists(exposition: Exposition) -> None:
    assert label_problems(exposition, all_queries()) == []


def test_reference_check_catches_what_does_not_exist(exposition: Exposition) -> None:
    """A typo, a family name used as a series, or a wrong suffix must all fail the checks."""
    bad = (
        "sum by (souce) (rate(webhook_gateway_request[5m]))"
        " + webhook_gateway_requests"
        " + webhook_gateway_sink_ready_total"
        " + webhook_gateway_request_duration_seconds_total"
        ' + webhook_gateway_verification_failures_total{reasn="x"}'
    )
    problems = exposition.unknown(referenced_metrics([bad]))
    assert set(problems) == {
        "webhook_gateway_request",
        "webhook_gateway_requests",
        "webhook_gateway_sink_ready_total",
        "webhook_gateway_request_duration_seconds_total",
    }
    assert "webhook_gateway_requests_total" in problems["webhook_gateway_requests"]
    assert "_bucket" in problems["webhook_gateway_request_duration_seconds_total"]
    assert label_problems(exposition, [("bad", bad, "{{provider}}")]) == [
        "bad: webhook_gateway_verification_failures_total has no label 'reasn'",
        "bad: label 'provider' is on none of its metrics",
        "bad: label 'souce' is on none of its metrics",
    ]


def test_dashboard_shows_every_metric_family(exposition: Exposition) -> None:
    shown = {
        exposition.family_of(name)
        for name in referenced_metrics(expr for _, expr, _ in dashboard_queries())
    }
    assert set(exposition.families) - shown == set()


# --- Prometheus: promtool --------------------------------------------------------------------


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.prometheus
def test_promtool_check_config() -> None:
    """Also loads alerts.yml, resolved relative to the config file (as in /etc/prometheus)."""
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.prometheus
def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(ALERT_RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(alert_rules())} rules found" in result.stdout


@pytest.mark.prometheus
def test_promtool_rule_unit_tests() -> None:
    result = promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_unit_test() -> None:
    tested = {
        case["alertname"]
        for test in load_yaml(ALERT_TESTS)["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in alert_rules()} - tested == set()


def test_prometheus_config_for_the_compose_stack() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    assert config["rule_files"] == ["alerts.yml"]
    [job] = config["scrape_configs"]
    assert job["job_name"] == JOB
    assert job.get("scrape_interval", config["global"]["scrape_interval"]) == "15s"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert [t for sc in job["static_configs"] for t in sc["targets"]] == ["gateway:9102"]


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    assert set(names) >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        for key in ("summary", "description", "runbook"):
            assert rule["annotations"].get(key, "").strip(), f"{rule['alert']}: no {key}"
    by_name = {rule["alert"]: rule for rule in rules}
    assert by_name["WebhookGatewaySinkNotReady"]["for"] == "1m"
    assert by_name["WebhookGatewayDown"]["for"] == "2m"
    assert by_name["WebhookGatewayRefusalRatioHigh"]["for"] == "10m"
    assert by_name["WebhookGatewayLatencyP99High"]["for"] == "10m"
    assert by_name["WebhookGatewayDeadLetters"]["labels"]["severity"] == "warning"
    assert "250 ms" in by_name["WebhookGatewayLatencyP99High"]["annotations"]["description"]
    assert "rotation" in by_name["WebhookGatewayRefusalRatioHigh"]["annotations"]["description"]


# --- Grafana ---------------------------------------------------------------------------------


def test_dashboard_is_well_formed() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "webhook-gateway"
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    source = variables["source"]
    assert source["type"] == "query"
    assert source["datasource"]["uid"] == "${datasource}"
    assert "label_values(webhook_gateway_requests_total, source)" in json.dumps(source["query"])
    assert variables["job"]["datasource"]["uid"] == "${datasource}"
    assert "allValue" not in variables["job"], "'All' jobs must list the gateway's jobs, not .*"

    panels = dashboard_panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"
    cells: dict[tuple[int, int], int] = {}
    for panel in panels:
        where = f"panel {panel['id']} {panel.get('title')!r}"
        assert panel.get("title"), where
        if panel["type"] != "row":  # a row only groups panels
            assert panel.get("datasource", {}).get("uid") == "${datasource}", where
            targets = panel.get("targets", [])
            assert targets, f"{where}: no targets"
            for target in targets:
                assert target.get("expr", "").strip(), f"{where}: empty expr"
                assert target.get("datasource", panel["datasource"]) == panel["datasource"]
            assert len({t["refId"] for t in targets}) == len(targets), f"{where}: refIds"
        grid = panel["gridPos"]
        assert grid["x"] >= 0, where
        assert grid["x"] + grid["w"] <= 24, f"{where}: wider than 24 columns"
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{where} overlaps panel {cells[(x, y)]}"
                cells[(x, y)] = panel["id"]


def test_dashboard_has_the_agreed_views() -> None:
    titles = {p["title"] for p in dashboard_panels()}
    assert titles >= {
        "Request rate by source and outcome",
        "Refusals by reason per source",
        "Latency p50 / p90 / p99",
        "Publish latency p50 / p99",
        "Publish failures by reason",
        "Events published by topic",
        "Dead letters by source and reason",
        "Duplicates by source",
        "In-flight requests",
        "Sink ready",
        "Key rotation progress",
        "JWKS refresh results",
        "Dedupe store errors",
    }
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in dashboard_panels()}
    for q in ("0.5", "0.9", "0.99"):
        assert f"histogram_quantile({q}," in exprs["Latency p50 / p90 / p99"]
    refusals = exprs["Refusals by reason per source"]
    assert "webhook_gateway_verification_failures_total" in refusals
    assert "webhook_gateway_request_errors_total" in refusals
    rotation = exprs["Key rotation progress"]
    assert "webhook_gateway_key_matches_total" in rotation
    assert "key_id" in rotation


def test_grafana_provisioning() -> None:
    [datasource] = load_yaml(DATASOURCES)["datasources"]
    assert datasource["name"] == "Prometheus"
    assert datasource["type"] == "prometheus"
    assert datasource["uid"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    [provider] = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


# --- metric values after a scripted mix of deliveries ----------------------------------------


def samples_of(metrics: Metrics, name: str) -> dict[tuple[str, ...], float]:
    """``{label values in label-name order: value}`` for one exposed sample name."""
    found: dict[tuple[str, ...], float] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sample.labels.values())] = sample.value
    return found


async def test_metric_values_after_scripted_deliveries(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    metrics = Metrics()
    sink = MemorySink()
    app = create_app(settings, sink=sink, metrics=metrics)
    client = await aiohttp_client(app)
    admin = await aiohttp_client(create_admin_app(app))

    async def post(source: str, raw: bytes, headers: dict[str, str]) -> int:
        async with client.post(f"/webhooks/{source}", data=raw, headers=headers) as response:
            await response.read()
            return response.status

    fal = signed(settings, "fal")
    for source in PROVIDERS:  # one good delivery per provider
        raw, headers = fal if source == "fal" else signed(settings, source)
        assert await post(source, raw, headers) == 200, source
    raw, headers = signed(settings, "replicate")
    assert await post("replicate", raw + b" ", headers) == 401  # forged: signature_mismatch
    raw, headers = signed(settings, "openai", now=int(time.time()) - 3600)
    assert await post("openai", raw, headers) == 401  # stale: timestamp_out_of_window
    assert await post("fal", *fal) == 200  # duplicate
    assert await post("openai", *signed(settings, "openai", "unsupported")) == 200  # dead letter
    too_large = io.BytesIO(b"{" + b" " * settings.limits.max_body_bytes + b"}")
    json_type = {"Content-Type": "application/json"}
    async with client.post("/webhooks/fal", data=too_large, headers=json_type) as response:
        assert response.status == 413
    async with client.get("/webhooks/fal") as response:
        assert response.status == 405
    async with client.post("/webhooks/nope", data=b"{}", headers=json_type) as response:
        assert response.status == 404
    sink.available = False  # one write refused by the sink: 503, publish failure
    assert await post("abstrakt", *signed(settings, "abstrakt")) == 503
    sink.available = True
    async with admin.get("/metrics") as response:  # a scrape refreshes sink_ready
        assert response.status == 200
        exposition = await response.text()

    registry = metrics.registry
    assert samples_of(metrics, "webhook_gateway_requests_total") == {
        ("fal", "fal", "200", "accepted"): 1,
        ("fal", "fal", "200", "duplicate"): 1,
        ("fal", "fal", "413", "refused"): 1,
        ("fal", "fal", "405", "refused"): 1,
        ("standard-webhooks", "standard-webhooks", "200", "accepted"): 1,
        ("replicate", "replicate", "200", "accepted"): 1,
        ("replicate", "replicate", "401", "rejected"): 1,
        ("openai", "openai", "200", "accepted"): 1,
        ("openai", "openai", "401", "rejected"): 1,
        ("openai", "openai", "200", "dead_letter"): 1,
        ("abstrakt", "abstrakt", "200", "accepted"): 1,
        ("abstrakt", "abstrakt", "503", "unavailable"): 1,
        ("instantapi", "instantapi", "200", "accepted"): 1,
        ("_unknown", "_unknown", "404", "refused"): 1,
    }
    labels = {"source": "fal", "provider": "fal", "status": "200", "outcome": "accepted"}
    assert registry.get_sample_value("webhook_gateway_requests_total", labels) == 1
    assert samples_of(metrics, "webhook_gateway_verification_failures_total") == {
        ("replicate", "signature_mismatch"): 1,
        ("openai", "timestamp_out_of_window"): 1,
    }
    assert samples_of(metrics, "webhook_gateway_request_errors_total") == {
        ("fal", "body_too_large"): 1,
        ("fal", "method_not_allowed"): 1,
        ("_unknown", "unknown_source"): 1,
    }
    assert samples_of(metrics, "webhook_gateway_events_published_total") == {
        **{(source, "events"): 1 for source in PROVIDERS},
        ("openai", "dead-letters"): 1,
    }
    assert samples_of(metrics, "webhook_gateway_duplicates_total") == {("fal",): 1}
    assert samples_of(metrics, "webhook_gateway_dead_letters_total") == {
        ("openai", "unsupported_event_type"): 1
    }
    assert samples_of(metrics, "webhook_gateway_publish_failures_total") == {
        ("memory", "sink_unavailable"): 1
    }
    assert samples_of(metrics, "webhook_gateway_key_matches_total") == {
        ("fal", "local-test-key"): 2,  # accepted + duplicate
        ("standard-webhooks", "dev-v1"): 1,
        ("replicate", "dev"): 1,  # the forged one matched no key
        ("openai", "dev"): 2,  # accepted + dead letter; the stale one is refused first
        ("abstrakt", "dev"): 2,  # verified, then refused by the sink
        ("instantapi", "dev"): 1,
    }
    assert samples_of(metrics, "webhook_gateway_key_refreshes_total") == {}  # no JWKS source
    assert samples_of(metrics, "webhook_gateway_request_duration_seconds_count") == {
        ("fal",): 4,
        ("standard-webhooks",): 1,
        ("replicate",): 2,
        ("openai",): 3,
        ("abstrakt",): 2,
        ("instantapi",): 1,
        ("_unknown",): 1,
    }
    # 6 accepted + 1 failed write: dead letters are written but not timed (see the report).
    assert samples_of(metrics, "webhook_gateway_publish_duration_seconds_count") == {("memory",): 8}
    assert registry.get_sample_value("webhook_gateway_in_flight_requests") == 0
    assert registry.get_sample_value("webhook_gateway_sink_ready", {"sink": "memory"}) == 1
    assert registry.get_sample_value("webhook_gateway_build_info", {"version": __version__}) == 1
    assert 'webhook_gateway_sink_ready{sink="memory"} 1.0' in exposition
    assert len(sink.events) == len(PROVIDERS)
    assert len(sink.dead_letters) == 1


# --- a real Prometheus scraping a real gateway -----------------------------------------------


@dataclass(frozen=True)
class RunningGateway:
    process: Process
    config: Path
    url: str
    admin_port: int


@dataclass(frozen=True)
class RunningPrometheus:
    process: Process
    url: str


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[RunningGateway]:
    listen_port, admin_port = free_port(), free_port()
    workdir = tmp_path / "gateway"
    workdir.mkdir()
    config = write_gateway_config(
        workdir / "gateway.yaml",
        listen_port=listen_port,
        admin_port=admin_port,
        events_dir=workdir / "events",
    )
    process = start_gateway(config, workdir)
    try:
        wait_until_ok(f"http://{LOOPBACK}:{admin_port}/readyz", process, timeout=30)
        yield RunningGateway(process, config, f"http://{LOOPBACK}:{listen_port}", admin_port)
    finally:
        process.stop()


@pytest.fixture
def prometheus_process(
    tmp_path: Path, gateway_process: RunningGateway
) -> Iterator[RunningPrometheus]:
    port = free_port()
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    config = write_prometheus_config(
        workdir / "prometheus.yml", target=f"{LOOPBACK}:{gateway_process.admin_port}"
    )
    process = start_prometheus(config, workdir, port)
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_until_ok(f"{url}/-/ready", process, timeout=30)
        yield RunningPrometheus(process, url)
    finally:
        process.stop()


def grafana_to_promql(expr: str) -> str:
    """A dashboard query as Grafana sends it: all jobs and sources, a 1 minute rate interval."""
    for variable, value in {
        "$__rate_interval": "1m",
        "$__interval": "1m",
        "$__range": "5m",
        "${source}": ".*",
        "$source": ".*",
        "${job}": f"({JOB})",
        "$job": f"({JOB})",
    }.items():
        expr = expr.replace(variable, value)
    return expr


LABEL_VALUES = re.compile(r"^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*(\w+)\s*\)$")


@pytest.mark.prometheus
async def test_real_prometheus_scrapes_real_gateway(request: pytest.FixtureRequest) -> None:
    # Checked here rather than in the fixtures, so that a missing binary fails the test.
    require_binary("prometheus")
    gateway: RunningGateway = request.getfixturevalue("gateway_process")
    prometheus: RunningPrometheus = request.getfixturevalue("prometheus_process")

    settings = load_settings(gateway.config)
    fal = signed(settings, "fal")
    forged_raw, forged_headers = signed(settings, "replicate")
    deliveries = [
        ("fal", *fal, 200),
        ("fal", *fal, 200),  # duplicate
        ("replicate", *signed(settings, "replicate"), 200),
        ("replicate", forged_raw + b" ", forged_headers, 401),
        ("openai", *signed(settings, "openai", "unsupported"), 200),  # dead letter
        ("nope", b"{}", {"Content-Type": "application/json"}, 404),
    ]
    expected = {
        ("fal", "fal", "200", "accepted"): "1",
        ("fal", "fal", "200", "duplicate"): "1",
        ("replicate", "replicate", "200", "accepted"): "1",
        ("replicate", "replicate", "401", "rejected"): "1",
        ("openai", "openai", "200", "dead_letter"): "1",
        ("_unknown", "_unknown", "404", "refused"): "1",
    }
    prom = prometheus.url
    target = f"{LOOPBACK}:{gateway.admin_port}"
    processes = (gateway.process, prometheus.process)

    async def poll(
        what: str,
        check: Callable[[], Awaitable[bool]],
        within: float,
        detail: Callable[[], str] = str,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not await check():
            for p in processes:
                if not p.alive():
                    pytest.fail(f"{p.name} died waiting for {what}\n{p.log_tail()}")
            if loop.time() > deadline:
                logs = "\n".join(p.log_tail() for p in processes)
                pytest.fail(f"timed out ({within} s) waiting for {what}\n{detail()}\n{logs}")
            await asyncio.sleep(0.25)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for source, raw, headers, status in deliveries:
            url = f"{gateway.url}/webhooks/{source}"
            async with session.post(url, data=raw, headers=headers) as response:
                assert response.status == status, (source, await response.text())

        async def vector(expr: str) -> list[tuple[dict[str, str], str]]:
            return [(s["metric"], s["value"][1]) for s in await instant_query(session, prom, expr)]

        seen: dict[tuple[str, ...], str] = {}

        async def requests_scraped() -> bool:
            seen.clear()
            for labels, value in await vector("webhook_gateway_requests_total"):
                assert (labels["job"], labels["instance"]) == (JOB, target), labels
                key = (labels["source"], labels["provider"], labels["status"], labels["outcome"])
                seen[key] = value
            return seen == expected

        await poll(
            "the requests_total series",
            requests_scraped,
            within=45,
            detail=lambda: f"seen: {seen}\nexpected: {expected}",
        )
        target_labels = {"job": JOB, "instance": target}
        assert await vector(f'up{{job="{JOB}"}}') == [({"__name__": "up", **target_labels}, "1")]
        assert await vector("webhook_gateway_sink_ready") == [
            ({"__name__": "webhook_gateway_sink_ready", **target_labels, "sink": "local"}, "1")
        ]
        assert await vector("webhook_gateway_verification_failures_total") == [
            (
                {
                    "__name__": "webhook_gateway_verification_failures_total",
                    **target_labels,
                    "source": "replicate",
                    "reason": "signature_mismatch",
                },
                "1",
            )
        ]
        assert await vector(f'webhook_gateway_build_info{{version="{__version__}"}}') != []
        # The dead-letter alert's first-occurrence branch needs *_created to be scraped.
        assert await vector("webhook_gateway_dead_letters_created") != []

        # The real rules, evaluated every second on these series: all healthy, and the first
        # dead letter fires WebhookGatewayDeadLetters at once (it has no `for:`).
        health: dict[str, str] = {}

        async def rules_evaluated() -> bool:
            data = await api_get(session, prom, "rules", {"type": "alert"})
            health.clear()
            for group in data["groups"]:
                for rule in group["rules"]:
                    health[rule["name"]] = rule["health"]
                    assert rule["health"] != "err", (rule["name"], rule.get("lastError"))
            return set(health) >= REQUIRED_ALERTS and set(health.values()) == {"ok"}

        await poll("the alert rules' evaluation", rules_evaluated, 20, lambda: str(health))

        alerts: list[dict[str, Any]] = []

        async def dead_letter_alert_firing() -> bool:
            alerts[:] = (await api_get(session, prom, "alerts"))["alerts"]
            return any(
                a["state"] == "firing"
                and a["labels"]["alertname"] == "WebhookGatewayDeadLetters"
                and a["labels"]["source"] == "openai"
                and a["labels"]["reason"] == "unsupported_event_type"
                for a in alerts
            )

        await poll("WebhookGatewayDeadLetters", dead_letter_alert_firing, 20, lambda: str(alerts))
        firing = {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
        assert firing == {"WebhookGatewayDeadLetters"}, alerts

        # Every dashboard query is valid PromQL (a parse error raises), and the variables list
        # this job and the sources that received traffic.
        variable_values = {"job": {JOB}, "source": {key[0] for key in expected}}
        for where, expr, _ in dashboard_queries():
            match = LABEL_VALUES.match(expr.strip())
            if match is not None:
                metric, label = match.groups()
                values = await api_get(session, prom, f"label/{label}/values", {"match[]": metric})
                assert set(values) == variable_values[label], where
                continue
            result = await instant_query(session, prom, grafana_to_promql(expr))
            if not re.search(r"\b(rate|increase)\(", expr):  # gauges: data from one scrape
                assert result, f"{where}: no data for {expr}"
