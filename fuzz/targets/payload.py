"""``parse_json`` on arbitrary bytes: a value or ``NormalizationError``, and the two parsing
paths (orjson, and the exact one for long integers) agree on what they accept."""

from __future__ import annotations

import json
import math
from typing import Any

from adapters.errors import NormalizationError
from adapters.primitives.payload import parse_json


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _finite(v) for k, v in value.items())
    return value is None or isinstance(value, str | int | bool)


def one_input(data: bytes) -> None:
    try:
        value = parse_json(data)
    except NormalizationError as exc:
        if exc.reason != "invalid_json":
            raise AssertionError(f"unexpected reason {exc.reason!r}") from exc
        return
    if not _finite(value):
        raise AssertionError("parse_json returned a value JSON cannot hold (NaN, Infinity)")
    # What was accepted is JSON, and reads back the same.
    if json.loads(json.dumps(value)) != value:
        raise AssertionError("parse_json returned a value that does not round-trip")
