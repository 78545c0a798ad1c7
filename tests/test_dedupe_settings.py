"""``dedupe.*`` settings: what ``check-config`` accepts, what it refuses and how it says so."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from adapters import ConfigError
from gateway.settings import Settings
from tests.gateway_process import write_config
from tests.support import example_settings, run_check_config

PASSWORD = "hunter2-redis-password"


def check(
    tmp_path: Path, dedupe: dict[str, Any], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    config, _ = write_config(tmp_path, dedupe=dedupe)
    return run_check_config(config, env or {})


def redis(**values: Any) -> dict[str, Any]:
    return {"kind": "redis", "redis": values}


def test_memory_is_the_default() -> None:
    settings = Settings()
    assert settings.dedupe.kind == "memory"
    assert settings.dedupe.on_store_error == "publish"
    assert settings.dedupe.redis is None


def test_check_config_accepts_a_standalone_redis_and_never_prints_the_url(
    tmp_path: Path,
) -> None:
    url = f"redis://:{PASSWORD}@redis.internal:6379/2"
    dedupe = redis(url={"id": "redis-url", "env": "REDIS_URL"}, key_prefix="prod-eu")
    result = check(tmp_path, dedupe, {"REDIS_URL": url})
    assert result.returncode == 0, result.stderr
    assert "dedupe: redis standalone (url from secret redis-url), prefix 'prod-eu'" in result.stdout
    assert "on_store_error publish" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    assert "redis.internal" not in result.stdout


def test_check_config_refuses_redis_cluster_clearly(tmp_path: Path) -> None:
    result = check(tmp_path, redis(topology="cluster", url={"id": "r", "value": "redis://x"}))
    assert result.returncode == 2
    assert "Redis Cluster is not supported" in result.stderr
    assert "sentinel" in result.stderr  # says what to use instead


@pytest.mark.parametrize(
    ("dedupe", "env", "complaint"),
    [
        (redis(url={"id": "redis-url", "env": "REDIS_URL"}), {}, "$REDIS_URL is not set"),
        (redis(url={"id": "r", "env": "U"}), {"U": f"http://:{PASSWORD}@h:1"}, "expected redis://"),
        (redis(url={"id": "r", "env": "U"}), {"U": f"redis://:{PASSWORD}@/0"}, "expected redis://"),
        ({"kind": "redis"}, {}, "dedupe.kind redis needs dedupe.redis"),
        (redis(), {}, "topology standalone needs url"),
        (redis(topology="sentinel", url={"id": "r", "env": "U"}), {}, "topology sentinel needs"),
        (
            redis(topology="sentinel", sentinel={"hosts": ["s1"], "service_name": "m"}),
            {},
            "'s1' is not host:port",
        ),
        (
            redis(
                url={"id": "r", "env": "U"},
                tls={"client_cert": {"id": "c", "env": "C"}, "client_key": {"id": "k", "env": "K"}},
            ),
            {},
            "tls.client_cert: give a file",
        ),
        (
            redis(url={"id": "r", "env": "U"}, tls={"client_key": {"id": "k", "file": "/k"}}),
            {},
            "set both client_cert and client_key",
        ),
        (
            redis(url={"id": "r", "env": "U"}, claim_ttl_seconds=5),
            {"U": "redis://h:1"},
            "must be longer than limits.publish_timeout_seconds",
        ),
        ({"kind": "redis", "on_store_error": "drop"}, {}, "on_store_error"),
        (redis(url={"id": "r", "env": "U"}, key_prefix="has space"), {}, "key_prefix"),
    ],
)
def test_check_config_refuses(
    tmp_path: Path, dedupe: dict[str, Any], env: dict[str, str], complaint: str
) -> None:
    result = check(tmp_path, dedupe, env)
    assert result.returncode == 2, result.stdout
    assert complaint in result.stderr
    assert PASSWORD not in result.stderr


def test_inline_url_is_for_development_only() -> None:
    inline = redis(url={"id": "r", "value": f"redis://:{PASSWORD}@h:6379/0"})
    settings = example_settings(dedupe=inline, mode="production")
    from gateway.dedupe.factory import check_dedupe

    with pytest.raises(ConfigError) as caught:
        check_dedupe(settings)
    assert caught.value.reason == "inline_secret"
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(settings.dedupe)
    assert check_dedupe(example_settings(dedupe=inline)).startswith("redis standalone")


def test_sentinel_settings_describe_the_topology() -> None:
    from gateway.dedupe.factory import check_dedupe

    settings = example_settings(
        dedupe=redis(
            topology="sentinel",
            sentinel={"hosts": ["s1:26379", "[::1]:26380"], "service_name": "dedupe",
                      "password": {"id": "sentinel", "value": PASSWORD}},
            password={"id": "master", "value": PASSWORD},
            db=3,
        )
    )  # fmt: skip
    described = check_dedupe(settings)
    assert described.startswith("redis sentinel dedupe via s1:26379, [::1]:26380, db 3")
    assert PASSWORD not in described
