"""Parsing and field helpers for normalizers: lenient for optional fields, strict otherwise."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from adapters.errors import NormalizationError
from schemas import JobStatus, Output, OutputKind

# orjson is several times faster than the standard library, but it silently turns integers
# beyond 64 bits into floats. A run of 20 or more digits is the only way such a number can
# appear, so only those bodies take the exact (slower) standard-library path.
_LONG_DIGITS = re.compile(rb"[0-9]{20,}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes) -> Any:
    try:
        if _LONG_DIGITS.search(raw) is None:
            return orjson.loads(raw)
        # Accept exactly what the fast path accepts (UTF-8 only, no BOM, no lone surrogates, no
        # number that overflows a double), then parse again keeping long integers exact.
        orjson.loads(raw)
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise NormalizationError("invalid_json", "body is not valid UTF-8 JSON") from exc


def parse_object(raw: bytes) -> dict[str, Any]:
    payload = parse_json(raw)
    if not isinstance(payload, dict):
        raise NormalizationError("unexpected_shape", "body is not a JSON object")
    return payload


def dig(payload: Any, *path: str) -> Any:
    """``payload[a][b]...`` or ``None`` when any step is missing or not an object."""
    node = payload
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def require_str(payload: Any, *path: str) -> str:
    value = dig(payload, *path)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise NormalizationError("missing_field", f"{'.'.join(path)} is missing or not a string")
    return value


def opt_str(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def opt_number(value: Any) -> float | None:
    """A non-negative finite number, or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range (parse_json keeps them exactly)
        return None
    if number != number or number in (float("inf"), float("-inf")) or number < 0:
        return None
    return number


def opt_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def opt_datetime(value: Any) -> datetime | None:
    """ISO-8601 text or Unix seconds to an aware UTC datetime; anything else is ``None``."""
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    number = opt_number(value)
    if number is not None and number < 1e11:  # seconds, not milliseconds
        return datetime.fromtimestamp(number, tz=UTC)
    return None


def map_status(value: Any, table: Mapping[str, JobStatus], field: str = "status") -> JobStatus:
    if isinstance(value, str) and value in table:
        return table[value]
    raise NormalizationError("unknown_status", f"{field} {str(value)[:40]!r} is not one we map")


# Extension table kept in code: the system's mimetypes database differs between machines, and
# the kind of an output must not depend on where the gateway runs.
_EXTENSIONS: dict[str, str] = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
    "gif": "image/gif", "bmp": "image/bmp", "tif": "image/tiff", "tiff": "image/tiff",
    "svg": "image/svg+xml", "avif": "image/avif", "heic": "image/heic",
    "mp4": "video/mp4", "webm": "video/webm", "mov": "video/quicktime", "mkv": "video/x-matroska",
    "mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg", "flac": "audio/flac",
    "m4a": "audio/mp4", "aac": "audio/aac", "opus": "audio/opus",
    "txt": "text/plain", "md": "text/markdown", "csv": "text/csv", "json": "application/json",
    "jsonl": "application/jsonl", "pdf": "application/pdf", "zip": "application/zip",
    "glb": "model/gltf-binary", "obj": "model/obj", "safetensors": "application/octet-stream",
    "tar": "application/x-tar",
}  # fmt: skip
_KIND_BY_MAJOR = {
    "image": OutputKind.IMAGE, "video": OutputKind.VIDEO, "audio": OutputKind.AUDIO,
    "text": OutputKind.TEXT,
}  # fmt: skip


def guess_content_type(url: str) -> str | None:
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    name = path.rsplit("/", 1)[-1]
    if "." not in name:
        return None
    return _EXTENSIONS.get(name.rsplit(".", 1)[-1].lower())


def kind_of(content_type: str | None, hint: str | None = None) -> OutputKind:
    if hint:
        try:
            return OutputKind(hint.lower())
        except ValueError:
            pass
    if content_type:
        major = content_type.split("/", 1)[0].strip().lower()
        return _KIND_BY_MAJOR.get(major, OutputKind.FILE)
    return OutputKind.FILE


def make_output(
    url: str,
    *,
    content_type: Any = None,
    kind_hint: Any = None,
    file_name: Any = None,
    size_bytes: Any = None,
    width: Any = None,
    height: Any = None,
) -> Output:
    ctype = opt_str(content_type) or guess_content_type(url)
    return Output(
        url=url,
        content_type=ctype,
        kind=kind_of(ctype, opt_str(kind_hint)),
        file_name=opt_str(file_name),
        size_bytes=opt_int(size_bytes),
        width=opt_int(width),
        height=opt_int(height),
    )


def is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://", "data:"))


def output_from_url_or_item(item: Any) -> Output | None:
    """A bare URL string, or an object with a ``url`` and optional file metadata."""
    if is_url(item):
        return make_output(item)
    if isinstance(item, Mapping) and is_url(item.get("url")):
        return make_output(
            item["url"],
            content_type=item.get("content_type") or item.get("mime_type"),
            kind_hint=item.get("type") or item.get("kind"),
            file_name=item.get("file_name") or item.get("filename"),
            size_bytes=item.get("file_size") or item.get("size_bytes") or item.get("size"),
            width=item.get("width"),
            height=item.get("height"),
        )
    return None


MAX_OUTPUTS = 1000
_MAX_DEPTH = 32


def walk_file_objects(node: Any, depth: int = 0) -> Iterator[Output]:
    """Every object in ``node`` that looks like a file (a URL plus file metadata), in order."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, Mapping):
        if is_url(node.get("url")) and any(
            k in node for k in ("content_type", "file_name", "file_size", "width", "height")
        ):
            out = output_from_url_or_item(node)
            if out is not None:
                yield out
            return
        for value in node.values():
            yield from walk_file_objects(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from walk_file_objects(value, depth + 1)


def collect_outputs(items: Any) -> tuple[Output, ...]:
    """Outputs from a provider's ``output``: a URL, a list of URLs or items, or one item."""
    if items is None:
        return ()
    candidates = items if isinstance(items, list) else [items]
    found = (output_from_url_or_item(i) for i in candidates[:MAX_OUTPUTS])
    return tuple(o for o in found if o is not None)
