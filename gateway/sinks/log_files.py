"""The files of one embedded log, and reading them back whole.

A log named ``events.jsonl`` is appended to that file (the active segment). Rotation renames it
to ``events.000001.jsonl``, ``events.000002.jsonl``, ...: numbers only grow, so their order is
the order of writing even when the clock moves. Readers (``events tail``, ``dead-letters
replay``, the tests) go through the rotated segments oldest first, then the active file.

A reader may meet two damaged shapes, both left by a process killed in the middle of a write:

* a last line without its newline (torn; or simply still being written): it was never
  acknowledged, and is left out;
* a line where an older writer appended a whole record to such a fragment: the record is
  recovered from where it starts, so an acknowledged event is never hidden by the fragment.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path

#: Every record the gateway writes (job event, webhook event, dead letter) starts with this.
RECORD_START = b'{"schema_version":'


def split_name(name: str) -> tuple[str, str]:
    """``events.jsonl`` -> (``events``, ``.jsonl``)."""
    stem, dot, suffix = name.rpartition(".")
    return (stem, dot + suffix) if stem else (name, "")


def rotated_name(name: str, number: int) -> str:
    stem, suffix = split_name(name)
    return f"{stem}.{number:06d}{suffix}"


def rotated_segments(directory: Path, name: str) -> list[tuple[int, Path]]:
    """The rotated segments of the log ``name`` in ``directory``, oldest first."""
    stem, suffix = split_name(name)
    prefix = stem + "."
    found: list[tuple[int, Path]] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(suffix)):
            continue
        number = entry.name[len(prefix) : len(entry.name) - len(suffix)]
        if number.isascii() and number.isdigit():
            found.append((int(number), Path(entry.path)))
    return sorted(found)


def segments(directory: Path, name: str) -> list[Path]:
    """Every file of the log, oldest first: the rotated segments, then the active file."""
    paths = [path for _, path in rotated_segments(directory, name)]
    active = directory / name
    if active.exists():
        paths.append(active)
    return paths


def complete_lines(path: Path) -> Iterator[bytes]:
    """The newline-terminated lines of one file; a last line without newline is left out.

    A file that retention deleted meanwhile reads as empty.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        for line in handle:
            if line.endswith(b"\n"):
                yield line


def log_lines(directory: Path, name: str) -> Iterator[bytes]:
    """Every whole line of the log, oldest first, across its segments."""
    for path in segments(directory, name):
        yield from complete_lines(path)


def last_lines(directory: Path, name: str, count: int) -> list[bytes]:
    """The last ``count`` whole lines of the log, across segments, oldest first."""
    if count <= 0:
        return []
    collected: deque[bytes] = deque()
    for path in reversed(segments(directory, name)):
        tail = deque(complete_lines(path), maxlen=count - len(collected))
        collected.extendleft(reversed(tail))
        if len(collected) >= count:
            break
    return list(collected)


def recover(line: bytes) -> bytes | None:
    """The JSON record in ``line`` (without its newline), or ``None`` if it holds none.

    ``json`` rather than orjson on purpose: records keep integers beyond 64 bits exactly, which
    orjson refuses. Only damaged lines are searched further, so the cost stays on them.
    """
    body = line.rstrip(b"\r\n")
    if not body.strip():
        return None
    if _parses(body):
        return body
    start = body.find(RECORD_START, 1)
    while start != -1:
        if _parses(body[start:]):
            return body[start:]
        start = body.find(RECORD_START, start + 1)
    return None


def _parses(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return False
    return True


def log_records(directory: Path, name: str) -> Iterator[bytes | None]:
    """Each line of the log as its record, or ``None`` for a line that holds none."""
    for line in log_lines(directory, name):
        if line.strip():
            yield recover(line)
