"""The one writer of the citizen's timeline on SQLite and PostgreSQL: what it
adds wakes the case's long-polls, and only something new wakes them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import delete

from bridge.db.engine import create_engine
from bridge.db.models import CaseEvent
from bridge.db.store import Store
from bridge.timeline import Timeline

from .sample import case


async def woken(future: asyncio.Future[None]) -> bool:
    """Whether the waiter was woken (after letting the loop run once)."""
    await asyncio.sleep(0)
    return future.done()


async def test_an_added_event_wakes_the_case_once(store: Store) -> None:
    """A new event wakes the waiter; the same client id again is no new event
    and wakes nobody (nor writes a second row)."""
    timeline = Timeline(store)
    case_id = await case(store, "c_one")
    waiter = timeline.notifier.subscribe(case_id)
    first, created = await timeline.add(
        case_id, type="message", sender="citizen", body="Hallo", client_id="m1"
    )
    assert created and await woken(waiter)
    waiter = timeline.notifier.subscribe(case_id)
    again, created = await timeline.add(
        case_id, type="message", sender="citizen", body="Hallo", client_id="m1"
    )
    assert not created and again.seq == first.seq
    assert not await woken(waiter)
    assert [e.body for e in await store.events_after(case_id, 0)] == ["Hallo"]
    timeline.notifier.wait_done(case_id, waiter)


async def test_a_staff_event_seen_twice_wakes_once(store: Store) -> None:
    """Deduplicated by the Matrix event id, as a replayed transaction is."""
    timeline = Timeline(store)
    case_id = await case(store, "c_one")
    for expected in (True, False):
        waiter = timeline.notifier.subscribe(case_id)
        _, created = await timeline.add(
            case_id, type="message", sender="staff", body="Tag", matrix_event_id="$e"
        )
        assert created is expected and await woken(waiter) is expected
        timeline.notifier.wait_done(case_id, waiter)


async def test_another_cases_event_wakes_nobody_here(store: Store) -> None:
    timeline = Timeline(store)
    mine, other = await case(store, "c_one"), await case(store, "c_two")
    waiter = timeline.notifier.subscribe(mine)
    elsewhere = timeline.notifier.subscribe(other)
    await timeline.add(other, type="system", sender="system", body="Hinweis")
    assert await woken(elsewhere)
    assert not await woken(waiter)
    timeline.notifier.wait_done(mine, waiter)


async def test_marking_a_message_delivered_wakes_the_case(store: Store) -> None:
    timeline = Timeline(store)
    case_id = await case(store, "c_one")
    event, _ = await timeline.add(
        case_id,
        type="message",
        sender="citizen",
        body="Hallo",
        client_id="m1",
        delivery="pending",
    )
    waiter = timeline.notifier.subscribe(case_id)
    await timeline.mark_delivered(case_id, event.seq, "$sent")
    assert await woken(waiter)
    stored = await store.get_event(event.seq)
    assert stored is not None
    assert (stored.delivery, stored.matrix_event_id) == ("delivered", "$sent")


class CountingReads:
    """Counts the timeline's reads of ``case_events`` (Store.events_after)."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        self._real = store.events_after
        store.events_after = self._read  # type: ignore[method-assign]

    async def _read(self, case_id: str, after: int, limit: int = 200) -> Any:
        self.count += 1
        return await self._real(case_id, after, limit)


async def test_a_widget_woken_by_a_new_event_gets_it_without_a_read(
    store: Store,
) -> None:
    """The widgets that had everything are woken for exactly the new event:
    it is handed on from memory. One that is further behind reads it all."""
    timeline = Timeline(store)
    case_id = await case(store, "c_one")
    first, _ = await timeline.add(case_id, type="system", sender="system", body="1")
    assert [e.seq for e in await timeline.read_after(case_id, 0)] == [first.seq]
    reads = CountingReads(store)
    second, _ = await timeline.add(case_id, type="system", sender="system", body="2")
    assert [e.body for e in await timeline.read_after(case_id, first.seq)] == ["2"]
    assert reads.count == 0
    assert [e.body for e in await timeline.read_after(case_id, 0)] == ["1", "2"]
    assert reads.count == 1
    assert await timeline.read_after(case_id, second.seq) == []


