"""Build the configured dedupe store."""

from __future__ import annotations

import asyncio

from gateway.dedupe.base import DedupeStore, StoreErrorHook
from gateway.dedupe.memory import MemoryDedupe
from gateway.settings import Settings


def build_dedupe(settings: Settings, on_error: StoreErrorHook | None = None) -> DedupeStore:
    """Resolves the Redis secrets (``ConfigError`` when one is missing); connects nothing."""
    config = settings.dedupe
    local = MemoryDedupe(config.max_entries, config.ttl_seconds)
    if config.kind == "memory" or config.redis is None:
        return local
    from gateway.dedupe.redis_client import build_client  # redis is imported only when used
    from gateway.dedupe.redis_store import RedisDedupe

    redis = config.redis
    return RedisDedupe(
        build_client(redis, allow_inline=settings.development),
        local,
        key_prefix=redis.key_prefix,
        ttl_seconds=config.ttl_seconds,
        claim_ttl_seconds=redis.claim_ttl_seconds,
        timeout_seconds=redis.timeout_seconds,
        wait_seconds=settings.limits.publish_timeout_seconds,
        retry_interval_seconds=redis.retry_interval_seconds,
        on_store_error=config.on_store_error,
        on_error=on_error,
    )


def check_dedupe(settings: Settings) -> str:
    """For ``check-config``: resolve the store's secrets and validate its URL, offline; say
    which store it is. Raises ``ConfigError``."""
    config = settings.dedupe
    if config.kind == "memory" or config.redis is None:
        return "memory"
    from gateway.dedupe.redis_client import build_client, describe

    connection = build_client(config.redis, allow_inline=settings.development)
    asyncio.run(connection.close())
    return (
        f"{describe(config.redis)}, prefix {config.redis.key_prefix!r}, "
        f"on_store_error {config.on_store_error}"
    )
