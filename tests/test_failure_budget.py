"""The per-client budget of failed verifications: the token bucket, its bounded table, and the
429 answers of a real localhost server, keyed by the client as trusted proxies resolve it."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.app import BUDGET, METRICS, create_app
from gateway.client_address import ClientAddressResolver, parse_networks
from gateway.errors import GatewayError, RequestError, TooManyFailures
from gateway.failure_budget import UNRESOLVED, FailureBudget, budget_key, client_key
from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.sinks.memory import MemorySink
from tests.support import example_settings, signed

Client = TestClient[Any, web.Application]
AiohttpClient = Callable[[web.Application], Awaitable[Client]]

ATTACKER = "203.0.113.66"
SENDER = "198.51.100.7"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ip(text: str) -> Any:
    return client_key(ipaddress.ip_address(text))


# --- the bucket ------------------------------------------------------------------------------


def test_burst_then_refused_then_refilled() -> None:
    clock = FakeClock()
    budget = FailureBudget(burst=3, refill_per_second=0.5, max_clients=10, clock=clock)
    key = ip(ATTACKER)
    spent = [budget.charge(key) for _ in range(3)]
    assert spent == [False, False, True]  # one log line, when the last token goes
    assert budget.retry_after(key) == 2  # one token at 0.5 per second
    clock.now += 1.0
    assert budget.retry_after(key) == 1
    clock.now += 1.0
    assert budget.retry_after(key) is None  # one token back: one more try allowed
    assert budget.retry_after(ip(SENDER)) is None  # another client is not affected
    clock.now += 10.0
    assert budget.retry_after(key) is None
    assert len(budget) == 0  # paid back in full: forgotten


def test_table_is_bounded_and_forgets_the_least_recent() -> None:
    clock = FakeClock()
    budget = FailureBudget(burst=1, refill_per_second=0.001, max_clients=100, clock=clock)
    for n in range(1000):
        budget.charge(ip(f"10.0.{n // 256}.{n % 256}"))
    assert len(budget) == 100
    assert budget.retry_after(ip("10.0.3.231")) is not None  # the 1000th: still owes
    assert budget.retry_after(ip("10.0.0.0")) is None  # the first: forgotten


def test_ipv6_clients_share_their_64() -> None:
    budget = FailureBudget(burst=2, refill_per_second=0.001, max_clients=10, clock=FakeClock())
    budget.charge(ip("2001:db8:1:2::1"))
    budget.charge(ip("2001:db8:1:2:ffff::9"))
    assert budget.retry_after(ip("2001:db8:1:2::77")) is not None
    assert budget.retry_after(ip("2001:db8:1:3::1")) is None
    assert ip("::ffff:192.0.2.1") != ip("192.0.2.1")  # the resolver unmaps; the key does not


def test_disabled_budget_counts_nothing() -> None:
    budget = FailureBudget(burst=0, refill_per_second=1.0, max_clients=10, clock=FakeClock())
    assert not budget.enabled
    for _ in range(100):
        assert budget.charge(ip(ATTACKER)) is False
    assert len(budget) == 0


def test_429_joins_the_error_tree() -> None:
    error = TooManyFailures(7)
    assert isinstance(error, RequestError)
    assert isinstance(error, GatewayError)
    assert (error.status, error.reason, error.retry_after) == (429, "too_many_failures", 7)


# --- through the app ---------------------------------------------------------------------------


def budget_settings(**listen: Any) -> Settings:
    return example_settings(
        limits={"failure_budget_burst": 3, "failure_budget_per_second": 0.01},
        listen={"host": "127.0.0.1", "port": 0, **listen},
    )


async def start(aiohttp_client: AiohttpClient, settings: Settings) -> tuple[Client, MemorySink]:
    sink = MemorySink()
    return await aiohttp_client(create_app(settings, sink=sink, metrics=Metrics())), sink


def forged(settings: Settings, source: str = "fal") -> tuple[bytes, dict[str, str]]:
    raw, headers = signed(settings, source)
    return raw + b" ", headers  # the signature no longer covers the body


def samples(metrics: Metrics, name: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(s.labels.values()): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == name
    }


async def test_over_budget_client_gets_429_before_verification(
    aiohttp_client: AiohttpClient,
) -> None:
    settings = budget_settings(trusted_proxies=["127.0.0.1"])
    client, sink = await start(aiohttp_client, settings)
    attacker = {"X-Forwarded-For": ATTACKER}
    statuses = []
    for _ in range(6):
        raw, headers = forged(settings)
        response = await client.post("/webhooks/fal", data=raw, headers={**headers, **attacker})
        statuses.append(response.status)
        if response.status == 429:
            assert await response.json() == {"error": "too_many_failures"}
            assert int(response.headers["Retry-After"]) == 100  # 1 token at 0.01 per second
    assert statuses == [401, 401, 401, 429, 429, 429]
    # Even a genuine delivery from that client waits: nothing is verified for it until then.
    raw, headers = signed(settings, "abstrakt")
    response = await client.post("/webhooks/abstrakt", data=raw, headers={**headers, **attacker})
    assert response.status == 429
    assert sink.events == []
    # Another client behind the same proxy is not affected.
    raw, headers = signed(settings, "abstrakt")
    sender = {"X-Forwarded-For": f"{SENDER}, 127.0.0.1"}
    response = await client.post("/webhooks/abstrakt", data=raw, headers={**headers, **sender})
    assert response.status == 200
    metrics = client.app[METRICS]
    assert samples(metrics, "webhook_gateway_failure_budget_refusals_total") == {
        ("fal",): 3.0,
        ("abstrakt",): 1.0,
    }
    assert samples(metrics, "webhook_gateway_failure_budget_clients") == {(): 1.0}
    errors = samples(metrics, "webhook_gateway_request_errors_total")
    assert errors[("fal", "too_many_failures")] == 3.0
    assert samples(metrics, "webhook_gateway_verification_failures_total") == {
        ("fal", "signature_mismatch"): 3.0
    }


def test_keys_follow_the_resolved_client() -> None:
    untrusting = ClientAddressResolver(())
    trusting = ClientAddressResolver(parse_networks(["10.0.0.0/8"]))
    spoofed = CIMultiDictProxy(CIMultiDict({"X-Forwarded-For": "192.0.2.1"}))

    def key(resolver: ClientAddressResolver, peer: str) -> Any:
        address = resolver.resolve(peer, spoofed)
        return budget_key(address, behind_trusted_proxies=resolver.trusts_proxies)

    # A forwarding header from a peer that is not a trusted proxy buys no fresh budget.
    # (A public peer: Python counts the documentation ranges as private.)
    assert key(untrusting, "100.0.0.9") == ip("100.0.0.9")
    assert key(trusting, "100.0.0.9") == ip("100.0.0.9")
    # Through a trusted proxy, the forwarded client is charged.
    assert key(trusting, "10.1.2.3") == ip("192.0.2.1")
    # A private peer without trusted proxies is probably an unconfigured proxy: one budget for
    # every sender behind it would let one forger lock them all out, so it is not charged.
    assert key(untrusting, "10.1.2.3") is None
    assert key(untrusting, "127.0.0.1") is None
    # Clients a trusted proxy names with garbage share one budget.
    garbage = CIMultiDictProxy(CIMultiDict({"X-Forwarded-For": "unknown"}))
    address = trusting.resolve("10.1.2.3", garbage)
    assert budget_key(address, behind_trusted_proxies=True) == UNRESOLVED


async def test_an_unconfigured_proxy_is_not_charged(aiohttp_client: AiohttpClient) -> None:
    """Without trusted proxies, the loopback peer (the shape of an ingress the gateway was not
    told about) keeps getting 401s, never a 429 that would lock out everyone behind it."""
    settings = budget_settings()
    client, _ = await start(aiohttp_client, settings)
    for n in range(6):
        raw, headers = forged(settings, "replicate")
        headers["X-Forwarded-For"] = f"192.0.2.{n}"
        response = await client.post("/webhooks/replicate", data=raw, headers=headers)
        assert response.status == 401
    assert len(client.app[BUDGET]) == 0


async def test_successes_cost_nothing_and_the_budget_can_be_off(
    aiohttp_client: AiohttpClient,
) -> None:
    settings = budget_settings(trusted_proxies=["127.0.0.1"])
    client, sink = await start(aiohttp_client, settings)
    for _ in range(10):
        raw, headers = signed(settings, "instantapi")
        headers["X-Forwarded-For"] = SENDER
        assert (await client.post("/webhooks/instantapi", data=raw, headers=headers)).status == 200
    assert len(client.app[BUDGET]) == 0
    assert len(sink.events) == 10

    off = example_settings(
        limits={"failure_budget_burst": 0}, listen={"trusted_proxies": ["127.0.0.1"]}
    )
    client, _ = await start(aiohttp_client, off)
    for _ in range(30):
        raw, headers = forged(off)
        headers["X-Forwarded-For"] = ATTACKER
        assert (await client.post("/webhooks/fal", data=raw, headers=headers)).status == 401


def test_settings_refuse_a_negative_burst() -> None:
    with pytest.raises(GatewayError, match="failure_budget_burst"):
        example_settings(limits={"failure_budget_burst": -1})
