"""Booking video appointments without ever booking one time twice
(issue "Virtuelles Bürgerbüro"): an appointment is written together with
its holds — one row per 5-minute step of its person's time, from its start to
the end of the buffer after it — in one transaction. The holds' primary key
(person, step) makes the database refuse a second booking of the same time,
from any task or bridge process, and the booking tries the next person.

The caller (the booking bot, bots/booking) checks that the start is one of the
free slots (:func:`bridge.departments.video.slots`, fed by
:meth:`Bookings.busy`), opens the case and attaches it.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from .clock import as_utc, utcnow
from .db.models import Appointment, AppointmentHold
from .db.tables import TableStore
from .departments.video import GRAIN

BOOKED = "booked"
#: Booked, its time held, until the citizen confirms it (double opt-in).
PENDING = "pending"
CANCELLED = "cancelled"
NO_SHOW = "no_show"
#: Not confirmed in time (double opt-in): its time free again.
EXPIRED = "expired"
#: Waited, but nobody called the citizen in before the day's end.
NOT_SERVED = "not_served"
#: The states that hold a person's time.
HOLDING = (BOOKED, PENDING)


def units(start: datetime, end: datetime) -> range:
    """The 5-minute steps from ``start`` up to ``end`` (both on the grid)."""
    first = int(as_utc(start).timestamp()) // 60 // GRAIN
    last = -(-int(as_utc(end).timestamp()) // 60 // GRAIN)
    return range(first, last)


class Bookings(TableStore):
    async def busy(
        self, staff: Iterable[str], start: datetime, end: datetime
    ) -> dict[str, list[tuple[datetime, datetime]]]:
        """Booked times of ``staff`` that touch ``start``–``end``."""
        # Stored in UTC (SQLite keeps no offset): asked in UTC too.
        start, end = as_utc(start), as_utc(end)
        async with self.session() as s:
            rows = await s.scalars(
                select(Appointment).where(
                    Appointment.staff_mxid.in_(list(staff)),
                    Appointment.state.in_(HOLDING),
                    Appointment.start < end,
                    Appointment.end > start,
                )
            )
            found: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
            for row in rows:
                found[row.staff_mxid].append((as_utc(row.start), as_utc(row.end)))
            return dict(found)

    async def book(
        self,
        *,
        department: str,
        services: Sequence[str],
        start: datetime,
        end: datetime,
        buffer_minutes: int,
        staff: Sequence[str],
        client_id: str,
        state: str = BOOKED,
        zone: tzinfo = UTC,
        **details: Any,
    ) -> Appointment | None:
        """The appointment with the first of ``staff`` (fewest bookings that
        day first) whose time is free, or None when nobody's is. The same
        ``client_id`` again returns the first booking. ``details``: the
        citizen's (name, email, phone, language, walk_in)."""
        known = await self.by_client_id(client_id)
        if known is not None:
            return known
        start, end = as_utc(start), as_utc(end)  # stored in UTC, as all times
        held = units(start, end + timedelta(minutes=buffer_minutes))
        for mxid in await self._least_booked_first(staff, start, zone):
            appointment = Appointment(
                appointment_id="a_" + secrets.token_urlsafe(16),
                department=department,
                services=list(services),
                staff_mxid=mxid,
                start=start,
                end=end,
                state=state,
                client_id=client_id,
                created_at=utcnow(),
                **details,
            )
            try:
                async with self.session.begin() as s:
                    s.add(appointment)
                    await s.flush()
                    s.add_all(
                        AppointmentHold(
                            staff_mxid=mxid,
                            unit=unit,
                            appointment_id=appointment.appointment_id,
                        )
                        for unit in held
                    )
                return appointment
            except IntegrityError:
                # This person's time is taken — or the same request won in
                # parallel (its client_id): then that booking is the answer.
                known = await self.by_client_id(client_id)
                if known is not None:
                    return known
        return None

    async def _least_booked_first(
        self, staff: Sequence[str], start: datetime, zone: tzinfo
    ) -> list[str]:
        """``staff`` with the fewest appointments on the town's day of
        ``start`` first."""
        local = start.astimezone(zone)
        day = as_utc(datetime.combine(local.date(), time(), zone))
        async with self.session() as s:
            rows = await s.execute(
                select(Appointment.staff_mxid, func.count())
                .where(
                    Appointment.staff_mxid.in_(list(staff)),
                    Appointment.state.in_(HOLDING),
                    Appointment.start >= day,
                    Appointment.start < day + timedelta(days=1),
                )
                .group_by(Appointment.staff_mxid)
            )
            counts = {mxid: count for mxid, count in rows.all()}
        return sorted(staff, key=lambda mxid: counts.get(mxid, 0))

    async def by_client_id(self, client_id: str) -> Appointment | None:
        async with self.session() as s:
            return await s.scalar(
                select(Appointment).where(Appointment.client_id == client_id)
            )

    async def attach(self, appointment_id: str, case_id: str) -> bool:
        """The appointment's case, once: False when it had one already."""
        return await self._change_if(
            appointment_id, (Appointment.case_id.is_(None),), case_id=case_id
        )

    async def mark(self, appointment_id: str, column: str, at: datetime) -> bool:
        """Set a visit's moment (``arrived_at``, ``called_at``) once, while the
        appointment is booked: the first writer decides (a cancel, a no-show
        and a pull-in racing each other), in any process."""
        return await self._change_if(
            appointment_id,
            (Appointment.state == BOOKED, getattr(Appointment, column).is_(None)),
            **{column: at},
        )

    async def _change_if(
        self, appointment_id: str, conditions: tuple[Any, ...], **values: Any
    ) -> bool:
        """Write ``values`` to the appointment only while ``conditions`` hold,
        in one statement: whether this call changed it."""
        async with self.session.begin() as s:
            done = await s.execute(
                update(Appointment)
                .where(Appointment.appointment_id == appointment_id, *conditions)
                .values(**values)
            )
            return getattr(done, "rowcount", 0) == 1

    async def get(self, appointment_id: str) -> Appointment | None:
        async with self.session() as s:
            return await s.scalar(
                select(Appointment).where(Appointment.appointment_id == appointment_id)
            )

    async def of_case(self, case_id: str) -> Appointment | None:
        async with self.session() as s:
            return await s.scalar(
                select(Appointment)
                .where(Appointment.case_id == case_id)
                .order_by(Appointment.id.desc())
            )

    async def update(self, appointment_id: str, **values: Any) -> None:
        async with self.session.begin() as s:
            await s.execute(
                update(Appointment)
                .where(Appointment.appointment_id == appointment_id)
                .values(**values)
            )

    async def booked_between(
        self,
        start: datetime,
        end: datetime,
        staff: str | None = None,
        states: tuple[str, ...] = (BOOKED,),
    ) -> list[Appointment]:
        """Appointments (booked, unless ``states`` says otherwise) starting in
        ``start``–``end`` (of one person), by start."""
        query = select(Appointment).where(
            Appointment.state.in_(states),
            Appointment.start >= as_utc(start),
            Appointment.start < as_utc(end),
        )
        if staff is not None:
            query = query.where(Appointment.staff_mxid == staff)
        async with self.session() as s:
            return list(await s.scalars(query.order_by(Appointment.start)))

    async def waiting(self, staff: str) -> list[Appointment]:
        """Who waits for ``staff`` in the waiting room, in the order they are
        pulled in: by their appointment's start, then by arrival."""
        async with self.session() as s:
            return list(
                await s.scalars(
                    select(Appointment)
                    .where(
                        Appointment.staff_mxid == staff,
                        Appointment.state == BOOKED,
                        Appointment.arrived_at.is_not(None),
                        Appointment.called_at.is_(None),
                    )
                    .order_by(Appointment.start, Appointment.arrived_at)
                )
            )

    async def confirm(self, appointment_id: str) -> bool:
        """Pending → booked (double opt-in); False when it was not pending."""
        return await self._change_if(
            appointment_id, (Appointment.state == PENDING,), state=BOOKED
        )

    async def cancel(
        self,
        appointment_id: str,
        state: str = CANCELLED,
        *,
        unless: tuple[str, ...] = (),
        states: tuple[str, ...] = HOLDING,
    ) -> bool:
        """Cancelled (or ``no_show``, ``expired``), its time free again; False
        when it held no time (any more) or is not in one of ``states``, or one
        of the moments ``unless`` names is set (a citizen already called in
        cannot cancel; one who arrived is no no-show)."""
        async with self.session.begin() as s:
            done = await s.execute(
                update(Appointment)
                .where(
                    Appointment.appointment_id == appointment_id,
                    Appointment.state.in_(states),
                    *(getattr(Appointment, c).is_(None) for c in unless),
                )
                .values(state=state, cancelled_at=utcnow())
            )
            if getattr(done, "rowcount", 0) != 1:
                return False
            await s.execute(
                delete(AppointmentHold).where(
                    AppointmentHold.appointment_id == appointment_id
                )
            )
        return True
