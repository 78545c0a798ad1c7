"""Run the public and admin listeners until SIGTERM/SIGINT, then shut down gracefully.

On a signal: readiness turns false (so the load balancer stops sending), the listeners stop
accepting, in-flight requests get up to ``shutdown_grace_seconds`` to finish, the sink flushes,
and the process exits 0. Nothing answered 2xx is lost: a 2xx is only ever sent after the write.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from typing import Any

from aiohttp import web

from gateway import fd_limit
from gateway.app import METRICS, STATE, create_admin_app, create_app
from gateway.connection_cap import ConnectionCap
from gateway.errors import ConfigError
from gateway.logs import get_logger
from gateway.pending_connection import PendingSite
from gateway.settings import Settings

log = get_logger("gateway.server")


async def serve(settings: Settings, *, worker: int = 0, workers: int = 1) -> None:
    _check_fd_limit(settings)
    app = create_app(settings)
    admin = create_admin_app(app)
    grace = settings.limits.shutdown_grace_seconds
    # The first request's headers are due header_timeout after the accept (the cap's timer);
    # aiohttp's keep-alive timer, the same length, holds every later request to it.
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=grace,
        handle_signals=False,
        keepalive_timeout=settings.limits.header_timeout_seconds,
    )
    admin_runner = web.AppRunner(admin, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await admin_runner.setup()
    assert runner.server is not None  # set by setup()
    cap = ConnectionCap(
        fd_limit.max_connections(settings.limits),
        app[METRICS],
        header_timeout=settings.limits.header_timeout_seconds,
    )
    cap.install(runner.server)
    # With several workers, the kernel spreads connections over processes bound to one port
    # (SO_REUSEPORT); each worker has its own admin port (admin.port + worker index), so each
    # can be probed and scraped on its own.
    site = PendingSite(
        runner,
        cap,
        settings.listen.host,
        settings.listen.port,
        backlog=fd_limit.LISTEN_BACKLOG,
        reuse_port=workers > 1 or None,
    )
    admin_site = web.TCPSite(admin_runner, settings.admin.host, settings.admin.port + worker)
    await site.start()
    await admin_site.start()
    frozen = _freeze_startup_objects()
    log.info(
        "listening",
        webhooks=f"http://{settings.listen.host}:{_port(site)}/webhooks/{{source}}",
        admin=f"http://{settings.admin.host}:{_port(admin_site)}",
        sources=sorted(settings.sources),
        sink=settings.sink.kind,
        worker=worker,
        workers=workers,
        frozen_objects=frozen,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting_down", grace_seconds=grace, in_flight=app[STATE].in_flight)
    app[STATE].draining = True  # /readyz false; requests are still served
    if settings.limits.drain_delay_seconds:
        await asyncio.sleep(settings.limits.drain_delay_seconds)
    app[STATE].shutting_down = True
    cap.close_waiting()  # connections that never sent a request: nothing to wait for
    # cleanup(): stop accepting, wait for in-flight handlers (up to grace), then run the
    # cleanup contexts, which flush and close the sink.
    await runner.cleanup()
    await admin_runner.cleanup()
    log.info("stopped")


def _freeze_startup_objects() -> int:
    """Keep what startup built (settings, adapters, compiled schemes, the app, the sink) out of
    the cyclic garbage collector's full passes, and return how many objects that is.

    They live as long as the process, yet a full collection walks every one of them: the
    longest pass while a connection flood was being accepted took 64 ms, a stall for every
    request in flight, against 26 ms frozen (docs/floods.md). What startup built and later
    drops is still freed by reference counting; only a reference cycle among those objects
    would never be collected, a bounded cost paid at most once.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _check_fd_limit(settings: Settings) -> None:
    cap_warning = fd_limit.cap_below_in_flight(settings.limits)
    if cap_warning is not None:
        log.warning("connection_cap_below_in_flight", message=cap_warning)
    before = fd_limit.current(settings.limits)
    after = fd_limit.raise_soft_limit(settings.limits)
    if after.enough and not before.enough:
        log.info("fd_limit_raised", soft_limit=after.soft, was=before.soft, needed=after.needed)
    elif not after.enough:
        log.warning(
            "fd_limit_low",
            soft_limit=after.soft,
            hard_limit=after.hard,
            needed=after.needed,
            message=after.describe()
            + ": raise it (ulimit -n, LimitNOFILE=, the container runtime's nofile) "
            "or lower limits.max_in_flight or limits.max_connections",
        )


def _port(site: web.TCPSite) -> int:
    server: Any = site._server  # aiohttp exposes no public accessor for the bound port
    sockets = getattr(server, "sockets", None)
    return int(sockets[0].getsockname()[1]) if sockets else -1


def run(settings: Settings, workers: int = 1) -> int:
    """Serve in this process, or with ``workers > 1`` in that many child processes."""
    if workers > 1:
        if settings.sink.kind == "local":
            # One process writes a local log (docs/local-log.md): say so before forking,
            # rather than let every worker but one die on the directory's lock.
            raise ConfigError(
                "local_sink_one_worker",
                "the local log has one writer: serve with --workers 1, or use the Kafka sink",
            )
        return _run_workers(settings, workers)
    return _run_one(settings, 0, 1)


def _run_one(settings: Settings, worker: int, workers: int) -> int:
    loop_factory = None
    if sys.platform != "win32":
        try:
            import uvloop  # a faster event loop (measured in bench/); optional at run time

            loop_factory = uvloop.new_event_loop
        except ImportError:
            pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(settings, worker=worker, workers=workers))
    return 0


def _worker_main(settings: Settings, worker: int, workers: int, log_level: str, fmt: str) -> None:
    from gateway.logs import configure_logging

    configure_logging(log_level, fmt)
    raise SystemExit(_run_one(settings, worker, workers))


def _run_workers(settings: Settings, workers: int) -> int:
    """Start ``workers`` processes sharing the public port; forward SIGTERM/SIGINT to them.

    With in-memory dedupe each worker dedupes on its own, so a redelivery landing on another
    worker can be published twice (the at-least-once contract of several replicas; consumers
    dedupe by event_id); ``dedupe.kind: redis`` shares one store between them.
    """
    import multiprocessing

    from gateway.logs import resolved_format

    ctx = multiprocessing.get_context("spawn")
    fmt = resolved_format(settings)
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(settings, i, workers, settings.logging.level, fmt),
            name=f"webhook-gateway-worker-{i}",
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in procs:
        proc.join()
    codes = [proc.exitcode for proc in procs]
    if not stopping:
        log.error("worker_exited", exit_codes=codes)
        return 1
    return 0 if all(code == 0 for code in codes) else 1
