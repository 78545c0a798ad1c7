"""The shared publish deadline: asyncio.timeout's semantics, one timer for all awaits."""

from __future__ import annotations

import asyncio

import pytest

from gateway.deadlines import Deadlines


async def _after(seconds: float, value: str) -> str:
    await asyncio.sleep(seconds)
    return value


async def test_result_passes_through_in_time() -> None:
    deadlines = Deadlines(1.0)
    assert await deadlines.run(_after(0.01, "done")) == "done"


async def test_slow_await_times_out_close_to_its_deadline() -> None:
    deadlines = Deadlines(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await deadlines.run(_after(5, "late"))
    elapsed = loop.time() - started
    assert 0.2 <= elapsed < 0.2 + 0.02 + 0.2  # resolution is seconds / 10, plus slack


async def test_only_the_slow_ones_time_out_among_many() -> None:
    deadlines = Deadlines(0.3)

    async def one(i: int) -> str:
        try:
            return await deadlines.run(_after(1.0 if i % 10 == 0 else 0.01 * (i % 5), str(i)))
        except TimeoutError:
            return "timeout"

    results = await asyncio.gather(*(one(i) for i in range(200)))
    assert [i for i, r in enumerate(results) if r == "timeout"] == list(range(0, 200, 10))
    assert all(r == str(i) for i, r in enumerate(results) if i % 10)


async def test_staggered_deadlines_each_fire_on_time() -> None:
    deadlines = Deadlines(0.2)
    loop = asyncio.get_running_loop()
    fired: list[float] = []

    async def one(delay: float) -> None:
        await asyncio.sleep(delay)
        started = loop.time()
        with pytest.raises(TimeoutError):
            await deadlines.run(asyncio.Event().wait())
        fired.append(loop.time() - started)

    await asyncio.gather(*(one(d) for d in (0.0, 0.05, 0.1, 0.15)))
    assert len(fired) == 4
    assert all(0.2 <= f < 0.2 + 0.02 + 0.2 for f in fired), fired


async def test_outside_cancellation_stays_a_cancellation() -> None:
    deadlines = Deadlines(5.0)
    task = asyncio.create_task(deadlines.run(_after(10, "never")))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_errors_of_the_awaitable_propagate() -> None:
    deadlines = Deadlines(1.0)

    async def broken() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await deadlines.run(broken())


async def test_finished_awaits_are_forgotten_after_their_deadline() -> None:
    deadlines = Deadlines(0.1)
    for _ in range(100):
        await deadlines.run(_after(0, "x"))
    assert len(deadlines) == 100
    await asyncio.sleep(0.25)
    assert len(deadlines) == 0  # the sweep ran and did not re-arm on an empty queue
    assert await deadlines.run(_after(0, "again")) == "again"  # and arms again when needed


def test_one_instance_serves_successive_event_loops() -> None:
    deadlines = Deadlines(0.1)

    async def slow() -> str:
        try:
            return await deadlines.run(_after(1, "late"))
        except TimeoutError:
            return "timeout"

    assert asyncio.run(slow()) == "timeout"
    assert asyncio.run(slow()) == "timeout"  # a stale timer from the first loop must not block


def test_refuses_a_non_positive_limit() -> None:
    with pytest.raises(ValueError, match="positive"):
        Deadlines(0)
