"""Booking video appointments (bridge/booking.py) on SQLite and PostgreSQL:
twenty parallel bookings of one slot, exactly one wins per free person; the
buffer after an appointment is held; the same request twice is one booking; a
cancelled appointment frees its time; an erased case takes its appointment
and holds with it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bridge.booking import Bookings
from bridge.db.models import Appointment, AppointmentHold, Case
from bridge.db.store import Store

ANNA = "@anna.schmidt:buergerchat.localhost"
BERND = "@bernd.keller:buergerchat.localhost"
START = datetime(2026, 12, 8, 13, 0, tzinfo=UTC)  # 14:00 in Berlin


async def appointment(
    bookings: Bookings,
    client_id: str,
    start: datetime = START,
    minutes: int = 20,
    staff: tuple[str, ...] = (ANNA,),
) -> Appointment | None:
    return await bookings.book(
        department="buergerbuero",
        services=["personalausweis"],
        start=start,
        end=start + timedelta(minutes=minutes),
        buffer_minutes=5,
        staff=staff,
        client_id=client_id,
    )


async def book(
    bookings: Bookings,
    client_id: str,
    start: datetime = START,
    minutes: int = 20,
    staff: tuple[str, ...] = (ANNA,),
) -> str | None:
    """Who got it, or None."""
    found = await appointment(bookings, client_id, start, minutes, staff)
    return None if found is None else found.staff_mxid


async def test_twenty_at_once_for_one_slot_one_wins_per_person(store: Store) -> None:
    bookings = Bookings(store.engine)
    won = await asyncio.gather(*(book(bookings, f"c{n}") for n in range(20)))
    assert [w for w in won if w] == [ANNA]
    # With two people, two of twenty win, one each.
    later = START + timedelta(hours=1)
    won = await asyncio.gather(
        *(book(bookings, f"d{n}", later, staff=(ANNA, BERND)) for n in range(20))
    )
    assert sorted(w for w in won if w) == [ANNA, BERND]


async def test_the_buffer_is_held_and_a_repeat_is_the_same_booking(
    store: Store,
) -> None:
    bookings = Bookings(store.engine)
    first = await appointment(bookings, "same", minutes=20)
    assert first is not None
    again = await appointment(bookings, "same", minutes=20)
    assert again is not None and again.appointment_id == first.appointment_id
    # 14:20 falls into the 5 minutes after; 14:25 is free; 13:45 (ends
    # 14:05 plus its own buffer) runs into it.
    assert await book(bookings, "x1", START + timedelta(minutes=20)) is None
    assert await book(bookings, "x2", START - timedelta(minutes=15)) is None
    assert await book(bookings, "x3", START + timedelta(minutes=25)) == ANNA
    busy = await bookings.busy([ANNA], START, START + timedelta(hours=1))
    assert len(busy[ANNA]) == 2


async def test_cancelling_frees_the_time(store: Store) -> None:
    bookings = Bookings(store.engine)
    first = await appointment(bookings, "one", minutes=10)
    assert first is not None
    assert await book(bookings, "two") is None
    assert await bookings.cancel(first.appointment_id)
    assert not await bookings.cancel(first.appointment_id)  # once
    assert await book(bookings, "two") == ANNA


async def test_an_erased_case_takes_its_appointment_with_it(store: Store) -> None:
    bookings = Bookings(store.engine)
    case = await store.create_case(
        case_id="c_erase",
        reference_prefix="BC",
        department="buergerbuero",
        topic=None,
        language="de",
        citizen_name="Eva",
        ghost_mxid="@bc_erase:buergerchat.localhost",
        state="booked",
    )
    booked = await appointment(bookings, "erase-me", minutes=20)
    assert booked is not None
    await bookings.attach(booked.appointment_id, case.case_id)
    async with store.session.begin() as s:
        await s.delete(await s.get(Case, case.number))
    assert await bookings.by_client_id("erase-me") is None
    async with store.session() as s:
        assert await s.scalar(select(func.count()).select_from(AppointmentHold)) == 0
