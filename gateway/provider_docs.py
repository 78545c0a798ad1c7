"""``docs/providers.md``, generated from the registry: each adapter's ``info`` is its row.

The file is written by ``webhook-gateway docs`` and checked for drift by the tests, like the
JSON Schema files, so the table can never disagree with the code. The same command keeps the
Helm chart's list of provider names (``values.schema.json``) equal to the registry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters import ADAPTERS

HEADER = """# Providers

Generated from the adapter registry by `webhook-gateway docs`; do not edit by hand (a test fails
when this file and the code disagree). Configure a source with `provider: <name>` and its
secret; every preset's blocks can be overridden per source (see `configuration.md`).

"""

COLUMNS = (
    "`provider:`",
    "provider",
    "events",
    "scheme",
    "headers",
    "delivery id (dedupe)",
    "replay window",
    "retries",
    "checked against",
    "notes",
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    rows = []
    for name in sorted(ADAPTERS):
        info = ADAPTERS[name].info
        if info is None:
            raise RuntimeError(f"adapter {name!r} has no ProviderInfo")
        cells = (
            f"`{name}`",
            info.title,
            info.kind,
            info.scheme,
            info.headers,
            info.delivery_id,
            info.replay_window,
            info.retries,
            info.oracle,
            info.notes,
        )
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    count = f"{len(ADAPTERS)} providers (including `generic`).\n\n"
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    return HEADER + count + head + "\n".join(rows) + "\n"


def write(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(), encoding="utf-8")


def drifted(path: Path) -> bool:
    return not path.is_file() or path.read_text(encoding="utf-8") != render()


def _chart_schema(path: Path) -> tuple[str, dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return text, document


def chart_with_providers(path: Path) -> str:
    """The chart's values schema with the provider enum set to the registry's names."""
    _, document = _chart_schema(path)
    document["definitions"]["source"]["properties"]["provider"]["enum"] = sorted(ADAPTERS)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_chart(path: Path) -> None:
    path.write_text(chart_with_providers(path), encoding="utf-8")


def chart_drifted(path: Path) -> bool:
    return _chart_schema(path)[0] != chart_with_providers(path)