async def test_what_memory_cannot_vouch_for_is_read(store: Store) -> None:
    """Not from memory: a message marked delivered since (the memory has it
    pending), an erased case, and a process among several (another may have
    written between the cursor known here and the new event)."""
    timeline = Timeline(store)
    case_id = await case(store, "c_one")
    await timeline.read_after(case_id, 0)  # nothing yet: the cursor is known
    message, _ = await timeline.add(
        case_id, type="message", sender="citizen", body="Hallo",
        client_id="m1", delivery="pending",
    )  # fmt: skip
    await timeline.mark_delivered(case_id, message.seq, "$sent")
    (read,) = await timeline.read_after(case_id, 0)
    assert read.delivery == "delivered"

    await timeline.add(case_id, type="system", sender="system", body="weg")
    await _erase_events(store, case_id)
    timeline.forget(case_id)
    assert await timeline.read_after(case_id, message.seq) == []

    timeline.notifier.peers = lambda case_id, seq: None
    await timeline.read_after(case_id, 0)
    reads = CountingReads(store)
    await timeline.add(case_id, type="system", sender="system", body="neu")
    assert [e.body for e in await timeline.read_after(case_id, 0)] == ["neu"]
    assert reads.count == 1


async def _erase_events(store: Store, case_id: str) -> None:
    async with store.session.begin() as s:
        await s.execute(delete(CaseEvent).where(CaseEvent.case_id == case_id))


async def test_concurrent_writers_are_read_whole_and_in_order(store: Store) -> None:
    """Many writers of one case at once (on PostgreSQL eight "processes", each
    with its own pool): a widget that always asks from the last cursor it got
    sees every event, each once, in cursor order. Were cursors not handed out
    in commit order per case, a lower one could commit after a higher one was
    read, and be skipped for good."""
    url = store.engine.url.render_as_string(hide_password=False)
    shared = store.engine.dialect.name == "postgresql"
    stores = [Store(create_engine(url)) for _ in range(8)] if shared else [store]
    timelines = [Timeline(s) for s in stores]
    case_id = await case(store, "c_one")
    bodies = [f"{n}" for n in range(200)]
    seen: list[CaseEvent] = []
    done = asyncio.Event()

    async def widget() -> None:
        after, last_round = 0, False
        while not last_round:
            last_round = done.is_set()
            page = await store.events_after(case_id, after)
            seen.extend(page)
            after = page[-1].seq if page else after

    async def write(n: int) -> None:
        timeline = timelines[n % len(timelines)]
        await timeline.add(case_id, type="system", sender="system", body=str(n))

    reader = asyncio.create_task(widget())
    try:
        await asyncio.gather(*(write(n) for n in range(len(bodies))))
    finally:
        done.set()
        await reader
        for other in stores:
            if other is not store:
                await other.close()
    assert [e.seq for e in seen] == sorted({e.seq for e in seen})
    assert sorted(e.body for e in seen) == sorted(bodies)


async def test_an_add_cancelled_after_its_commit_is_not_skipped(store: Store) -> None:
    """A job's timeout cancels an add whose row commits anyway (SQLite's
    thread finishes it): its wake-up never came, so the next event is not
    handed on from memory as the only one after the old cursor."""
    timeline = Timeline(store)
    case_id = await case(store, "c_one")
    first, _ = await timeline.add(case_id, type="system", sender="system", body="1")
    await timeline.read_after(case_id, first.seq)  # the cursor is known
    real = store.add_event
    committed = asyncio.Event()

    async def commits_then_cancelled(*args: Any, **kwargs: Any) -> Any:
        await real(*args, **kwargs)
        committed.set()
        raise asyncio.CancelledError

    store.add_event = commits_then_cancelled  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await timeline.add(case_id, type="system", sender="system", body="X")
    store.add_event = real  # type: ignore[method-assign]
    assert committed.is_set()
    await timeline.add(case_id, type="system", sender="system", body="Y")
    got = await timeline.read_after(case_id, first.seq)
    assert [e.body for e in got] == ["X", "Y"]
