"""Shared fixtures. The Kafka broker and Redis fixtures live in ``tests/kafka_broker.py`` and
``tests/redis_server.py``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.sinks.memory import MemorySink
from tests.support import example_settings

pytest_plugins = ["tests.kafka_broker", "tests.redis_server"]

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, web.Application]]]


@pytest.fixture
def settings() -> Settings:
    return example_settings()


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, settings: Settings, sink: MemorySink
) -> TestClient[Any, web.Application]:
    """A real localhost server running the gateway with an in-memory sink."""
    app = create_app(settings, sink=sink, metrics=Metrics())
    return await aiohttp_client(app)
