"""The CLI's ``reconcile`` and ``expect`` commands, and ``check-config``'s reconcile lines."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime

from redis.exceptions import RedisError

from adapters import Adapter, AdapterServices, build_adapter
from gateway.errors import ExpectationRefused
from gateway.reconcile.build import build_pollers, build_store, describe, poll_checks
from gateway.reconcile.register import Registrar, parse_expectation
from gateway.settings import Settings


def run_reconcile(settings: Settings) -> int:
    from gateway.logs import configure_logging, resolved_format
    from gateway.reconcile.process import run

    configure_logging(settings.logging.level, resolved_format(settings))
    if not settings.reconcile.enabled:
        print("error: reconcile.enabled is false", file=sys.stderr)
        return 2
    return run(settings)


def run_expect(settings: Settings, args: argparse.Namespace) -> int:
    """Register one expectation in the shared store (as the topic and the endpoint do)."""
    if not settings.reconcile.enabled:
        print("error: reconcile.enabled is false", file=sys.stderr)
        return 2
    submitted = datetime.fromtimestamp(args.submitted_at or time.time(), tz=UTC)
    fields: dict[str, object] = {
        "source": args.source,
        "job_id": args.job_id,
        "submitted_at": submitted.isoformat(),
        "poll_after_seconds": args.poll_after,
        "max_wait_seconds": args.max_wait,
        "status_url": args.status_url,
        "response_url": args.response_url,
    }
    try:
        expectation = parse_expectation(
            json.dumps({k: v for k, v in fields.items() if v is not None})
        )
    except ExpectationRefused as exc:
        print(f"error: {exc.reason}: {exc.args[0]}", file=sys.stderr)
        return 2
    adapters = {
        name: build_adapter(spec, AdapterServices())
        for name, spec in settings.source_specs().items()
    }

    async def register() -> str:
        store, connection = build_store(settings)
        try:
            return await Registrar(store, poll_checks(settings, adapters)).register(
                expectation, time.time()
            )
        finally:
            await connection.close()

    try:
        result = asyncio.run(register())
    except ExpectationRefused as exc:
        print(f"error: {exc.reason}: {exc.args[0]}", file=sys.stderr)
        return 2
    except (RedisError, OSError, TimeoutError) as exc:
        print(f"error: the store is unreachable ({type(exc).__name__})", file=sys.stderr)
        return 1
    print(f"{result}: {expectation.key}")
    return 0


def check_lines(settings: Settings, adapters: dict[str, Adapter]) -> list[str]:
    """Raises ``ConfigError`` for a source whose provider has no status API."""
    return describe(settings, build_pollers(settings, adapters))
