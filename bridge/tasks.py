"""Owned background tasks: started with a name, cancelled and awaited on stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


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
