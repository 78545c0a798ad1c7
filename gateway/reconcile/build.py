"""Build the reconciliation parts from settings: the store, the pollers, the check-config view."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from adapters import Adapter, ConfigError
from adapters.polling import POLLERS, PollRequest, StatusPoller, poller_for
from gateway.dedupe import DedupeStore
from gateway.dedupe.redis_client import Connection, build_client
from gateway.metrics import Metrics
from gateway.reconcile.edge import TerminalGate
from gateway.reconcile.register import Registrar
from gateway.reconcile.runner import Target
from gateway.reconcile.store import ExpectationStore
from gateway.settings import Settings


def build_store(settings: Settings) -> tuple[ExpectationStore, Connection]:
    """The expectation store on the dedupe store's Redis (its own connection pool)."""
    redis = settings.dedupe.redis
    if redis is None:  # the settings' validator requires it when reconciliation is on
        raise ConfigError("reconcile_needs_redis", "reconcile.enabled needs dedupe.kind redis")
    connection = build_client(redis, allow_inline=settings.development)
    store = ExpectationStore(
        connection.client,
        key_prefix=redis.key_prefix,
        timeout_seconds=max(redis.timeout_seconds, 1.0),
        slot_prefix=f"{redis.key_prefix}:dedupe:",
        closed_ttl_seconds=settings.dedupe.ttl_seconds,
    )
    return store, connection


def build_pollers(settings: Settings, adapters: Mapping[str, Adapter]) -> dict[str, StatusPoller]:
    """One poller per source configured with ``reconcile``; ``ConfigError`` for a provider
    without a status API, or an API key that is missing."""
    pollers: dict[str, StatusPoller] = {}
    for name, adapter in adapters.items():
        config = settings.sources[name].reconcile
        if config is None or not config.enabled:
            continue
        if adapter.provider not in POLLERS:  # before the key: the clearer error
            raise ConfigError(
                "reconcile_unsupported",
                f"source {name!r}: provider {adapter.provider!r} has no status API, so its jobs "
                f"cannot be reconciled (polling exists for {', '.join(sorted(POLLERS))})",
            )
        api_key = config.api_key.resolve(allow_inline=settings.development)
        pollers[name] = poller_for(adapter, api_key, config.base_url)
    return pollers


def build_targets(settings: Settings, pollers: Mapping[str, StatusPoller]) -> dict[str, Target]:
    return {
        name: Target(poller.adapter.event_provider, poller, settings.sources[name].topic)
        for name, poller in pollers.items()
    }


def describe(settings: Settings, pollers: Mapping[str, StatusPoller]) -> list[str]:
    """``check-config``'s lines about reconciliation (never a key)."""
    config = settings.reconcile
    if not pollers and not config.enabled:
        return []
    lines = [
        f"reconcile: {'on' if config.enabled else 'off'}, topic {config.expectations_topic}, "
        f"admin endpoint {'on' if config.admin_token else 'off'}"
    ]
    for name, poller in sorted(pollers.items()):
        lines.append(f"  reconcile {name}: poll {poller.provider} at {poller.base_url}")
    if pollers and not config.enabled:
        lines.append("  warning: sources configure reconcile but reconcile.enabled is false")
    return lines


def poll_checks(
    settings: Settings, adapters: Mapping[str, Adapter]
) -> dict[str, Callable[[PollRequest], str | None]]:
    """What the edge's admin endpoint validates with: no API key needed."""
    checks: dict[str, Callable[[PollRequest], str | None]] = {}
    for name, adapter in adapters.items():
        config = settings.sources[name].reconcile
        poller = POLLERS.get(adapter.provider)
        if config is not None and config.enabled and poller is not None:
            checks[name] = poller.check
    return checks


@dataclass(frozen=True, slots=True)
class EdgeParts:
    gate: TerminalGate
    registrar: Registrar
    connection: Connection


def build_edge(
    settings: Settings, adapters: Mapping[str, Adapter], dedupe: DedupeStore, metrics: Metrics
) -> EdgeParts:
    """The edge's terminal gate and the admin endpoint's registrar."""
    store, connection = build_store(settings)

    def on_error(operation: str, reason: str) -> None:
        metrics.child(metrics.dedupe_store_errors, operation, reason).inc()

    def on_closed(source: str, lateness: float) -> None:
        metrics.child(metrics.expectations_closed, source, "webhook").inc()
        metrics.child(metrics.webhook_lateness, source).observe(max(lateness, 0.0))

    checks = poll_checks(settings, adapters)
    gate = TerminalGate(
        store, dedupe, frozenset(checks), on_store_error=on_error, on_closed=on_closed
    )
    return EdgeParts(gate, Registrar(store, checks), connection)
