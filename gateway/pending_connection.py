"""Accept a connection for a few bytes of memory; build aiohttp's handler once its headers are in.

aiohttp builds, for every connection it accepts, a protocol with its HTTP parser, a keep-alive
timer and a task that waits for the first request: about 50 to 60 µs of the event loop's time
per connection, and a burst of a flood's connections is accepted in one loop turn, a stall for
every delivery in flight (``docs/floods.md``). A connection that sends nothing, or trickles its
headers a byte at a time, never needs any of it. So the public listener accepts each connection
as a ``PendingConnection``, which keeps the bytes received so far and looks for the blank line
that ends the headers; only then (or past ``HAND_OVER_BYTES``, for aiohttp to refuse what is
not HTTP) does it build the handler, give it the transport and the bytes, and step aside. A
sender's request, which arrives whole in its first segment, is handed over in the same turn.

The connection cap and the first request's deadline (``gateway/connection_cap.py``) count a
pending connection like any other.
"""

from __future__ import annotations

import asyncio
from typing import cast

from aiohttp import web

from gateway.connection_cap import ConnectionCap

#: Hand the connection over once this much has arrived without the end of the headers:
#: aiohttp's own limits (a line or a header field of 8,190 bytes) then refuse it with a 4xx.
HAND_OVER_BYTES = 8192


class PendingConnection(asyncio.Protocol):
    """A connection whose request headers are not all in yet."""

    __slots__ = ("_buffer", "_cap", "_server", "_transport")

    def __init__(self, server: web.Server, cap: ConnectionCap) -> None:
        self._server = server
        self._cap = cap
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not registered as asyncio.Transport subclasses: no isinstance.
        self._transport = cast(asyncio.Transport, transport)
        self._cap.opened(transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        if not buffer and _headers_end(data, 0):  # the usual case: a whole request at once
            self._hand_over(data)
            return
        start = max(len(buffer) - 3, 0)  # the blank line may straddle two segments
        buffer += data
        if _headers_end(buffer, start) or len(buffer) >= HAND_OVER_BYTES:
            self._buffer = bytearray()
            self._hand_over(bytes(buffer))

    def eof_received(self) -> bool:
        return False  # nothing complete was sent: let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._cap.closed(self._transport)

    def _hand_over(self, data: bytes) -> None:
        transport = self._transport
        assert transport is not None
        handler = self._server()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        handler.data_received(data)


def _headers_end(data: bytes | bytearray, start: int) -> bool:
    # CRLF CRLF as the standard has it; LF LF too, which aiohttp's parser accepts as well.
    return data.find(b"\n\r\n", start) >= 0 or data.find(b"\n\n", start) >= 0


class PendingSite(web.TCPSite):
    """``web.TCPSite`` whose connections start as ``PendingConnection``s."""

    def __init__(
        self,
        runner: web.AppRunner,
        cap: ConnectionCap,
        host: str,
        port: int,
        *,
        backlog: int,
        reuse_port: bool | None,
    ) -> None:
        super().__init__(runner, host, port, backlog=backlog, reuse_port=reuse_port)
        self._cap = cap

    async def start(self) -> None:
        # web.TCPSite.start with our protocol factory in place of the runner's web.Server.
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        cap = self._cap

        def pending() -> PendingConnection:
            return PendingConnection(server, cap)

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            pending,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
