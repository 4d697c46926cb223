"""bridge.tasks.KeyedLocks: one holder per key at a time, and no lock left
behind once nobody holds or waits for it (the case and room locks used to
grow by one per case for the life of the process)."""

from __future__ import annotations

import asyncio

import pytest

from bridge.tasks import KeyedLocks


async def test_one_holder_per_key_and_nothing_left_after() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    inside: list[str] = []
    order: list[str] = []

    async def hold(key: str, name: str) -> None:
        async with locks(key):
            inside.append(key)
            assert inside.count(key) == 1, "two holders of one key"
            order.append(name)
            await asyncio.sleep(0.01)
            inside.remove(key)

    await asyncio.gather(
        *(hold("a", f"a{n}") for n in range(5)), *(hold("b", f"b{n}") for n in range(5))
    )
    assert [n for n in order if n[0] == "a"] == [f"a{n}" for n in range(5)]
    assert locks._locks == {}


async def test_a_cancelled_waiter_and_a_failing_holder_leave_nothing() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    entered = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks("c"):
            entered.set()
            await release.wait()
            raise RuntimeError("the write failed")

    held = asyncio.create_task(holder())
    await entered.wait()

    async def waiter() -> None:
        async with locks("c"):
            pass

    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    with pytest.raises(RuntimeError):
        await held
    assert locks._locks == {}
