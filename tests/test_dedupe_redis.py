"""The shared dedupe store against a real redis-server: the protocol, its failure modes, and
what the gateway answers when the store fails."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from gateway.app import create_admin_app, create_app
from gateway.dedupe import DedupeStore, MemoryDedupe, build_dedupe
from gateway.dedupe.multiplexed import MultiplexedConnection, encode
from gateway.dedupe.redis_client import build_client
from gateway.dedupe.redis_store import COMMITTED, RedisDedupe
from gateway.errors import DedupeUnavailable
from gateway.metrics import Metrics
from gateway.settings import RedisDedupeConfig, SecretRef, Settings
from gateway.sinks.memory import MemorySink
from tests.kafka_broker import free_port
from tests.redis_server import RedisServer, SentinelServer, redis_binary
from tests.support import example_settings, signed

pytestmark = pytest.mark.redis

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, web.Application]]]
TTL = 60.0


class Errors:
    """The store's error hook: what the metric would count."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, operation: str, reason: str) -> None:
        self.seen.append((operation, reason))


def make_store(
    url: str,
    prefix: str,
    *,
    on_store_error: str = "publish",
    claim_ttl: float = 5.0,
    wait: float = 2.0,
    timeout: float = 0.25,
    retry_interval: float = 0.2,
    errors: Errors | None = None,
) -> RedisDedupe:
    config = RedisDedupeConfig(
        url=SecretRef(id="redis", value=SecretStr(url)),
        key_prefix=prefix,
        timeout_seconds=timeout,
        claim_ttl_seconds=claim_ttl,
        retry_interval_seconds=retry_interval,
    )
    return RedisDedupe(
        build_client(config, allow_inline=True),
        MemoryDedupe(1000, TTL),
        key_prefix=prefix,
        ttl_seconds=TTL,
        claim_ttl_seconds=claim_ttl,
        timeout_seconds=timeout,
        wait_seconds=wait,
        retry_interval_seconds=retry_interval,
        on_store_error="reject" if on_store_error == "reject" else "publish",
        on_error=errors,
    )


@asynccontextmanager
async def stores(*made: DedupeStore) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for store in made:
            await store.close()


