"""Sample deliveries per provider, as templates, for ``webhook-gateway send --example``."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources


def names(provider: str) -> list[str]:
    folder = resources.files(__name__) / provider
    if not folder.is_dir():
        return []
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def render(provider: str, name: str, *, job_id: str, now: int) -> bytes:
    """The example body with a fresh job id and the current time filled in."""
    if name not in names(provider):
        known = ", ".join(names(provider)) or "none"
        raise KeyError(f"no example {name!r} for {provider}; known: {known}")
    template = (resources.files(__name__) / provider / f"{name}.json").read_text("utf-8")
    return render_text(template, job_id=job_id, now=now)


def render_text(template: str, *, job_id: str, now: int) -> bytes:
    """Fill ``{{job_id}}``, ``{{now}}`` (Unix seconds), ``{{now_ms}}`` and ``{{now_iso}}``."""
    iso = datetime.fromtimestamp(now, tz=UTC).isoformat().replace("+00:00", "Z")
    text = template.rstrip("\n").replace("{{job_id}}", job_id)
    text = text.replace("{{now_iso}}", iso).replace("{{now_ms}}", str(now * 1000))
    return text.replace("{{now}}", str(now)).encode()
