"""The explicit registry of provider adapters: adding a provider adds one line here."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from adapters.base import Adapter, AdapterServices, SourceSpec
from adapters.declarative.adapter import GenericAdapter
from adapters.errors import ConfigError
from adapters.presets import preset_adapters
from adapters.providers.abstrakt import AbstraktAdapter
from adapters.providers.aws_sns import SnsAdapter
from adapters.providers.fal import FalAdapter
from adapters.providers.gcp_pubsub import PubSubAdapter
from adapters.providers.instantapi import InstantAPIAdapter
from adapters.providers.openai import OpenAIAdapter
from adapters.providers.replicate import ReplicateAdapter
from adapters.providers.standard_webhooks import StandardWebhooksAdapter


def _build(*classes: type[Adapter]) -> Mapping[str, type[Adapter]]:
    table: dict[str, type[Adapter]] = {}
    for cls in classes:
        if cls.provider in table:
            raise RuntimeError(f"two adapters claim the provider name {cls.provider!r}")
        table[cls.provider] = cls
    return MappingProxyType(table)


ADAPTERS: Mapping[str, type[Adapter]] = _build(
    FalAdapter,
    StandardWebhooksAdapter,
    ReplicateAdapter,
    OpenAIAdapter,
    AbstraktAdapter,
    InstantAPIAdapter,
    SnsAdapter,
    PubSubAdapter,
    GenericAdapter,
    *preset_adapters(),
)


def adapter_class(provider: str) -> type[Adapter]:
    try:
        return ADAPTERS[provider]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ConfigError("unknown_provider", f"{provider!r} is not one of: {known}") from None


def build_adapter(spec: SourceSpec, services: AdapterServices | None = None) -> Adapter:
    try:
        return adapter_class(spec.provider)(spec, services)
    except ConfigError as exc:
        where = f"source {spec.name!r}"
        if where in exc.detail:
            raise
        # With many sources, an error that does not say which one is hard to act on.
        raise ConfigError(exc.reason, f"{where}: {exc.detail}") from None