@pytest.fixture
async def direct(live_redis: RedisServer) -> AsyncIterator[Redis]:
    """A plain client, to look at what the store left in Redis."""
    client = Redis.from_url(live_redis.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def event() -> str:
    return f"evt_{uuid.uuid4().hex}"


# --- the protocol across replicas -------------------------------------------------------------


async def test_second_replica_waits_and_sees_the_commit(
    live_redis: RedisServer, direct: Redis, prefix: str
) -> None:
    a, b = make_store(live_redis.url, prefix), make_store(live_redis.url, prefix)
    async with stores(a, b):
        eid = event()
        assert await a.claim(eid) is True
        waiter = asyncio.create_task(b.claim(eid))
        await asyncio.sleep(0.05)
        assert not waiter.done()  # a live claim: b waits for it
        await a.commit(eid)
        assert await asyncio.wait_for(waiter, 5) is False
        assert await direct.get(f"{prefix}:dedupe:{eid}") == COMMITTED
        ttl_ms = await direct.pttl(f"{prefix}:dedupe:{eid}")
        assert TTL * 1000 - 5000 < ttl_ms <= TTL * 1000  # the full TTL, not the claim's
        assert await b.claim(eid) is False  # now from b's own memory level


async def test_second_replica_claims_after_a_release(live_redis: RedisServer, prefix: str) -> None:
    a, b = make_store(live_redis.url, prefix), make_store(live_redis.url, prefix)
    async with stores(a, b):
        eid = event()
        assert await a.claim(eid)
        waiter = asyncio.create_task(b.claim(eid))
        await asyncio.sleep(0.05)
        await a.release(eid)  # a's write failed
        assert await asyncio.wait_for(waiter, 5) is True
        await b.commit(eid)
        assert await a.claim(eid) is False


async def test_claim_ttl_is_what_redis_holds(
    live_redis: RedisServer, direct: Redis, prefix: str
) -> None:
    a = make_store(live_redis.url, prefix, claim_ttl=5.0)
    async with stores(a):
        eid = event()
        assert await a.claim(eid)
        key = f"{prefix}:dedupe:{eid}"
        owner = await direct.get(key)
        assert owner not in (None, COMMITTED)
        assert 4000 < await direct.pttl(key) <= 5000
        await a.release(eid)
        assert await direct.exists(key) == 0


async def test_owner_tokens_are_unique_per_request(
    live_redis: RedisServer, direct: Redis, prefix: str
) -> None:
    a = make_store(live_redis.url, prefix)
    async with stores(a):
        eid = event()
        key = f"{prefix}:dedupe:{eid}"
        tokens = set()
        for _ in range(3):
            assert await a.claim(eid)
            tokens.add(await direct.get(key))
            await a.release(eid)
        assert len(tokens) == 3


async def test_an_expired_claim_lets_another_replica_claim(
    live_redis: RedisServer, prefix: str
) -> None:
    """The owner died without releasing: its claim expires and the retry goes through."""
    a = make_store(live_redis.url, prefix, claim_ttl=0.3)
    b = make_store(live_redis.url, prefix, claim_ttl=0.3, wait=3.0)
    async with stores(a, b):
        eid = event()
        assert await a.claim(eid)
        assert await asyncio.wait_for(b.claim(eid), 5) is True


async def test_a_late_release_or_commit_never_touches_another_owners_claim(
    live_redis: RedisServer, direct: Redis, prefix: str
) -> None:
    a = make_store(live_redis.url, prefix, claim_ttl=0.2)
    b = make_store(live_redis.url, prefix, claim_ttl=5.0)
    async with stores(a, b):
        first, second = event(), event()
        key = f"{prefix}:dedupe:{first}"
        assert await a.claim(first)
        await asyncio.sleep(0.3)  # a's claim expired
        assert await b.claim(first)
        owner_b = await direct.get(key)
        await a.release(first)  # compare-and-delete: not a's claim any more
        assert await direct.get(key) == owner_b
        await a.commit(first)  # compare-and-set: neither
        assert await direct.get(key) == owner_b

        assert await a.claim(second)
        await asyncio.sleep(0.3)  # expired and nobody else claimed it...
        await a.commit(second)  # ...but the event is written: later copies are duplicates
        assert await direct.get(f"{prefix}:dedupe:{second}") == COMMITTED
        assert await b.claim(second) is False


async def test_a_live_claim_past_the_publish_deadline_is_a_503(
    live_redis: RedisServer, prefix: str
) -> None:
    a = make_store(live_redis.url, prefix, claim_ttl=30.0)
    b = make_store(live_redis.url, prefix, claim_ttl=30.0, wait=0.5)
    async with stores(a, b):
        eid = event()
        assert await a.claim(eid)
        with pytest.raises(DedupeUnavailable) as caught:
            await asyncio.wait_for(b.claim(eid), 5)
        assert caught.value.reason == "delivery_in_progress"
        await a.commit(eid)
        assert await b.claim(eid) is False  # the provider's retry is then a duplicate


async def test_the_memory_level_answers_duplicates_without_a_round_trip(
    live_redis: RedisServer, direct: Redis, prefix: str
) -> None:
    a, b = make_store(live_redis.url, prefix), make_store(live_redis.url, prefix)
    async with stores(a, b):
        eid = event()
        assert await a.claim(eid)
        await a.commit(eid)
        await direct.delete(f"{prefix}:dedupe:{eid}")
        assert await a.claim(eid) is False  # Redis no longer has it: the answer came from memory
        assert await b.claim(eid) is True  # b has no memory of it and asked Redis


async def test_commit_soon_answers_locally_at_once_and_close_waits_for_redis(
    live_redis: RedisServer, direct: Redis, prefix: str
) -> None:
    a, b = make_store(live_redis.url, prefix), make_store(live_redis.url, prefix)
    async with stores(b):
        eid = event()
        key = f"{prefix}:dedupe:{eid}"
        assert await a.claim(eid)
        # What the pipeline awaits before its 2xx finishes without suspending: no round trip.
        step = a.commit_soon(eid)
        with pytest.raises(StopIteration):
            step.send(None)
        assert await a.claim(eid) is False  # a copy on this replica is a duplicate at once
        await a.close()  # a clean shutdown lands every commit on its way
        assert await direct.get(key) == COMMITTED
        assert await direct.pttl(key) > (TTL - 5) * 1000
        assert await b.claim(eid) is False


async def test_a_commit_after_the_answer_survives_a_server_that_forgot_the_script(
    live_redis: RedisServer, direct: Redis, prefix: str
) -> None:
    errors = Errors()
    a = make_store(live_redis.url, prefix, errors=errors)
    eid = event()
    assert await a.claim(eid)
    await direct.script_flush()  # as after a restart or a failover
    await a.commit_soon(eid)
    await a.close()
    assert await direct.get(f"{prefix}:dedupe:{eid}") == COMMITTED
    assert errors.seen == []


async def test_commits_landing_after_the_answer_reach_the_waiting_replica(
    live_redis: RedisServer, prefix: str
) -> None:
    a, b = make_store(live_redis.url, prefix), make_store(live_redis.url, prefix)
    async with stores(a, b):
        eid = event()
        assert await a.claim(eid)
        waiting = asyncio.create_task(b.claim(eid))  # finds a's live claim and polls it
        await asyncio.sleep(0.05)
        await a.commit_soon(eid)
        assert await asyncio.wait_for(waiting, 5) is False


async def test_concurrent_copies_on_one_replica_share_its_claim(
    live_redis: RedisServer, prefix: str
) -> None:
    a = make_store(live_redis.url, prefix)
    async with stores(a):
        eid = event()
        assert await a.claim(eid)
        waiters = [asyncio.create_task(a.claim(eid)) for _ in range(5)]
        await asyncio.sleep(0.02)
        await a.release(eid)
        assert await asyncio.wait_for(waiters[0], 5) is True
        await a.commit(eid)
        assert await asyncio.gather(*waiters[1:]) == [False] * 4


async def test_keys_are_namespaced_per_deployment_and_hold_no_payload(
    live_redis: RedisServer, direct: Redis, prefix: str
) -> None:
    a = make_store(live_redis.url, prefix)
    other = make_store(live_redis.url, prefix + "-other")
    async with stores(a, other):
        eid = event()
        assert await a.claim(eid)
        await a.commit(eid)
        assert await direct.keys(f"{prefix}:*") == [f"{prefix}:dedupe:{eid}".encode()]
        assert await direct.get(f"{prefix}:dedupe:{eid}") == COMMITTED
        assert await other.claim(eid) is True  # another deployment's prefix: not its duplicate
        await other.release(eid)


async def test_through_sentinel(
    live_redis: RedisServer, direct: Redis, prefix: str, tmp_path: Path
) -> None:
    """A real Sentinel names the master; the store finds it there and works as with a URL."""
    sentinel = SentinelServer(tmp_path, free_port(), master_port=live_redis.port)
    sentinel.start()
    try:
        settings = example_settings(
            dedupe={
                "kind": "redis",
                "redis": {
                    "topology": "sentinel",
                    "sentinel": {"hosts": [sentinel.address], "service_name": "dedupe"},
                    "key_prefix": prefix,
                },
            }
        )
        store = build_dedupe(settings)
        assert isinstance(store, RedisDedupe)
        async with stores(store):
            await store.start()
            assert store.health() == "ok"
            eid = event()
            assert await store.claim(eid)
            await store.commit(eid)
            assert await direct.get(f"{prefix}:dedupe:{eid}") == COMMITTED
    finally:
        sentinel.stop()


# --- Redis slow or down ------------------------------------------------------------------------


async def test_store_down_publish_mode_goes_ahead_and_counts() -> None:
    errors = Errors()
    store = make_store(f"redis://127.0.0.1:{free_port()}/0", "down", errors=errors)
    async with stores(store):
        await store.start()
        assert store.health() == "degraded"
        eid = event()
        assert await store.claim(eid) is True  # fail-open: the delivery is published
        await store.commit(eid)
        assert await store.claim(eid) is False  # the memory level still dedupes this replica
        assert errors.seen[0] == ("start", "connection")
        # Within the retry interval Redis is not tried again: counted, at once.
        assert await store.claim(event()) is True
        assert errors.seen[-1] == ("claim", "unavailable")


async def test_store_down_reject_mode_answers_503() -> None:
    errors = Errors()
    store = make_store(f"redis://127.0.0.1:{free_port()}/0", "down", on_store_error="reject",
                       errors=errors)  # fmt: skip
    async with stores(store):
        eid = event()
        with pytest.raises(DedupeUnavailable) as caught:
            await store.claim(eid)
        assert caught.value.reason == "dedupe_unavailable"
        assert errors.seen == [("claim", "connection")]
        with pytest.raises(DedupeUnavailable):
            await store.claim(eid)  # the local claim was given back: no stuck waiter


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts and never answers: a hung Redis."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_hung_redis_never_holds_a_request_past_the_publish_deadline(
    silent_server: int,
) -> None:
    errors = Errors()
    store = make_store(f"redis://127.0.0.1:{silent_server}/0", "hung", timeout=0.1, wait=1.0,
                       errors=errors)  # fmt: skip
    async with stores(store):
        started = time.monotonic()
        eid = event()
        assert await store.claim(eid) is True
        await store.commit(eid)
        assert time.monotonic() - started < 1.0  # the publish deadline (wait) of this store
        assert errors.seen[0] == ("claim", "timeout")
        assert store.health() == "degraded"


