"""Signed deliveries posted to a gateway process, and its admin endpoints read over HTTP."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from dataclasses import dataclass

import aiohttp

from gateway.settings import Settings
from tests.support import PROVIDERS, signed


@dataclass(frozen=True)
class Delivery:
    source: str
    raw: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Answer:
    delivery: Delivery
    status: int
    body: dict[str, object]
    retry_after: str | None

    @property
    def event_id(self) -> str:
        return str(self.body["event_id"])


def deliveries(settings: Settings, count: int, start: int = 0) -> list[Delivery]:
    """``count`` distinct, correctly signed deliveries, taking the providers in turn."""
    out = []
    for i in range(start, start + count):
        source = PROVIDERS[i % len(PROVIDERS)]
        raw, headers = signed(settings, source)
        out.append(Delivery(source, raw, headers))
    return out


async def post_all(port: int, batch: list[Delivery], concurrency: int = 1) -> list[Answer]:
    """Post each delivery once (``concurrency`` at a time); answers in the order given."""
    gate = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(delivery: Delivery) -> Answer:
            url = f"http://127.0.0.1:{port}/webhooks/{delivery.source}"
            async with gate, session.post(url, data=delivery.raw, headers=delivery.headers) as r:
                return Answer(delivery, r.status, await r.json(), r.headers.get("Retry-After"))

        return list(await asyncio.gather(*(one(d) for d in batch)))


def readiness(admin_port: int) -> tuple[int, dict[str, object]]:
    """``/readyz``: its status and its body."""
    url = f"http://127.0.0.1:{admin_port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
