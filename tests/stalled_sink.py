"""``webhook-gateway`` whose Kafka publishes never finish: an owner that dies mid-write.

``python -m tests.stalled_sink serve --config F`` runs the real gateway (HTTP, pipeline, Redis
claim) with ``KafkaSink.publish`` waiting forever, so a test can SIGKILL it while it holds a
claim that it will never commit or release.
"""

from __future__ import annotations

import asyncio

from gateway import cli
from gateway.sinks.kafka import KafkaSink


async def _never(self: KafkaSink, *_: object, **__: object) -> None:
    await asyncio.Event().wait()


if __name__ == "__main__":
    KafkaSink.publish = _never  # type: ignore[method-assign]
    raise SystemExit(cli.main())
