"""End-to-end fixtures: one real product stack per test session, and staff
clients logged in with matrix-nio."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nio import AsyncClient

from .stack import Stack, make_stack

ANNA = "@anna.schmidt:buergerchat.localhost"
BERND = "@bernd.keller:buergerchat.localhost"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole product as `buergerchat run` starts it (SQLite default)."""
    s = make_stack(tmp_path_factory.mktemp("stack"))
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def staff_client(stack: Stack, mxid: str) -> AsyncClient:
    client = AsyncClient(stack.homeserver_url, mxid)
    response = await client.login(stack.staff_password(mxid))
    assert getattr(response, "access_token", None), response
    return client


@contextlib.asynccontextmanager
async def online(stack: Stack, mxid: str) -> AsyncIterator[None]:
    """Staff with Element open: a device of theirs syncs the whole time, so
    Synapse shows them online (without a sync they go offline after 30 s)."""
    client = await staff_client(stack, mxid)
    syncing = asyncio.create_task(
        client.sync_forever(timeout=10_000, set_presence="online"),
        name=f"online {mxid}",
    )
    try:
        yield
    finally:
        syncing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await syncing
        await client.close()


@pytest.fixture
async def anna(stack: Stack) -> AsyncIterator[AsyncClient]:
    """Anna Schmidt (Bürgerbüro) in a real Matrix client."""
    client = await staff_client(stack, ANNA)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def repo() -> Path:
    return Path(__file__).resolve().parents[2]
