"""Dedupe store: claim/commit/release semantics, LRU bound, TTL."""

from __future__ import annotations

import asyncio

from gateway.dedupe import MemoryDedupe


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_claim_commit_then_duplicate() -> None:
    store = MemoryDedupe(10, 60)
    assert await store.claim("a") is True
    await store.commit("a")
    assert await store.claim("a") is False


async def test_release_lets_the_next_try() -> None:
    store = MemoryDedupe(10, 60)
    assert await store.claim("a")
    await store.release("a")
    assert await store.claim("a") is True


async def test_waiter_sees_commit_of_first() -> None:
    store = MemoryDedupe(10, 60)
    assert await store.claim("a")
    waiter = asyncio.create_task(store.claim("a"))
    await asyncio.sleep(0)
    assert not waiter.done()
    await store.commit("a")
    assert await waiter is False


async def test_waiter_takes_over_after_release() -> None:
    store = MemoryDedupe(10, 60)
    assert await store.claim("a")
    waiters = [asyncio.create_task(store.claim("a")) for _ in range(5)]
    await asyncio.sleep(0)
    await store.release("a")
    assert await waiters[0] is True  # exactly one waiter becomes the new owner...
    await store.commit("a")
    assert await asyncio.gather(*waiters[1:]) == [False] * 4  # ...the rest see its commit


async def test_cancelled_waiter_does_not_break_owner() -> None:
    store = MemoryDedupe(10, 60)
    assert await store.claim("a")
    waiter = asyncio.create_task(store.claim("a"))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.sleep(0)
    await store.commit("a")
    assert await store.claim("a") is False


async def test_lru_bound() -> None:
    store = MemoryDedupe(3, 60)
    for key in "abcd":
        assert await store.claim(key)
        await store.commit(key)
    assert len(store) == 3
    assert await store.claim("a") is True  # evicted: the oldest went first
    assert await store.claim("d") is False


async def test_ttl_expiry() -> None:
    clock = Clock()
    store = MemoryDedupe(10, 60, clock=clock)
    assert await store.claim("a")
    await store.commit("a")
    clock.now += 60
    assert await store.claim("a") is False
    clock.now += 1
    assert await store.claim("a") is True
