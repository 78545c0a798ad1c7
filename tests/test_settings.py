"""Settings: YAML + environment, secret references, and refusals that keep production safe."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adapters import ConfigError
from adapters.testing_keys import FAL_TEST_PUBLIC_X
from gateway.settings import load_settings
from tests.support import EXAMPLE_CONFIG

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_example_config_loads() -> None:
    settings = load_settings(EXAMPLE_CONFIG)
    specs = settings.source_specs()
    assert set(specs) == {
        "fal",
        "standard-webhooks",
        "replicate",
        "openai",
        "abstrakt",
        "instantapi",
        "acme",
    }
    assert specs["acme"].provider == "generic"
    assert settings.development


def test_environment_overrides_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, {"limits": {"max_in_flight": 10}, "sink": {"kind": "local"}})
    monkeypatch.setenv("WEBHOOK_GATEWAY_LIMITS__MAX_IN_FLIGHT", "7")
    monkeypatch.setenv("WEBHOOK_GATEWAY_SINK__KIND", "kafka")
    monkeypatch.setenv("WEBHOOK_GATEWAY_SINK__KAFKA__BOOTSTRAP_SERVERS", "k:9092")
    settings = load_settings(path)
    assert settings.limits.max_in_flight == 7
    assert settings.sink.kind == "kafka"
    assert settings.sink.kafka.bootstrap_servers == "k:9092"
    assert settings.limits.max_body_bytes == 1024 * 1024  # untouched default


def test_secret_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "old").write_text("whsec_" + "A" * 32 + "\n", encoding="utf-8")
    monkeypatch.setenv("REPLICATE_SECRET", SECRET)
    path = write(
        tmp_path,
        {
            "sources": {
                "replicate": {
                    "provider": "replicate",
                    "secrets": [
                        {"id": "new", "env": "REPLICATE_SECRET"},
                        {"id": "old", "file": str(tmp_path / "old")},
                    ],
                }
            }
        },
    )
    spec = load_settings(path).source_specs()["replicate"]
    assert [s.id for s in spec.secrets] == ["new", "old"]
    assert spec.secrets[0].value == SECRET
    assert spec.secrets[1].value == "whsec_" + "A" * 32  # trailing newline stripped
    assert SECRET not in repr(spec)


def test_missing_env_secret_names_the_variable_not_a_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"sources": {"r": {"provider": "replicate", "secrets": [{"id": "a", "env": "NOPE_X"}]}}},
    )
    with pytest.raises(ConfigError, match=r"NOPE_X") as info:
        load_settings(path).source_specs()
    assert info.value.reason == "missing_secret"


def test_inline_secret_refused_in_production(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"sources": {"r": {"provider": "replicate", "secrets": [{"id": "a", "value": SECRET}]}}},
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path).source_specs()
    assert info.value.reason == "inline_secret"
    assert SECRET not in str(info.value)


def test_test_key_refused_in_production(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "sources": {
                "f": {"provider": "fal", "public_keys": [{"id": "t", "value": FAL_TEST_PUBLIC_X}]}
            }
        },
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path).source_specs()
    assert info.value.reason == "test_key_in_production"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"limits": {"max_in_flight": 0}}, "limits.max_in_flight"),
        ({"limitz": {}}, "limitz"),
        ({"sink": {"kind": "s3"}}, "sink.kind"),
        ({"dedupe": {"ttl_seconds": 10}, "sources": {"a": {"provider": "abstrakt"}}}, "ttl"),
        ({"sources": {"bad/name": {"provider": "abstrakt"}}}, "source name"),
        ({"sources": {"a": {"provider": "abstrakt", "secrets": [{"id": "x"}]}}}, "exactly one"),
    ],
)
def test_invalid_settings_are_config_errors(tmp_path: Path, data: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_settings(write(tmp_path, data))


def test_validation_error_never_echoes_input(tmp_path: Path) -> None:
    data = {
        "sources": {
            "a": {"provider": "abstrakt", "secrets": [{"id": "x", "value": 12, "env": SECRET}]}
        }
    }
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, data))
    assert SECRET not in str(info.value)


def test_unknown_provider_and_option_typo(tmp_path: Path) -> None:
    from adapters import build_adapter

    with pytest.raises(ConfigError, match=r"unknown_provider|not one of"):
        load_settings(write(tmp_path, {"sources": {"a": {"provider": "nope"}}})).source_specs()
    settings = load_settings(
        write(
            tmp_path,
            {
                "mode": "development",
                "sources": {
                    "a": {
                        "provider": "abstrakt",
                        "max_age_secs": 5,
                        "secrets": [{"id": "x", "value": "s"}],
                    }
                },
            },
        )
    )
    with pytest.raises(ConfigError, match="max_age_secs"):
        build_adapter(settings.source_specs()["a"])


@pytest.mark.parametrize("text", ["- a\n- b\n", "a: [unclosed\n"])
def test_unreadable_yaml(tmp_path: Path, text: str) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.reason == "config_invalid"


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings("/nonexistent/gateway.yaml")
    assert info.value.reason == "config_unreadable"
