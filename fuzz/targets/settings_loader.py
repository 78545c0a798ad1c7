"""``load_settings`` on fuzzed YAML, then what ``check-config`` does with the result.

Invariant: a configuration is either loaded or refused with ``ConfigError``; resolving its
secrets and building its adapters raises ``ConfigError`` only. Secrets read from files are
not followed (a fuzzed path could name a device that never ends); environment references are
(the harness runs with an environment that has none of them set, so they fail cleanly).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from adapters import AdapterServices, ConfigError, build_adapter
from gateway.settings import Settings, load_settings

_DIR = Path(tempfile.mkdtemp(prefix="fuzz-settings-"))
_PATH = _DIR / "gateway.yaml"


async def _no_fetch(url: str) -> bytes:
    raise ConfigError("offline", "no fetching while fuzzing")


def _reads_files(settings: Settings) -> bool:
    if settings.sink.kafka.sasl_password is not None and settings.sink.kafka.sasl_password.file:
        return True
    return any(s.file is not None for src in settings.sources.values() for s in src.secrets)


def one_input(data: bytes) -> None:
    _PATH.write_bytes(data)
    try:
        settings = load_settings(_PATH)
    except ConfigError:
        return
    if _reads_files(settings):
        return
    try:
        specs = settings.source_specs()
        for spec in specs.values():
            build_adapter(spec, AdapterServices(fetcher=_no_fetch))
    except ConfigError:
        return


def clean_environment() -> None:
    """No ``WEBHOOK_GATEWAY_*`` override may change what an input means."""
    for name in list(os.environ):
        if name.startswith("WEBHOOK_GATEWAY_"):
            del os.environ[name]