async def test_dedupe_resumes_when_redis_comes_back(
    live_redis: RedisServer, direct: Redis, prefix: str
) -> None:
    errors = Errors()
    a = make_store(live_redis.url, prefix, retry_interval=0.2, errors=errors)
    async with stores(a):
        assert await a.claim(event())  # connected, working
        live_redis.stop()
        try:
            during = event()
            assert await a.claim(during) is True
            assert a.health() == "degraded"
            assert errors.seen
            assert errors.seen[0][0] == "claim"
        finally:
            live_redis.start()
        await asyncio.sleep(0.3)  # past the retry interval
        after = event()
        assert await a.claim(after) is True
        assert a.health() == "ok"
        assert await direct.get(f"{prefix}:dedupe:{after}") not in (None, COMMITTED)
        await a.commit(after)
        assert await direct.get(f"{prefix}:dedupe:{after}") == COMMITTED


# --- the gateway with a shared store -----------------------------------------------------------


def redis_settings(url: str, prefix: str, **dedupe: Any) -> Settings:
    return example_settings(
        dedupe={
            "kind": "redis",
            "redis": {"url": {"id": "redis", "value": url}, "key_prefix": prefix,
                      "retry_interval_seconds": 0.2},
            **dedupe,
        }
    )  # fmt: skip


