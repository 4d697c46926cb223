"""A case in the store, for tests below the e2e layer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bridge.db.store import Store


async def case(store: Store, case_id: str) -> str:
    """A live case ``case_id`` of the Bürgerbüro; returns its id."""
    await store.create_case(
        case_id=case_id,
        reference_prefix="BC",
        department="buergerbuero",
        topic=None,
        language="de",
        citizen_name="Eva",
        ghost_mxid=f"@bc_{case_id}:test",
        state="live",
    )
    return case_id


async def until(check: Callable[[], object], seconds: float = 10.0) -> None:
    """Wait until ``check()`` is true; fail after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.01)
