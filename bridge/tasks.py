"""Owned background tasks: started with a name, cancelled and awaited on stop;
calls that everyone asking at the same time shares (:class:`Flights`); and a
lock per key that is gone when nobody holds it (:class:`KeyedLocks`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from functools import partial
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def every(
    seconds: float,
    work: Callable[[], Awaitable[None]],
    *,
    name: str,
    log: logging.Logger,
) -> asyncio.Task[None]:
    """Run ``work`` every ``seconds``; a failing round is logged and the next one
    comes as usual, so one bad row cannot stop the retries for good."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed; trying again in %.0f s", name, seconds)

    return asyncio.create_task(loop(), name=name)


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait until it has really ended."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


class Flights(Generic[K, T]):
    """One call per key at a time, shared by everyone who asks while it runs;
    but only by askers whose ``mark`` (a count that only grows: wake-ups seen,
    revocations made) it began at or after, so nobody is handed an answer
    older than what they know. An asker that goes away does not cancel it."""

    def __init__(self) -> None:
        self._flying: dict[K, tuple[int, asyncio.Future[T]]] = {}

    async def share(self, key: K, mark: int, call: Callable[[], Awaitable[T]]) -> T:
        flight = self._flying.get(key)
        if flight is None or flight[0] < mark:
            future = asyncio.ensure_future(call())
            flight = self._flying[key] = (mark, future)
            future.add_done_callback(partial(self._landed, key, future))
        return await asyncio.shield(flight[1])

    def _landed(self, key: K, future: asyncio.Future[T], _: object) -> None:
        flight = self._flying.get(key)
        if flight is not None and flight[1] is future:
            del self._flying[key]
        if not future.cancelled():
            future.exception()  # retrieved: every asker still there raises it


class KeyedLocks(Generic[K]):
    """``async with locks(key):`` — one holder per key at a time. A key's lock
    lives only while someone holds or waits for it, so a lock per case costs
    nothing for the cases nobody writes to."""

    def __init__(self) -> None:
        self._locks: dict[K, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def __call__(self, key: K) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
