"""A bound on the public listener's open connections: ``limits.max_connections``.

Past the bound, the gateway closes the oldest open connection that has not sent a request yet:
what a flood of idle or trickling connections holds, and never a sender's kept-alive
connection or one whose request is under way. When every other open connection has sent a
request, that oldest one is the connection just accepted, closed at once.

Why a bound (``docs/floods.md``): without one, about 2,070 idle connections used up the
descriptors the gateway secured by default, and from then on every new connection was
dropped: a sender that opens a connection per delivery was locked out for as long as the flood
was held open. The bound also caps the memory connections hold (about 6 kB each), and the
objects each of the interpreter's full garbage collections walks.

The cap hooks the aiohttp ``web.Server`` of the public runner (its ``connection_made`` and
``connection_lost`` callbacks, and its request handler to see that a connection has sent a
request); aiohttp offers no public hook per connection.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from gateway.logs import get_logger
from gateway.metrics import Metrics

log = get_logger("gateway.connection_cap")

#: At most one log line per this many seconds while connections are being closed.
LOG_EVERY_SECONDS = 60.0


class ConnectionCap:
    """Keeps at most ``limit`` connections open, closing the oldest that has sent nothing."""

    def __init__(self, limit: int, metrics: Metrics) -> None:
        self.limit = limit
        self._metrics = metrics
        self._open: set[object] = set()
        #: Connections that have not sent a request yet, oldest first (dicts keep order).
        self._waiting: dict[object, asyncio.BaseTransport] = {}
        self._closed_since_log = 0
        self._logged_at = -LOG_EVERY_SECONDS

    def install(self, server: web.Server) -> None:
        """Hook ``server`` (before it accepts its first connection)."""
        made, lost, handle = server.connection_made, server.connection_lost, server.request_handler

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self.opened(handler, transport)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            lost(handler, exc)
            self.closed(handler)

        async def request_handler(request: web.BaseRequest) -> web.StreamResponse:
            self.requested(request.protocol)
            return await handle(request)

        # Instance attributes shadow the methods: each RequestHandler calls them by name on
        # its server, and reads request_handler when it is created.
        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]
        server.request_handler = request_handler
        self._metrics.open_connections.set_function(lambda: len(self._open))

    def opened(self, handler: object, transport: asyncio.BaseTransport) -> None:
        self._open.add(handler)
        self._waiting[handler] = transport
        if len(self._open) > self.limit:
            self._close_oldest_waiting()

    def requested(self, handler: object) -> None:
        self._waiting.pop(handler, None)

    def closed(self, handler: object) -> None:
        self._open.discard(handler)
        self._waiting.pop(handler, None)

    def _close_oldest_waiting(self) -> None:
        # The connection just opened is waiting too, so there is always one to close.
        handler, transport = next(iter(self._waiting.items()))
        self.closed(handler)
        transport.close()
        self._metrics.connections_evicted.inc()
        self._closed_since_log += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            log.warning(
                "connection_cap_reached",
                limit=self.limit,
                closed=self._closed_since_log,
                message="limits.max_connections connections are open: closing the oldest "
                "that have not sent a request (a connection flood, or a limit set too low)",
            )
            self._logged_at = now
            self._closed_since_log = 0
