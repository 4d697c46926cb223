"""The virtual citizen office where things go wrong half way or at once
(reproduced by this session's second review): parallel bookings to one
mailbox against its quota; a no-show, an arrival whose follow-up broke off;
expiry racing a confirmation; an appointment the sweep cannot settle."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bridge.booking import Bookings
from bridge.db.models import Appointment
from tests.harness import harness
from tests.unit.bots.test_booking_flow import (
    ANNA,
    TUESDAY,
    appointment_of,
    book,
    booking,
    case_of,
    double_opt_in,
    notices,
    start_booked,
    unlimited,
)


async def test_confirmation_quota_races(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        unlimited(data)
        data["limits"].update(confirmations_per_recipient="3/day")

    async with harness(tmp_path, start=TUESDAY, change=change) as h, h.api() as client:
        times = ["14:00", "14:30", "15:00", "15:30", "14:00", "14:30", "15:00", "15:30"]
        bodies = [
            booking(
                n,
                start=f"2026-11-{24 + n // 4}T{t}:00+01:00",
                email="victim@example.org",
            )
            for n, t in enumerate(times)
        ]
        resps = await asyncio.gather(
            *(client.post("/api/v1/appointments", json=b) for b in bodies)
        )
        assert sorted(r.status for r in resps).count(201) == 3
        async with h.store.session() as s:
            n = await s.scalar(
                select(func.count())
                .select_from(Appointment)
                .where(Appointment.state == "booked")
            )
        assert n == 3, f"{n} bookings for one mailbox with a 3/day quota"
        async with h.store.session() as s:
            ids = list(
                await s.scalars(
                    select(Appointment.appointment_id).where(
                        Appointment.state == "booked"
                    )
                )
            )
        for appointment_id in ids:
            assert await h.ctx.mail.get(f"appt-booked:{appointment_id}") is not None


async def test_no_show_broken_after_cancel_leaves_case_open(tmp_path: Path) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        answer = await book(h, client, booking())
        office = h.bots["booking"].office
        real = office.finish
        broke: list[int] = []

        async def breaks_once(*a: Any, **kw: Any) -> Any:
            if not broke:
                broke.append(1)
                raise RuntimeError("lost the database")
            return await real(*a, **kw)

        office.finish = breaks_once
        h.clock.advance(hours=4, minutes=16)
        await h.run_jobs()
        h.clock.advance(hours=2)
        await h.run_jobs()
        h.clock.advance(days=1)
        await h.run_jobs()
        case = await case_of(h, answer["case_id"])
        assert case.closed_at is not None, "case stays open in 'booked' for ever"


async def test_expire_racing_confirm(tmp_path: Path) -> None:
    async with harness(tmp_path, start=TUESDAY, change=double_opt_in) as h:
        async with h.api() as client:
            answer = await book(h, client, booking())
            office = h.bots["booking"].office
            stale = await office.bookings.get(answer["appointment_id"])
            assert stale is not None and stale.state == "pending"
            # the citizen confirms just as the expiry job read the row
            await office.confirm(await office.bookings.get(answer["appointment_id"]))
            assert await h.ctx.mail.get(f"appt-booked:{answer['appointment_id']}")
            assert await office.expire(stale) is False
            appt = await appointment_of(h, answer["case_id"])
            assert appt.state == "booked", "a confirmed booking was expired"


async def test_sweep_blocked_by_one_bad_appointment(tmp_path: Path) -> None:
    async with await start_booked(tmp_path) as h:
        bookings = Bookings(h.store.engine)
        start = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
        common = dict(
            services=["personalausweis"],
            buffer_minutes=5,
            staff=(ANNA,),
            name="E",
            email="e@example.org",
            language="de",
        )
        bad = await bookings.book(
            department="gone",
            start=start,
            end=start + timedelta(minutes=20),
            client_id="bad",
            **common,
        )
        good = await bookings.book(
            department="buergerbuero",
            start=start + timedelta(hours=1),
            end=start + timedelta(hours=1, minutes=20),
            client_id="good",
            **common,
        )
        assert bad and good
        await h.start("booking")
        for _ in range(5):
            h.clock.advance(minutes=2)
            await h.run_jobs()
        fresh = await bookings.get(good.appointment_id)
        assert fresh is not None
        assert fresh.case_id is not None, (
            "one unsettleable appointment blocks the sweep"
        )


async def test_arrival_broken_after_mark_drops_the_citizen(tmp_path: Path) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        answer = await book(h, client, booking())
        visits = h.bots["booking"].visits
        real = visits._arrived
        broke: list[int] = []

        async def breaks_once(*a: Any) -> Any:
            if not broke:
                broke.append(1)
                raise RuntimeError("lost the database")
            return await real(*a)

        visits._arrived = breaks_once
        h.clock.advance(hours=3, minutes=55)
        auth = {"Authorization": f"Bearer {answer['token']}"}
        room = f"/api/v1/cases/{answer['case_id']}/waiting-room"
        first = await client.post(room, headers=auth)
        assert first.status == 500  # the break, answered as our fault
        again = await client.post(room, headers=auth)
        assert again.status == 200
        case = await case_of(h, answer["case_id"])
        assert case.state == "waiting"
        await h.staff_says(case, ANNA, "!next")
        assert (await case_of(h, answer["case_id"])).state == "in_call"
        assert any("im Videogespräch" in n for n in notices(h, case.room_id or ""))
