"""The AI job presets: every shipped example signs, verifies and normalizes into an event that
validates against the published JSON Schemas; rows in docs/providers.md match the registry."""

from __future__ import annotations

import importlib
import json
import re
import textwrap
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from multidict import CIMultiDict

import schemas
from adapters import ADAPTERS, Adapter, ConfigError, VerificationError, build_adapter
from adapters.base import Normalized, Passthrough, RequestMeta, Verified
from adapters.examples import names, render
from adapters.presets import jobs
from gateway import provider_docs
from gateway.ingest import build_webhook_event
from gateway.settings import load_settings
from schemas import JobStatus
from tests.helpers_adapters import SW_SECRET, job_event, make_spec, validate_event

jsonschema: Any = importlib.import_module("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_767_225_600
PRESET_NAMES = tuple(p.name for p in jobs.PRESETS)
TOKEN = "tests-job-preset-token-0123456789"
SECRETS = {"anthropic": SW_SECRET, "parallel": SW_SECRET, "deepgram": "dg-user:" + TOKEN}

#: (preset, example) -> (status, whether outputs are expected)
EXPECTED: dict[tuple[str, str], tuple[JobStatus, bool]] = {
    ("elevenlabs", "succeeded"): (JobStatus.SUCCEEDED, False),
    ("elevenlabs", "failed"): (JobStatus.FAILED, False),
    ("elevenlabs", "speech-to-text"): (JobStatus.SUCCEEDED, False),
    ("assemblyai", "succeeded"): (JobStatus.SUCCEEDED, False),
    ("assemblyai", "failed"): (JobStatus.FAILED, False),
    ("deepgram", "succeeded"): (JobStatus.SUCCEEDED, False),
    ("deepgram", "failed"): (JobStatus.FAILED, False),
    ("leonardo", "succeeded"): (JobStatus.SUCCEEDED, True),
    ("leonardo", "failed"): (JobStatus.FAILED, False),
    ("piapi", "succeeded"): (JobStatus.SUCCEEDED, True),
    ("piapi", "failed"): (JobStatus.FAILED, False),
    ("goapi", "succeeded"): (JobStatus.SUCCEEDED, True),
    ("goapi", "failed"): (JobStatus.FAILED, False),
    ("luma", "succeeded"): (JobStatus.SUCCEEDED, True),
    ("luma", "dreaming"): (JobStatus.RUNNING, False),
    ("luma", "failed"): (JobStatus.FAILED, False),
    ("baseten", "succeeded"): (JobStatus.SUCCEEDED, False),
    ("baseten", "failed"): (JobStatus.FAILED, False),
    ("runpod", "succeeded"): (JobStatus.SUCCEEDED, False),
    ("runpod", "failed"): (JobStatus.FAILED, False),
    ("kie", "succeeded"): (JobStatus.SUCCEEDED, False),
    ("kie", "failed"): (JobStatus.FAILED, False),
    ("anthropic", "succeeded"): (JobStatus.SUCCEEDED, False),
    ("anthropic", "failed"): (JobStatus.FAILED, False),
    ("parallel", "succeeded"): (JobStatus.SUCCEEDED, False),
    ("parallel", "failed"): (JobStatus.FAILED, False),
}
PASSTHROUGH_EXAMPLES = {("anthropic", "session-created"): "session.created"}


def preset_adapter(name: str) -> Adapter:
    return build_adapter(make_spec(name, secrets=[("primary", SECRETS.get(name, TOKEN))]))


def request_for(adapter: Adapter) -> RequestMeta:
    token, query = adapter.url_credentials()
    return RequestMeta(query=query, path_token=token)


@cache
def webhook_event_validator() -> Any:
    folder = Path(schemas.__file__).resolve().parent
    doc = json.loads((folder / "webhook_event.v1.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(
        doc, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_every_preset_ships_a_success_and_a_failure_example() -> None:
    for name in PRESET_NAMES:
        assert {"succeeded", "failed"} <= set(names(name)), name
    shipped = {(p, n) for p in PRESET_NAMES for n in names(p)}
    assert shipped == set(EXPECTED) | set(PASSTHROUGH_EXAMPLES)


@pytest.mark.parametrize(("name", "example"), sorted(EXPECTED), ids=lambda v: str(v))
async def test_example_signs_verifies_and_normalizes(name: str, example: str) -> None:
    adapter = preset_adapter(name)
    raw = render(name, example, job_id="job_0123", now=NOW)
    headers = CIMultiDict(adapter.sign(raw, NOW, delivery_id="msg_0123"))
    verified = await adapter.verify(raw, headers, NOW, request_for(adapter))
    payload = adapter.parse(raw, request_for(adapter))
    normalized = adapter.normalize(payload, verified, NOW)
    assert isinstance(normalized, Normalized)
    status, has_outputs = EXPECTED[(name, example)]
    assert normalized.job_id == "job_0123"
    assert normalized.status is status
    assert bool(normalized.outputs) is has_outputs
    if status is JobStatus.FAILED and name not in ("assemblyai", "leonardo", "anthropic"):
        assert normalized.error is not None  # these senders say why
        assert normalized.error.message or normalized.error.code
    if status is JobStatus.SUCCEEDED:
        assert normalized.error is None
    event = job_event(normalized, verified, provider=name, raw=payload, received_at=NOW)
    document = validate_event(event)
    assert document["provider"] == name
    assert document["delivery"]["scheme"] == verified.scheme


@pytest.mark.parametrize(("name", "example"), sorted(PASSTHROUGH_EXAMPLES))
async def test_non_job_events_pass_through_as_webhook_events(name: str, example: str) -> None:
    adapter = preset_adapter(name)
    assert adapter.may_pass_through
    raw = render(name, example, job_id="job_0123", now=NOW)
    verified = await adapter.verify(raw, CIMultiDict(adapter.sign(raw, NOW, delivery_id="m")), NOW)
    payload = adapter.parse(raw, RequestMeta())
    facts = adapter.normalize(payload, verified, NOW)
    assert isinstance(facts, Passthrough)
    assert facts.event_type == PASSTHROUGH_EXAMPLES[(name, example)]
    at = datetime.fromtimestamp(NOW, tz=UTC)
    event = build_webhook_event("evt_x", "src", name, facts, verified, payload, at, at)
    webhook_event_validator().validate(event.model_dump(mode="json"))


HMAC_PRESETS = ("elevenlabs", "baseten", "anthropic", "parallel")


@pytest.mark.parametrize("name", HMAC_PRESETS)
async def test_signature_binds_the_body(name: str) -> None:
    adapter = preset_adapter(name)
    raw = render(name, "succeeded", job_id="job_1", now=NOW)
    headers = CIMultiDict(adapter.sign(raw, NOW, delivery_id="msg_1"))
    with pytest.raises(VerificationError) as caught:
        await adapter.verify(raw.replace(b"job_1", b"job_2"), headers, NOW)
    assert caught.value.reason == "signature_mismatch"


async def test_kie_signature_does_not_bind_the_body_and_says_so() -> None:
    adapter = preset_adapter("kie")
    raw = render("kie", "succeeded", job_id="task_1", now=NOW)
    headers = CIMultiDict(adapter.sign(raw, NOW, delivery_id="unused"))
    changed = raw.replace(b'"state": "success"', b'"state": "fail"')
    verified = await adapter.verify(changed, headers, NOW)
    facts = adapter.normalize(adapter.parse(changed, RequestMeta()), verified, NOW)
    assert isinstance(facts, Normalized)
    assert facts.status is JobStatus.FAILED  # accepted: the body is not signed
    assert any("does not cover the body" in w for w in adapter.warnings())
    info = ADAPTERS["kie"].info
    assert info is not None
    assert "not covered by the signature" in info.scheme


@pytest.mark.parametrize("name", ["luma", "runpod"])
def test_path_token_presets_put_the_token_in_the_url(name: str) -> None:
    adapter = preset_adapter(name)
    assert adapter.accepts_path_token
    assert adapter.reads_request
    assert adapter.url_credentials() == (TOKEN, {})
    assert adapter.sign(b"{}", NOW, delivery_id="x") == {}
    assert any("travels in the URL" in w for w in adapter.warnings())


def test_luma_without_a_token_needs_allow_unauthenticated_in_production() -> None:
    spec = make_spec("luma", options={"scheme": {"auth": "none"}})
    with pytest.raises(ConfigError) as caught:
        build_adapter(spec)
    assert caught.value.reason == "unauthenticated_source"
    allowed = make_spec("luma", options={"scheme": {"auth": "none"}}, allow_unauthenticated=True)
    assert build_adapter(allowed).warnings()


def test_sensitive_headers_cover_the_credentials() -> None:
    expected = {
        "elevenlabs": "elevenlabs-signature",
        "assemblyai": "x-assemblyai-webhook-token",
        "deepgram": "authorization",
        "leonardo": "authorization",
        "piapi": "x-webhook-secret",
        "goapi": "x-webhook-secret",
        "baseten": "x-baseten-signature",
        "kie": "x-webhook-signature",
        "anthropic": "webhook-signature",
        "parallel": "webhook-signature",
    }
    for name, header in expected.items():
        assert header in preset_adapter(name).sensitive_headers, name


def test_a_source_can_override_a_preset_block() -> None:
    spec = make_spec("assemblyai", secrets=[("p", TOKEN)], options={"scheme": {"header": "X-Mine"}})
    adapter = build_adapter(spec)
    assert adapter.sign(b"{}", NOW, delivery_id="x") == {"X-Mine": TOKEN}
    # the rest of the preset is kept: the mapping still reads AssemblyAI's body
    payload = adapter.parse(b'{"transcript_id": "t", "status": "error"}', RequestMeta())
    facts = adapter.normalize(payload, Verified("static-header", "p", None), NOW)
    assert isinstance(facts, Normalized)
    assert facts.status is JobStatus.FAILED


def _committed_rows() -> Mapping[str, str]:
    text = (ROOT / "docs" / "providers.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `") and "` |" in line:
            rows[line.split("`")[1]] = line
    return rows


def test_each_preset_row_in_docs_matches_the_registry() -> None:
    rendered = {
        line.split("`")[1]: line
        for line in provider_docs.render().splitlines()
        if line.startswith("| `")
    }
    committed = _committed_rows()
    for name in PRESET_NAMES:
        assert committed.get(name) == rendered[name], f"regenerate docs/providers.md ({name})"


def test_rows_say_what_is_unconfirmed() -> None:
    for name in ("elevenlabs", "deepgram", "parallel"):
        info = ADAPTERS[name].info
        assert info is not None
        assert "unconfirmed" in " ".join((info.scheme, info.delivery_id, info.notes)), name
    for name in ("heygen", "sync", "syncso"):
        assert name not in ADAPTERS  # left out: see docs/configuration-presets.md


def test_assemblyai_row_and_docs_give_the_sender_ips() -> None:
    info = ADAPTERS["assemblyai"].info
    assert info is not None
    docs = (ROOT / "docs" / "configuration-presets.md").read_text(encoding="utf-8")
    for ip in ("44.238.19.20", "54.220.25.36"):
        assert ip in info.notes
        assert ip in docs


def _doc_source_blocks() -> list[dict[str, Any]]:
    text = (ROOT / "docs" / "configuration-presets.md").read_text(encoding="utf-8")
    section = text.split("## AI job providers", 1)[1]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    return [yaml.safe_load(textwrap.dedent(block)) for block in blocks]


def test_every_source_block_in_the_docs_is_a_working_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocks = _doc_source_blocks()
    assert len(blocks) >= len(PRESET_NAMES)
    for sources in blocks:
        for source in sources.values():
            provider = source["provider"]
            for secret in source.get("secrets", []):
                value = SECRETS.get(provider, "user:" + TOKEN)
                monkeypatch.setenv(secret["env"], value)
        settings = load_settings(None, mode="production", sources=sources)
        for spec in settings.source_specs().values():
            assert build_adapter(spec).provider == spec.provider


def test_readme_counts_the_providers() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"(\d+) providers are supported", readme)
    assert match is not None
    assert int(match.group(1)) == len(ADAPTERS)
    assert "(docs/providers.md)" in readme
