"""The fault suite's core on the production path: Synapse and the bridge on
PostgreSQL, citizens and staff writing while the bridge is killed, Synapse alone
is killed and both are killed: lost 0, twice 0, out of order 0."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack
from tests.e2e.test_production_path import pg_stack  # noqa: F401 (fixture)

from .test_faults import assert_nothing_lost_or_twice
from .traffic import (
    Traffic,
    kill_round,
    totals,
)

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.postgres]


@pytest.fixture
async def running(pg_stack: Stack) -> AsyncIterator[Stack]:  # noqa: F811
    await asyncio.to_thread(pg_stack.start)
    yield pg_stack


async def test_messages_survive_kills_on_postgres(
    running: Stack, tmp_path: Path
) -> None:
    """Kill -9 of the bridge, of Synapse alone and of both, on PostgreSQL."""
    stack = running
    traffic = Traffic(stack)
    await traffic.login_staff()
    await traffic.open_cases(2)

    async def faults() -> None:
        await kill_round(stack, clean_restart=False, pause=2)

    await traffic.run(faults, per_case=400, staff=800, pause=0.03)
    tallies = await traffic.settle(within=180)
    assert_nothing_lost_or_twice(traffic, tallies)
    assert traffic.citizen_retries > 0
    print("fault suite on PostgreSQL:", json.dumps(totals(tallies)))
