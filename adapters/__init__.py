"""Provider adapters: verify a delivery on its exact bytes, then normalize it to job facts."""

from adapters.base import (
    Adapter,
    AdapterServices,
    NamedKey,
    NamedSecret,
    Normalized,
    SourceSpec,
    Verified,
)
from adapters.errors import (
    ConfigError,
    GatewayError,
    NormalizationError,
    TemporaryError,
    VerificationError,
)
from adapters.registry import ADAPTERS, adapter_class, build_adapter

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AdapterServices",
    "ConfigError",
    "GatewayError",
    "NamedKey",
    "NamedSecret",
    "NormalizationError",
    "Normalized",
    "SourceSpec",
    "TemporaryError",
    "VerificationError",
    "Verified",
    "adapter_class",
    "build_adapter",
]
