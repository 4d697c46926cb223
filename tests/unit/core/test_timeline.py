"""The one writer of the citizen's timeline on SQLite and PostgreSQL: what it
adds wakes the case's long-polls, and only something new wakes them."""

from __future__ import annotations

import asyncio

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
