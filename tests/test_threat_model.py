"""Claims of THREAT_MODEL.md that no other test file makes: what the public port does with
smuggling-shaped and oversized requests, that the admin endpoints are not on it, and that a
forged copy of a delivery cannot take its place in the dedupe store."""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.settings import Settings
from gateway.sinks.memory import MemorySink
from tests.support import signed

Client = TestClient[Any, web.Application]


async def raw_exchange(client: Client, request: bytes) -> bytes:
    """Send these exact bytes on a fresh connection; what came back before it closed."""
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(request)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_forged_copy_does_not_poison_the_dedupe_store(
    client: Client, settings: Settings, sink: MemorySink
) -> None:
    """A forger who knows (or guesses) a delivery id sends it first: nothing is claimed for an
    unverified delivery, so the genuine one is still accepted, not taken for a duplicate."""
    raw, headers = signed(settings, "replicate", delivery_id="msg_victim")
    forged = raw.replace(b"succeeded", b"failed")
    first = await client.post("/webhooks/replicate", data=forged, headers=headers)
    assert first.status == 401
    genuine = await client.post("/webhooks/replicate", data=raw, headers=headers)
    assert genuine.status == 200
    assert "duplicate" not in await genuine.json()
    assert len(sink.events) == 1


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
        b"Content-Length: 2\r\nContent-Length: 3\r\n",
        b"Transfer-Encoding: chunked, identity\r\n",
        b"Content-Length: +2\r\n",
    ],
    ids=["cl-and-te", "two-lengths", "te-list", "signed-length"],
)
async def test_ambiguous_framing_is_refused(client: Client, framing: bytes) -> None:
    """Request smuggling needs two parsers to disagree on where a body ends: the HTTP parser
    refuses every ambiguous framing with 400 before the gateway sees a request."""
    request = (
        b"POST /webhooks/abstrakt HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        + framing
        + b"\r\n{}"
    )
    answer = await raw_exchange(client, request)
    assert status_of(answer) == 400


async def test_oversized_header_is_refused(client: Client) -> None:
    request = (
        b"POST /webhooks/abstrakt HTTP/1.1\r\nHost: gw\r\nX-Abstrakt-Signature: "
        + b"a" * 20000
        + b"\r\nContent-Length: 2\r\n\r\n{}"
    )
    answer = await raw_exchange(client, request)
    assert status_of(answer) in (400, 431)


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz", "/webhooks", "/"])
async def test_admin_endpoints_are_not_on_the_public_port(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status == 404


def test_every_test_the_threat_model_cites_exists() -> None:
    """THREAT_MODEL.md backs each claim with ``file::function``: each must be a real test."""
    root = Path(__file__).resolve().parent
    text = (root.parent / "THREAT_MODEL.md").read_text(encoding="utf-8")
    cited = set(re.findall(r"`(test_\w+\.py)::(test_\w+)`", text))
    assert len(cited) > 40
    missing = []
    for file, name in sorted(cited):
        tree = ast.parse((root / file).read_text(encoding="utf-8"))
        defined = {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        if name not in defined:
            missing.append(f"{file}::{name}")
    assert missing == []
