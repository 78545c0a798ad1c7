"""``gateway/pending_connection.py``: a connection gets aiohttp's handler only once its request
headers are in; the first request's deadline counts from the accept (``connection_cap.py``).

In process, with real sockets: an aiohttp runner with one echoing route, the cap and the
pending site, as ``gateway/server.py`` puts them together.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest
import uvloop
from aiohttp import web

from gateway.connection_cap import ConnectionCap
from gateway.metrics import Metrics
from gateway.pending_connection import HAND_OVER_BYTES, PendingSite

TIMEOUT = 0.6


#: Both loops: the gateway serves on uvloop, whose transports differ from asyncio's.
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop] | None] = {
    "asyncio": None,
    "uvloop": uvloop.new_event_loop,
}


def on_both_loops(case: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[str], None]:
    @pytest.mark.parametrize("loop", LOOPS)
    def test(loop: str) -> None:
        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
            runner.run(case())

    test.__name__ = test.__qualname__ = case.__name__
    return test


@dataclass
class Listener:
    server: web.Server
    cap: ConnectionCap
    port: int

    @property
    def handlers(self) -> int:
        """aiohttp handlers built: connections handed over and still open."""
        return len(self.server.connections)

    @property
    def open(self) -> int:
        return len(self.cap._open)


@contextlib.asynccontextmanager
async def listener(limit: int = 100, header_timeout: float = TIMEOUT) -> AsyncIterator[Listener]:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=b"got:" + await request.read())

    app = web.Application()
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=header_timeout)
    await runner.setup()
    assert runner.server is not None
    cap = ConnectionCap(limit, Metrics(), header_timeout=header_timeout)
    cap.install(runner.server)
    site = PendingSite(runner, cap, "127.0.0.1", 0, backlog=128, reuse_port=None)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Listener(runner.server, cap, port)
    finally:
        cap.close_waiting()
        await runner.cleanup()


def request(body: bytes = b"hello", keep_alive: bool = True) -> bytes:
    connection = b"keep-alive" if keep_alive else b"close"
    return (
        b"POST /echo HTTP/1.1\r\nHost: gw\r\nConnection: " + connection + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return status, await asyncio.wait_for(reader.readexactly(length), 5)


async def closed_by_peer(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), within) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


async def until(condition: object, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


@on_both_loops
async def test_a_silent_connection_gets_no_handler_and_is_closed_at_the_deadline() -> None:
    async with listener() as gw:
        opened = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        await until(lambda: gw.open == 1)
        assert gw.handlers == 0
        assert await closed_by_peer(reader, 5.0)
        waited = time.monotonic() - opened
        assert TIMEOUT * 0.9 <= waited < TIMEOUT + 1.0
        await until(lambda: gw.open == 0)
        writer.close()


@on_both_loops
async def test_trickled_headers_are_handed_over_at_the_blank_line_and_answered() -> None:
    async with listener(header_timeout=5.0) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        raw = request(b"trickled")
        head, body = raw.split(b"\r\n\r\n")
        for byte in head + b"\r\n\r":  # one byte short of the blank line
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)
        assert gw.handlers == 0  # the headers are not all in yet
        writer.write(b"\n")
        await until(lambda: gw.handlers == 1)
        writer.write(body)  # the body after the hand-over, in its own segment
        assert await read_response(reader) == (200, b"got:trickled")
        writer.close()


@on_both_loops
async def test_a_whole_request_is_answered_and_the_connection_kept_alive() -> None:
    async with listener() as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        for i in range(3):
            writer.write(request(b"n%d" % i))
            assert await read_response(reader) == (200, b"got:n%d" % i)
            # Past the first request's deadline: a kept-alive connection is aiohttp's to time.
            await asyncio.sleep(TIMEOUT * 0.5)
        assert gw.open == 1
        assert not gw.cap._waiting
        writer.close()


@on_both_loops
async def test_lf_only_headers_are_handed_over() -> None:
    async with listener() as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(b"POST /echo HTTP/1.1\nHost: gw\nContent-Length: 2\n\nok")
        status, _ = await read_response(reader)
        assert status in (200, 400)  # aiohttp's parser decides; the connection is not held
        writer.close()


@on_both_loops
async def test_bytes_that_never_end_headers_are_handed_to_aiohttp_to_refuse() -> None:
    async with listener(header_timeout=5.0) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(b"GET /" + b"a" * HAND_OVER_BYTES)  # no line end at all
        status, _ = await read_response(reader)
        assert 400 <= status < 500
        writer.close()


@on_both_loops
async def test_the_deadline_counts_from_the_accept_not_the_first_byte() -> None:
    async with listener() as gw:
        opened = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        await asyncio.sleep(TIMEOUT * 0.6)
        writer.write(b"POST /echo HTTP/1.1\r\nHost: ")  # a start, then nothing
        assert await closed_by_peer(reader, 5.0)
        assert time.monotonic() - opened < TIMEOUT + 0.4
        writer.close()


@on_both_loops
async def test_a_connection_that_half_closes_before_its_headers_is_closed() -> None:
    async with listener(header_timeout=5.0) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(b"POST /echo HTTP/1.1\r\n")
        writer.write_eof()
        assert await closed_by_peer(reader, 2.0)
        await until(lambda: gw.open == 0)
        assert gw.handlers == 0
        writer.close()


@on_both_loops
async def test_the_cap_closes_pending_connections_oldest_first() -> None:
    async with listener(limit=3, header_timeout=5.0) as gw:
        streams = []
        for opened in range(1, 4):
            streams.append(await asyncio.open_connection("127.0.0.1", gw.port))
            await until(lambda n=opened: gw.open == n)
        streams[0][1].write(b"POST /echo HTTP/1.1\r\n")  # bytes without a request: no shield
        newcomer = await asyncio.open_connection("127.0.0.1", gw.port)
        assert await closed_by_peer(streams[0][0], 2.0)
        assert not await closed_by_peer(streams[1][0], 0.2)
        newcomer[1].write(request(b"late"))
        assert await read_response(newcomer[0]) == (200, b"got:late")
        for _, writer in (*streams, newcomer):
            writer.close()


@on_both_loops
async def test_shutdown_closes_pending_connections() -> None:
    async with listener(header_timeout=30.0) as gw:
        readers = [(await asyncio.open_connection("127.0.0.1", gw.port)) for _ in range(3)]
        await until(lambda: gw.open == 3)
        assert gw.cap.close_waiting() == 3
        for reader, writer in readers:
            assert await closed_by_peer(reader, 2.0)
            writer.close()
        assert gw.open == 0
