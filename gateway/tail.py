"""``events tail``: the last N lines of a JSON-lines log, optionally following it."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections import deque
from pathlib import Path


def _emit(line: bytes, pretty: bool) -> None:
    text = line.decode("utf-8", errors="replace").rstrip("\n")
    if pretty:
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    print(text, flush=True)


def tail(path: Path, *, lines: int, follow: bool, pretty: bool, poll: float = 0.25) -> int:
    if not path.exists() and not follow:
        print(f"no events yet: {path} does not exist", file=sys.stderr)
        return 1
    while not path.exists():
        time.sleep(poll)
    with path.open("rb") as handle:
        for line in deque(handle, maxlen=max(lines, 0)):
            _emit(line, pretty)
        if not follow:
            return 0
        pending = b""
        try:
            while True:
                chunk = handle.readline()
                if not chunk:
                    time.sleep(poll)
                    continue
                pending += chunk
                if pending.endswith(b"\n"):  # only whole lines: a writer may be mid-line
                    _emit(pending, pretty)
                    pending = b""
        except KeyboardInterrupt:
            return 0
