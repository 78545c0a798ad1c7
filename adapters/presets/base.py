"""A preset is a named provider whose scheme, mapping and handshakes are data for the engine.

``provider: github`` plus a secret is then a complete source; every block can still be
overridden per source (the source's options are merged over the preset's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import ProviderInfo
from adapters.declarative.adapter import GenericAdapter


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    info: ProviderInfo
    options: Mapping[str, Any]


def preset_adapter(preset: Preset) -> type[GenericAdapter]:
    """An adapter class for ``preset``, registered under its name like any code adapter."""
    class_name = "".join(part.capitalize() for part in preset.name.replace(".", "-").split("-"))
    return type(
        f"{class_name}Preset",
        (GenericAdapter,),
        {
            "provider": preset.name,
            "info": preset.info,
            "preset_options": preset.options,
            "__doc__": f"{preset.info.title}: a preset of the declarative engine.",
        },
    )