async def test_gateway_dedupes_through_redis_and_readiness_shows_the_store(
    aiohttp_client: AiohttpClient, live_redis: RedisServer, direct: Redis, prefix: str
) -> None:
    settings = redis_settings(live_redis.url, prefix)
    sinks = [MemorySink(), MemorySink()]
    apps = [create_app(settings, sink=sink, metrics=Metrics()) for sink in sinks]
    clients = [await aiohttp_client(app) for app in apps]
    admin = await aiohttp_client(create_admin_app(apps[0]))
    raw, headers = signed(settings, "replicate")
    answers = []
    for client in clients:  # one replica after the other: the second has no memory of it
        async with client.post("/webhooks/replicate", data=raw, headers=headers) as response:
            answers.append((response.status, await response.json()))
    assert answers[0][0] == answers[1][0] == 200
    assert "duplicate" not in answers[0][1]
    assert answers[1][1]["duplicate"] is True
    assert len(sinks[0].events) + len(sinks[1].events) == 1
    event_id = answers[0][1]["event_id"]
    assert await direct.get(f"{prefix}:dedupe:{event_id}") == COMMITTED
    async with admin.get("/readyz") as response:
        assert response.status == 200
        assert (await response.json())["dedupe"] == {"kind": "redis", "state": "ok"}


