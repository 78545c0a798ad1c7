"""``webhook-gateway reconcile``: the reconciler process, built from the gateway's settings.

It reads the expectations topic (Kafka sink), polls for due jobs, publishes through the same
sink as the edge, and serves ``/metrics`` and ``/healthz`` on ``reconcile.metrics_port``.
Everything it knows is in Redis and Kafka: SIGKILL loses nothing, a restart goes on, and any
number of instances share the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters import AdapterServices, build_adapter
from gateway.dedupe import build_dedupe
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.reconcile.build import build_pollers, build_store, build_targets
from gateway.reconcile.http import HttpClient
from gateway.reconcile.intake import ExpectationIntake
from gateway.reconcile.register import Registrar
from gateway.reconcile.runner import Reconciler
from gateway.settings import Settings
from gateway.sinks.factory import build_sink

log = get_logger("gateway.reconcile")


async def reconcile(
    settings: Settings,
    stop: asyncio.Event,
    *,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.time,
    started: Callable[[Reconciler], None] | None = None,
) -> None:
    """Run until ``stop`` is set."""
    metrics = metrics or Metrics()
    adapters = {
        name: build_adapter(spec, AdapterServices())
        for name, spec in settings.source_specs().items()
    }
    pollers = build_pollers(settings, adapters)
    sink = build_sink(settings)
    dedupe = build_dedupe(
        settings, lambda op, reason: metrics.child(metrics.dedupe_store_errors, op, reason).inc()
    )
    store, connection = build_store(settings)
    config = settings.reconcile
    http = HttpClient(config.http_timeout_seconds)
    reconciler = Reconciler(
        build_targets(settings, pollers),
        store,
        dedupe,
        sink,
        metrics,
        config,
        http.get,
        publish_timeout_seconds=settings.limits.publish_timeout_seconds,
        clock=clock,
    )
    admin = web.Application()

    async def metrics_handler(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "sink": sink.ready()})

    admin.router.add_get("/metrics", metrics_handler)
    admin.router.add_get("/healthz", healthz)
    runner = web.AppRunner(admin, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.admin.host, config.metrics_port)
    await sink.start()
    await dedupe.start()
    await http.start()
    tasks: list[asyncio.Task[None]] = []
    try:
        await site.start()
        tasks.append(asyncio.create_task(reconciler.run(stop)))
        if settings.sink.kind == "kafka":
            intake = ExpectationIntake(
                settings.sink.kafka,
                config,
                Registrar(store, {name: p.check for name, p in pollers.items()}),
                sink,
                metrics,
                clock,
            )
            tasks.append(asyncio.create_task(intake.run(stop)))
        log.info("reconciler_started", sources=sorted(pollers), port=config.metrics_port)
        if started is not None:
            started(reconciler)
        await stop.wait()
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await runner.cleanup()
        await http.close()
        await sink.close()
        await dedupe.close()
        await connection.close()
        log.info("reconciler_stopped")


def run(settings: Settings) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await reconcile(settings, stop)

    asyncio.run(main())
    return 0
