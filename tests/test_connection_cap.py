"""``limits.max_connections`` against a real ``webhook-gateway serve``: past the cap, the oldest
connection that has not sent a request is closed, never a sender's kept-alive connection; when
every other connection has sent one, the new connection is closed at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from gateway.settings import Settings, load_settings
from tests.gateway_process import gateway_process, wait_ready, write_config
from tests.support import signed

CAP = 4


@contextlib.asynccontextmanager
async def capped_gateway(tmp_path: Path) -> AsyncIterator[tuple[Settings, int]]:
    # A long header timeout: only the cap closes connections here.
    limits = {"max_connections": CAP, "header_timeout_seconds": 60}
    config, data = write_config(tmp_path, limits=limits)
    with gateway_process(config, log=tmp_path / "gateway.log") as proc:
        await asyncio.to_thread(wait_ready, data["admin"]["port"], 60.0, proc)
        yield load_settings(config), data["listen"]["port"]


def metric(settings: Settings, name: str) -> float:
    url = f"http://127.0.0.1:{settings.admin.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found is not None, name
    return float(found.group(1))


async def until_metric(settings: Settings, name: str, value: float) -> None:
    deadline = time.monotonic() + 10
    while (seen := await asyncio.to_thread(metric, settings, name)) != value:
        assert time.monotonic() < deadline, f"{name} stayed {seen}, expected {value}"
        await asyncio.sleep(0.05)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def closed_by_peer(sock: socket.socket, within: float = 5.0) -> bool:
    """True once the gateway has closed ``sock``; False if it is still open after ``within``."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


async def post(session: aiohttp.ClientSession, settings: Settings, port: int) -> int:
    raw, headers = signed(settings, "abstrakt")
    url = f"http://127.0.0.1:{port}/webhooks/abstrakt"
    async with session.post(url, data=raw, headers=headers) as response:
        await response.read()
        return response.status


def cap_log_lines(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "gateway.log").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    return [r for r in records if r.get("event") == "connection_cap_reached"]


async def test_past_the_cap_the_oldest_silent_connection_is_closed(tmp_path: Path) -> None:
    async with capped_gateway(tmp_path) as (settings, port):
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as sender:
            assert await post(sender, settings, port) == 200  # a kept-alive connection
            with contextlib.ExitStack() as sockets:
                silent = [sockets.enter_context(connect(port)) for _ in range(CAP - 1)]
                await until_metric(settings, "webhook_gateway_open_connections", CAP)
                # Bytes that are not yet a whole request do not protect a connection.
                silent[1].sendall(b"POST /webhooks/abstrakt HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
                late = [sockets.enter_context(connect(port)) for _ in range(2)]
                assert await asyncio.to_thread(closed_by_peer, silent[0])
                assert await asyncio.to_thread(closed_by_peer, silent[1])
                await until_metric(settings, "webhook_gateway_connections_evicted_total", 2)
                # The sender's connection was never the one closed, and it still delivers.
                assert await post(sender, settings, port) == 200
                assert metric(settings, "webhook_gateway_connections_evicted_total") == 2
                for sock in (silent[2], *late):
                    assert not await asyncio.to_thread(closed_by_peer, sock, 0.3)
                assert metric(settings, "webhook_gateway_open_connections") == CAP
    (logged,) = cap_log_lines(tmp_path)  # once, not per closed connection
    assert logged["level"] == "warning"
    assert logged["limit"] == CAP


async def test_a_new_connection_is_closed_when_every_other_has_sent_a_request(
    tmp_path: Path,
) -> None:
    async with capped_gateway(tmp_path) as (settings, port), contextlib.AsyncExitStack() as stack:
        senders = []
        for _ in range(CAP):
            connector = aiohttp.TCPConnector(limit=1)
            senders.append(
                await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
            )
        for sender in senders:
            assert await post(sender, settings, port) == 200
        await until_metric(settings, "webhook_gateway_open_connections", CAP)
        with connect(port) as newcomer:
            assert await asyncio.to_thread(closed_by_peer, newcomer)
        for sender in senders:
            assert await post(sender, settings, port) == 200
        assert metric(settings, "webhook_gateway_connections_evicted_total") == 1
