"""The refresh gate: one fetch at a time, shared by concurrent callers, and rate-limited."""

from __future__ import annotations

import asyncio

from adapters.primitives.refresh_gate import RefreshGate


async def test_concurrent_callers_share_one_fetch_and_the_interval_holds() -> None:
    now = [100.0]
    gate = RefreshGate(60.0, lambda: now[0])
    fetches = 0
    release = asyncio.Event()

    async def fetch() -> bool:
        nonlocal fetches
        fetches += 1
        await release.wait()
        return True

    callers = [asyncio.create_task(gate.run(fetch, lambda: True, force=False)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*callers) == [True] * 50
    assert fetches == 1
    assert await gate.run(fetch, lambda: True, force=False) is False  # inside the interval
    assert fetches == 1
    assert await gate.run(fetch, lambda: True, force=True) is True  # force ignores it
    now[0] += 61
    assert await gate.run(fetch, lambda: True, force=False) is True
    assert fetches == 3


async def test_a_failed_fetch_still_counts_against_the_interval() -> None:
    gate = RefreshGate(60.0, lambda: 0.0)

    async def failing() -> bool:
        return False

    assert await gate.run(failing, lambda: False, force=False) is False
    calls = []

    async def fetch() -> bool:
        calls.append(1)
        return True

    assert await gate.run(fetch, lambda: False, force=False) is False
    assert calls == []  # a key host that is down is not hammered
