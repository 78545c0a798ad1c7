"""The public listener's open connections: a bound (``limits.max_connections``) and the
deadline for a connection's first request headers (``limits.header_timeout_seconds``).

Past the bound, the gateway closes the oldest open connection that has not sent a request yet:
what a flood of idle or trickling connections holds, and never a sender's kept-alive
connection or one whose request is under way. When every other open connection has sent a
request, that oldest one is the connection just accepted, closed at once.

Why a bound (``docs/floods.md``): without one, about 2,070 idle connections used up the
descriptors the gateway secured by default, and from then on every new connection was
dropped: a sender that opens a connection per delivery was locked out for as long as the flood
was held open. The bound also caps the memory connections hold.

Connections are known by their transport: a connection is accepted as a
``PendingConnection`` (``gateway/pending_connection.py``) and handed to an aiohttp handler once
its headers are in, and it keeps its place (its age) across the hand-over. The first request's
deadline counts from the accept, for both: one timer for every connection, fired at the oldest
deadline, instead of one per connection. Later requests on a kept-alive connection are under
aiohttp's keep-alive timer.

The cap also hooks the aiohttp ``web.Server`` of the public runner (``connection_made`` and
``connection_lost``, and the request handler to see that a connection has sent a request);
aiohttp offers no public hook per connection.
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
    """Keeps at most ``limit`` connections open, closing the oldest that has sent nothing, and
    closes a connection whose first request has not arrived ``header_timeout`` after it opened."""

    def __init__(self, limit: int, metrics: Metrics, header_timeout: float | None = None) -> None:
        self.limit = limit
        self.header_timeout = header_timeout
        self._metrics = metrics
        self._open: set[asyncio.BaseTransport] = set()
        #: Connections that have not sent a request yet, oldest first (dicts keep order), with
        #: the loop time by which they must have.
        self._waiting: dict[asyncio.BaseTransport, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._closed_since_log = 0
        self._logged_at = -LOG_EVERY_SECONDS

    def install(self, server: web.Server) -> None:
        """Hook ``server`` (before it accepts its first connection)."""
        made, lost, handle = server.connection_made, server.connection_lost, server.request_handler

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self.opened(transport)  # a no-op for a pending connection handed over

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            transport = handler.transport  # still set: the server hears of the loss first
            lost(handler, exc)
            if transport is not None:
                self.closed(transport)

        async def request_handler(request: web.BaseRequest) -> web.StreamResponse:
            transport = request.transport
            if transport is not None:
                self.requested(transport)
            return await handle(request)

        # Instance attributes shadow the methods: each RequestHandler calls them by name on
        # its server, and reads request_handler when it is created.
        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]
        server.request_handler = request_handler
        self._metrics.open_connections.set_function(lambda: len(self._open))

    def opened(self, transport: asyncio.BaseTransport) -> None:
        if transport in self._open:
            return
        self._open.add(transport)
        loop = asyncio.get_running_loop()
        self._waiting[transport] = deadline = loop.time() + (self.header_timeout or 0.0)
        if self.header_timeout is not None and self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)
        if len(self._open) > self.limit:
            self._close_oldest_waiting()

    def requested(self, transport: asyncio.BaseTransport) -> None:
        self._waiting.pop(transport, None)

    def closed(self, transport: asyncio.BaseTransport) -> None:
        self._open.discard(transport)
        self._waiting.pop(transport, None)

    def close_waiting(self) -> int:
        """Close every connection that has not sent a request (shutdown); return how many."""
        waiting = list(self._waiting)
        for transport in waiting:
            self.closed(transport)
            transport.close()
        return len(waiting)

    def _expire(self) -> None:
        """Close the connections past their header deadline, oldest first; re-arm for the next."""
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        waiting = self._waiting
        while waiting:
            transport, deadline = next(iter(waiting.items()))
            if deadline > now:
                self._timer = loop.call_at(deadline, self._expire)
                return
            self.closed(transport)
            transport.close()

    def _close_oldest_waiting(self) -> None:
        # The connection just opened is waiting too, so there is always one to close.
        transport = next(iter(self._waiting))
        self.closed(transport)
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