@pytest.mark.parametrize("mode", ["publish", "reject"])
async def test_gateway_with_redis_down(aiohttp_client: AiohttpClient, mode: str) -> None:
    settings = redis_settings(f"redis://127.0.0.1:{free_port()}/0", "down", on_store_error=mode)
    sink, metrics = MemorySink(), Metrics()
    app = create_app(settings, sink=sink, metrics=metrics)
    client = await aiohttp_client(app)
    admin = await aiohttp_client(create_admin_app(app))
    raw, headers = signed(settings, "abstrakt")
    async with client.post("/webhooks/abstrakt", data=raw, headers=headers) as response:
        body = await response.json()
        status, retry_after = response.status, response.headers.get("Retry-After")
    if mode == "publish":
        assert status == 200
        assert len(sink.events) == 1
    else:
        assert status == 503
        assert body == {"error": "dedupe_unavailable"}
        assert retry_after == str(settings.limits.retry_after_seconds)
        assert sink.events == []
    async with admin.get("/readyz") as response:
        assert response.status == 200  # degraded, not unready
        ready = await response.json()
        assert ready["ready"] is True
        assert ready["dedupe"] == {"kind": "redis", "state": "degraded"}
    counted = {
        tuple(s.labels.values()): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == "webhook_gateway_dedupe_store_errors_total"
    }
    assert counted.get(("start", "connection")) == 1
    assert sum(counted.values()) >= 2  # the start, and the delivery's claim


def test_build_dedupe_follows_the_kind() -> None:
    assert isinstance(build_dedupe(example_settings()), MemoryDedupe)


async def test_an_acl_user_with_only_the_documented_commands_is_enough(
    live_redis: RedisServer, direct: Redis, prefix: str
) -> None:
    """docs/dedupe.md gives this ACL; the store (username, password) works within it."""
    user = f"gw-{prefix}"
    await direct.acl_setuser(
        user,
        enabled=True,
        reset=True,
        passwords=["+hunter2-acl"],
        keys=[f"{prefix}:dedupe:*"],
        commands=["+get", "+set", "+del", "+eval", "+evalsha", "+script|load", "+ping",
                  "+client|setname"],
    )  # fmt: skip
    try:
        settings = example_settings(
            dedupe={
                "kind": "redis",
                "redis": {
                    "url": {"id": "redis", "value": live_redis.url},
                    "username": user,
                    "password": {"id": "redis-password", "value": "hunter2-acl"},
                    "key_prefix": prefix,
                },
            }
        )
        errors = Errors()
        store = build_dedupe(settings, errors)
        async with stores(store):
            await store.start()
            first, second = event(), event()
            assert await store.claim(first)
            await store.commit(first)
            assert await store.claim(second)
            await store.release(second)
            assert errors.seen == []
            assert store.health() == "ok"
            assert await direct.get(f"{prefix}:dedupe:{first}") == COMMITTED
            assert await direct.exists(f"{prefix}:dedupe:{second}") == 0
    finally:
        await direct.acl_deluser(user)


