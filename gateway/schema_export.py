"""Generate the JSON Schema files from the pydantic models (the models are the source of truth)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas import DeadLetter, JobEvent, JobExpectation, WebhookEvent

FILES: dict[str, type[BaseModel]] = {
    "job_event.v1.schema.json": JobEvent,
    "dead_letter.v1.schema.json": DeadLetter,
    "webhook_event.v1.schema.json": WebhookEvent,
    "job_expectation.v1.schema.json": JobExpectation,
}


def render(model: type[BaseModel], name: str) -> str:
    schema = model.model_json_schema(mode="serialization")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://webhook-gateway.dev/schemas/{name}",
        **schema,
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in FILES.items():
        path = directory / name
        path.write_text(render(model, name), encoding="utf-8")
        written.append(path)
    return written


def check_schemas(directory: Path) -> list[str]:
    """Names of the files that are missing or differ from what the models generate."""
    drift = []
    for name, model in FILES.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render(model, name):
            drift.append(name)
    return drift
