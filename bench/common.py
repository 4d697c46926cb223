"""What the benches share: a fresh stack for one run, and a citizen's chat."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from tests.e2e.stack import Stack, make_stack

T = TypeVar("T")


def on_fresh_stack(
    prefix: str, run: Callable[[Stack], Coroutine[Any, Any, T]], **stack: Any
) -> T:
    """Start the product in a temporary folder (``make_stack``'s arguments),
    run the bench against it, stop it and remove the folder."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    started = make_stack(base, **stack)
    try:
        started.start()
        return asyncio.run(run(started))
    finally:
        started.stop()
        shutil.rmtree(base, ignore_errors=True)


async def open_chat(
    session: aiohttp.ClientSession,
    stack: Stack,
    name: str = "Bench",
    department: str = "buergerbuero",
) -> dict[str, Any]:
    """A citizen's ``POST /api/v1/cases``: case id, reference, token."""
    async with session.post(
        f"{stack.bridge_url}/api/v1/cases",
        json={"department": department, "consent": True, "name": name},
    ) as response:
        if response.status != 201:
            raise RuntimeError(
                f"POST /cases: {response.status} {await response.text()}"
            )
        answer: dict[str, Any] = await response.json()
        return answer