# --- one connection, one write per event-loop turn ---------------------------------------------


async def test_a_turns_commands_leave_in_one_write_and_keep_their_replies_apart(
    direct: Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = MultiplexedConnection(direct, timeout=2.0)
    try:
        assert await connection.call("PING") == b"PONG"  # connected
        writes: list[bytes] = []
        transport = connection._transport
        assert transport is not None
        write = transport.write

        def counted(data: bytes) -> None:
            writes.append(data)
            write(data)

        monkeypatch.setattr(transport, "write", counted)
        await direct.set(f"{prefix}:text", b"not a number")
        calls = [
            connection.call("SET", f"{prefix}:{i}", str(i), "NX", "PX", 60_000) for i in range(10)
        ]
        bad = connection.call("INCR", f"{prefix}:text")  # an error reply for this command only
        gets = [connection.call("GET", f"{prefix}:{i}") for i in range(10)]
        assert await asyncio.gather(*calls) == [b"OK"] * 10
        with pytest.raises(ResponseError):
            await bad
        assert await asyncio.gather(*gets) == [str(i).encode() for i in range(10)]
        # The first command found the connection idle and left at once; everything queued
        # behind it in this turn left together.
        assert len(writes) == 2
        assert writes[0].count(b"\r\nSET\r\n") == 1
        assert writes[1].count(b"\r\nSET\r\n") == 9
        assert writes[1].count(b"\r\nGET\r\n") == 10
        assert await connection.call("GET", f"{prefix}:missing") is None
        assert await connection.call("INCR", f"{prefix}:n") == 1
    finally:
        await connection.close()


def test_commands_are_encoded_as_resp_arrays_of_bulk_strings() -> None:
    assert encode(("SET", b"k\r\n", 15000, "é")) == (
        b"*4\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$5\r\n15000\r\n$2\r\n\xc3\xa9\r\n"
    )
    with pytest.raises(TypeError, match="float"):
        encode(("SET", "k", 1.5))


async def test_a_script_the_server_forgot_is_loaded_again(direct: Redis, prefix: str) -> None:
    connection = MultiplexedConnection(direct, timeout=2.0)
    source = "return redis.call('GET', KEYS[1])"
    sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    try:
        await direct.set(f"{prefix}:k", b"v")
        await direct.script_flush()  # as after a restart or a failover
        assert await connection.script(sha, source, [f"{prefix}:k"], []) == b"v"
        assert await connection.script(sha, source, [f"{prefix}:k"], []) == b"v"
    finally:
        await connection.close()


async def test_every_command_on_a_hung_connection_fails_by_its_deadline(silent_server: int) -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{silent_server}/0")
    connection = MultiplexedConnection(client, timeout=0.2)
    try:
        calls = [connection.call("GET", f"k{i}") for i in range(3)]
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)
        assert [type(r) for r in results] == [TimeoutError] * 3
    finally:
        await connection.close()
        await client.aclose()


async def test_a_connection_that_breaks_fails_its_commands_and_the_next_one_reconnects(
    live_redis: RedisServer, direct: Redis, prefix: str
) -> None:
    connection = MultiplexedConnection(direct, timeout=2.0)
    try:
        assert await connection.call("CLIENT", "SETNAME", "victim") == b"OK"
        blocked = connection.call("BLPOP", f"{prefix}:never", 0)  # a reply that never comes
        await asyncio.sleep(0.05)
        assert await direct.client_kill_filter(_type="normal", skipme=True) >= 1
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(blocked, 5)
        assert await connection.call("SET", f"{prefix}:after", "1") == b"OK"
        assert await direct.get(f"{prefix}:after") == b"1"
    finally:
        await connection.close()


