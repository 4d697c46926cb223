"""The inbox's hand-over (bridge.appservice.DurableAppService.drain): in one
process, a transaction the HTTP handler just stored is handed to the worker
in memory instead of being read back, but only while the table is known to
hold nothing else unprocessed; order, exactly-once and retries stay as the
table gives them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from mautrix.types import Event
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bridge.appservice import DurableAppService
from bridge.db.models import Transaction
from bridge.db.store import Store

from .sample import until
from .test_exactly_once import (  # noqa: F401 (the inbox fixture)
    fails_once_then_records,
    inbox,
    push_transaction,
)


@pytest.fixture
async def pushing(
    inbox: DurableAppService,  # noqa: F811 (the fixture)
) -> AsyncIterator[TestClient]:
    inbox._catch_up_due = False
    client = TestClient(TestServer(inbox.app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await inbox.stop_worker()


async def test_a_pushed_transaction_is_worked_off_without_reading_it_back(
    inbox: DurableAppService,  # noqa: F811
    store: Store,
    pushing: TestClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = [0]
    real = store.unprocessed_transactions

    async def unprocessed(limit: int = 50) -> Any:
        reads[0] += 1
        return await real(limit)

    at_dispatch: list[int] = []

    async def handler(e: Event) -> None:
        at_dispatch.append(reads[0])

    monkeypatch.setattr(store, "unprocessed_transactions", unprocessed)
    inbox.on_event(handler)
    inbox.start_worker()
    await until(lambda: reads[0] >= 1)  # the start: the table is worked off
    await asyncio.sleep(0.1)
    before = reads[0]
    await push_transaction(pushing, 1)
    await until(lambda: at_dispatch)
    assert at_dispatch == [before]


async def test_a_burst_of_pushes_is_worked_off_once_each_in_stored_order(
    inbox: DurableAppService,  # noqa: F811
    store: Store,
    pushing: TestClient,
) -> None:
    """Thirty pushes at once while the handler is slow: every event once, in
    the order the table numbered them (the order Synapse's answers came)."""
    worked: list[str] = []

    async def handler(e: Event) -> None:
        await asyncio.sleep(0.005)
        worked.append(str(e.event_id))

    inbox.on_event(handler)
    inbox.start_worker()
    await asyncio.gather(*(push_transaction(pushing, n) for n in range(1, 31)))
    await until(lambda: len(worked) >= 30)
    await asyncio.sleep(0.2)
    async with store.session() as s:
        order = (await s.scalars(select(Transaction).order_by(Transaction.seq))).all()
    assert worked == [f"$e{t.txn_id}" for t in order]
    assert (await store.inbox_lag())[0] == 0


async def test_a_handed_transaction_that_fails_is_worked_off_from_the_table(
    inbox: DurableAppService,  # noqa: F811
    store: Store,
    pushing: TestClient,
) -> None:
    """The database goes away while a handed-on transaction is worked off: it
    stays in the table, and it comes first, before the next push."""
    worked: list[str] = []
    inbox.on_event(fails_once_then_records(worked))
    await inbox.drain()  # the table is known worked off: hand-over from here
    await push_transaction(pushing, 1)
    with pytest.raises(OperationalError):
        await inbox.drain()
    await push_transaction(pushing, 2)
    await inbox.drain()
    assert worked == ["$e1", "$e2"]
    assert (await store.inbox_lag())[0] == 0
