"""Run the public and admin listeners until SIGTERM/SIGINT, then shut down gracefully.

On a signal: readiness turns false (so the load balancer stops sending), the listeners stop
accepting, in-flight requests get up to ``shutdown_grace_seconds`` to finish, the sink flushes,
and the process exits 0. Nothing answered 2xx is lost: a 2xx is only ever sent after the write.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from aiohttp import web

from gateway.app import STATE, create_admin_app, create_app
from gateway.logs import get_logger
from gateway.settings import Settings

log = get_logger("gateway.server")


async def serve(settings: Settings) -> None:
    app = create_app(settings)
    admin = create_admin_app(app)
    grace = settings.limits.shutdown_grace_seconds
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=grace, handle_signals=False)
    admin_runner = web.AppRunner(admin, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await admin_runner.setup()
    site = web.TCPSite(runner, settings.listen.host, settings.listen.port, backlog=1024)
    admin_site = web.TCPSite(admin_runner, settings.admin.host, settings.admin.port)
    await site.start()
    await admin_site.start()
    log.info(
        "listening",
        webhooks=f"http://{settings.listen.host}:{_port(site)}/webhooks/{{source}}",
        admin=f"http://{settings.admin.host}:{_port(admin_site)}",
        sources=sorted(settings.sources),
        sink=settings.sink.kind,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting_down", grace_seconds=grace, in_flight=app[STATE].in_flight)
    app[STATE].shutting_down = True
    # cleanup(): stop accepting, wait for in-flight handlers (up to grace), then run the
    # cleanup contexts, which flush and close the sink.
    await runner.cleanup()
    await admin_runner.cleanup()
    log.info("stopped")


def _port(site: web.TCPSite) -> int:
    server: Any = site._server  # aiohttp exposes no public accessor for the bound port
    sockets = getattr(server, "sockets", None)
    return int(sockets[0].getsockname()[1]) if sockets else -1


def run(settings: Settings) -> int:
    loop_factory = None
    if sys.platform != "win32":
        try:
            import uvloop  # a faster event loop (measured in bench/); optional at run time

            loop_factory = uvloop.new_event_loop
        except ImportError:
            pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(settings))
    return 0