async def test_the_connection_authenticates_selects_the_database_and_names_itself(
    live_redis: RedisServer, prefix: str
) -> None:
    direct = Redis.from_url(live_redis.url)
    user, password = f"gw-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    await direct.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"],
                             commands=["+@all"])  # fmt: skip
    client = Redis.from_url(live_redis.url.rsplit("/", 1)[0] + "/3", username=user,
                            password=password, client_name="webhook-gateway")  # fmt: skip
    connection = MultiplexedConnection(client, timeout=2.0)
    wrong = Redis.from_url(live_redis.url, username=user, password="not-it")
    refused = MultiplexedConnection(wrong, timeout=2.0)
    try:
        assert await connection.call("ACL", "WHOAMI") == user.encode()
        assert await connection.call("CLIENT", "GETNAME") == b"webhook-gateway"
        await connection.call("SET", f"{prefix}:db", "3")
        assert await direct.get(f"{prefix}:db") is None  # not in db 0...
        assert await client.get(f"{prefix}:db") == b"3"  # ...in db 3
        with pytest.raises(ResponseError):
            await refused.call("PING")
    finally:
        await connection.close()
        await refused.close()
        for c in (client, wrong):
            await c.aclose()
        await direct.acl_deluser(user)
        await direct.aclose()


async def test_a_claim_whose_reply_was_lost_is_still_ours(
    live_redis: RedisServer, direct: Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client retries a SET after a broken connection; if the first one had landed, the
    key holds our own token, and the claim is ours (not another owner's to wait for)."""
    monkeypatch.setattr("gateway.dedupe.redis_store.os.urandom", lambda n: b"\x01" * n)
    a = make_store(live_redis.url, prefix, wait=0.5)
    async with stores(a):
        eid = event()
        await direct.set(f"{prefix}:dedupe:{eid}", b"01" * 8, px=5000)  # the first SET landed
        assert await asyncio.wait_for(a.claim(eid), 5) is True
        await a.commit(eid)
        assert await direct.get(f"{prefix}:dedupe:{eid}") == COMMITTED


# --- TLS -------------------------------------------------------------------------------------


def openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        pytest.fail("openssl is missing: `make system-deps` installs Debian's openssl")
    subprocess.run([binary, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "1", "-subj", "/CN=test-ca", cwd=directory)  # fmt: skip
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n", encoding="utf-8")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={name}", cwd=directory)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", "-extfile", "san.cnf",
                cwd=directory)  # fmt: skip


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """redis-server on TLS only, requiring a client certificate signed by the test CA."""
    make_certificates(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [redis_binary(), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", "server.crt", "--tls-key-file", "server.key",
         "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "yes", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield port, tmp_path
    finally:
        proc.terminate()
        proc.wait(20)


def tls_settings(port: int, certs: Path, prefix: str, **tls: Any) -> Settings:
    return example_settings(
        dedupe={
            "kind": "redis",
            "redis": {
                "url": {"id": "redis", "value": f"rediss://127.0.0.1:{port}/0"},
                "key_prefix": prefix,
                "tls": {"ca": {"id": "ca", "file": str(certs / "ca.crt")}, **tls},
            },
        }
    )


async def test_mutual_tls(tls_redis: tuple[int, Path], prefix: str) -> None:
    port, certs = tls_redis
    client_files = {
        "client_cert": {"id": "cert", "file": str(certs / "client.crt")},
        "client_key": {"id": "key", "file": str(certs / "client.key")},
    }
    store = build_dedupe(tls_settings(port, certs, prefix, **client_files))
    async with stores(store):
        await store.start()
        assert store.health() == "ok"
        eid = event()
        assert await store.claim(eid)
        await store.commit(eid)
        assert await store.claim(eid) is False

    errors = Errors()
    without_client_cert = build_dedupe(tls_settings(port, certs, prefix), errors)
    async with stores(without_client_cert):
        await without_client_cert.start()  # the server wants a client certificate
        assert without_client_cert.health() == "degraded"
        assert errors.seen[0][0] == "start"
