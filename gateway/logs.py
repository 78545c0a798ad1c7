"""Structured logs: JSON lines in production, colourless console lines in development.

Rendering happens on the event loop (it is cheap); the write to stdout happens on a background
thread, so a slow log pipe never stalls request handling. If the queue fills up, lines are
dropped and counted rather than blocking the gateway.
"""

from __future__ import annotations

import atexit
import collections
import logging
import sys
import threading
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import structlog

_LINE_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}  # fmt: skip
_LEVEL_NAMES = {value: name for name, value in _LEVELS.items()}
# Defence in depth: no code logs these, but a future one must not be able to by accident.
_FORBIDDEN_KEYS = frozenset(
    {"secret", "secrets", "signature", "authorization", "password", "body", "raw", "value"}
)


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in _FORBIDDEN_KEYS.intersection(event):
        event[key] = "[redacted]"
    return event


class QueueWriter:
    """A file-like sink for structlog that hands lines to a writer thread.

    The event loop only appends to a deque; the thread wakes every ``interval`` seconds (or
    at once when the buffer is half full) and writes what accumulated in one call. Waking the
    thread for every line cost a GIL hand-off per request (measured in bench/: see README).
    """

    def __init__(self, stream: TextIO, maxsize: int = 10_000, interval: float = 0.02) -> None:
        self._stream = stream
        self._lines: collections.deque[str] = collections.deque()
        self._maxsize = maxsize
        self._high_water = maxsize // 2
        self._interval = interval
        self._wake = threading.Event()
        self._stopping = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def write(self, text: str) -> int:
        lines = self._lines
        if len(lines) >= self._maxsize:
            self.dropped += 1
            return len(text)
        lines.append(text)  # deque.append is atomic: no lock on the event loop's path
        if len(lines) == self._high_water:
            self._wake.set()
        return len(text)

    def flush(self) -> None:
        """Lines are flushed by the writer thread."""

    def _run(self) -> None:
        lines = self._lines
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            stopping = self._stopping
            batch: list[str] = []
            while lines and len(batch) < 4096:
                batch.append(lines.popleft())
            if batch:
                try:
                    self._stream.write("".join(batch))
                    self._stream.flush()
                except (OSError, ValueError):
                    pass  # stdout closed: nothing sensible left to do with a log line
            if lines:
                self._wake.set()  # more than one batch waiting: go round again at once
            elif stopping:
                break

    def close(self, timeout: float = 2.0) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)


_writer: QueueWriter | None = None
# The per-request line, in JSON mode, skips structlog's processor chain: it is the one line
# written for every delivery, its fields are fixed and never secret, and orjson renders it
# directly (measured in bench/: see README).
_request_level: int | None = None


def request_line(level: int, event: str, fields: dict[str, Any]) -> bool:
    """Write one JSON request line directly; ``False`` if structlog must do it instead.

    ``fields`` is the caller's own dict and gets the event, level and timestamp added (placed
    last, like structlog's lines); orjson renders the timestamp itself.
    """
    if _writer is None or _request_level is None:
        return False
    if level >= _request_level:
        fields["event"] = event
        fields["level"] = _LEVEL_NAMES[level]
        fields["timestamp"] = datetime.now(tz=UTC)
        _writer.write(orjson.dumps(fields, default=str, option=_LINE_OPTIONS).decode())
    return True


class _ToStructlog(logging.Handler):
    """Send records of libraries that use stdlib logging (aiokafka, aiohttp) through structlog,
    so every line has one format."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a library's bad format string must not kill logging
            message = str(record.msg)
        structlog.get_logger(record.name).log(record.levelno, message[:500], logger=record.name)


class _RateLimit(logging.Filter):
    """At most one record per (logger, message template) every ``seconds``: while Kafka is down,
    aiokafka reports every reconnect attempt, which would otherwise flood the log."""

    def __init__(self, seconds: float = 10.0) -> None:
        super().__init__()
        self._seconds = seconds
        self._last: dict[tuple[str, object], float] = {}
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        last = self._last.get(key)
        if last is not None and record.created - last < self._seconds:
            self.suppressed += 1
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[key] = record.created
        return True


def _route_stdlib(level: int) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _ToStructlog):
            root.removeHandler(handler)
    handler = _ToStructlog()
    handler.addFilter(_RateLimit())
    root.addHandler(handler)
    # Libraries log at INFO about every connection; their warnings and errors are what matter.
    root.setLevel(max(level, logging.WARNING))


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Configure structlog once per process. ``fmt`` is ``json`` or ``console``."""
    global _writer, _request_level  # logging is process-wide by nature
    if _writer is not None:
        _writer.close()
    _writer = QueueWriter(stream or sys.stdout)
    _request_level = _LEVELS[level] if fmt == "json" else None
    atexit.register(_writer.close)
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer(
            serializer=lambda obj, **_: orjson.dumps(obj, default=str).decode()
        )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=_writer),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    _route_stdlib(_LEVELS[level])


def resolved_format(settings: Any) -> str:
    """``logging.format`` with ``auto`` resolved: console in development, JSON otherwise."""
    fmt: str = settings.logging.format
    if fmt == "auto":
        fmt = "console" if settings.development else "json"
    return fmt


def get_logger(name: str = "gateway") -> Any:
    return structlog.get_logger(name)
