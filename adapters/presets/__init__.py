"""Named providers built on the declarative engine: data, not code (see ``base.py``)."""

from __future__ import annotations

from adapters.declarative.adapter import GenericAdapter
from adapters.presets import events, jobs
from adapters.presets.base import Preset, preset_adapter

PRESETS: tuple[Preset, ...] = (*events.PRESETS, *jobs.PRESETS)


def preset_adapters() -> tuple[type[GenericAdapter], ...]:
    return tuple(preset_adapter(p) for p in PRESETS)
