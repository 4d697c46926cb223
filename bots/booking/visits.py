"""The visit: the waiting room (from shortly before the start; a walk-in at
once), the place in it and the expected start, ``!next`` pulling the next
citizen into a 1:1 call, the call's end, and the no-show.

The order of the waiting room is one person's: whoever booked them (a walk-in
is booked on the spot, bots/booking/walkin.py), by their appointment's start.
The expected start of each is worked out from the staff member's current call
and the durations of those ahead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bots.video.calls import VideoCalls
from bots.video.jitsi import JitsiSettings, room_path
from bots.video.start import begin_call
from bots.video.widget_event import widget_id_for
from bridge.booking import BOOKED, NO_SHOW, NOT_SERVED
from bridge.clock import as_utc, routing_now
from bridge.db.models import Appointment, Case
from bridge.i18n import say, staff_text
from bridge.lifecycle import InvalidTransition, Kind, State

from .errors import NotBooked, TooEarly
from .office import Office

log = logging.getLogger("buergerchat.booking")


@dataclass(frozen=True)
class Place:
    position: int
    expected_start: datetime

    def as_json(self, zone: object) -> dict[str, Any]:
        return {
            "position": self.position,
            "ahead": self.position - 1,
            "expected_start": self.expected_start.astimezone(zone).isoformat(),  # type: ignore[arg-type]
        }


@dataclass(frozen=True)
class Pulled:
    appointment: Appointment
    case: Case
    conference_id: str


class Visits:
    def __init__(
        self, office: Office, jitsi: JitsiSettings | None, calls: VideoCalls
    ) -> None:
        self.office = office
        self.ctx = office.ctx
        self.bookings = office.bookings
        self.jitsi = jitsi
        self.calls = calls

    # --- the waiting room ---------------------------------------------------------

    def opens_at(self, appointment: Appointment) -> datetime:
        before = timedelta(minutes=self.office.settings.waiting_room_opens_minutes)
        return as_utc(appointment.start) - before

    async def arrive(self, appointment: Appointment, case: Case) -> Place:
        """The citizen enters the waiting room: their place (the same again on
        a second call), or :class:`TooEarly`, or :class:`NotBooked`. The
        appointment's row decides a race with a no-show or a cancel."""
        if appointment.state != BOOKED or case.state not in (
            State.BOOKED,
            State.WAITING,
        ):
            raise NotBooked()
        if appointment.arrived_at is None:
            now = routing_now()
            if now < self.opens_at(appointment) and not appointment.walk_in:
                zone = self.ctx.config.routing.zone
                raise TooEarly(
                    opens_at=self.opens_at(appointment).astimezone(zone).isoformat()
                )
            if await self.bookings.mark(appointment.appointment_id, "arrived_at", now):
                await self._arrived(appointment, case)
            appointment.arrived_at = now
        elif case.state == State.BOOKED:
            # Arrived, but a crash came before the case moved: move it now.
            await self._arrived(appointment, case)
        places = await self.tell_places(appointment.staff_mxid)
        place = places.get(appointment.appointment_id)
        if place is None:  # pulled in, cancelled or missed meanwhile
            raise NotBooked()
        return place

    async def _arrived(self, appointment: Appointment, case: Case) -> None:
        try:
            await self.ctx.cases.lifecycle.transition(
                case.case_id,
                State.WAITING,
                expect=frozenset({State.BOOKED}),
                data={"appointment_id": appointment.appointment_id},
            )
        except InvalidTransition:
            return  # staff closed the case meanwhile
        await self.ctx.cases.add_system_event(
            case.case_id,
            say("appt_arrived", case.language),
            kind="arrived",
            key=f"arrived:{appointment.appointment_id}",
        )
        name = appointment.name or case.reference
        await self.office.notices.to_room(
            case,
            lambda language: staff_text("booking.arrived", language, name=name),
            f"appt-arrived:{appointment.appointment_id}",
        )

    async def places(self, staff: str) -> dict[str, Place]:
        """Each waiting appointment's place and expected start."""
        now = routing_now()
        cursor = now
        for running in await self._in_call(staff):
            planned = as_utc(running.end) - as_utc(running.start)
            cursor = max(cursor, as_utc(running.called_at or now) + planned)
        found: dict[str, Place] = {}
        for n, appointment in enumerate(await self.bookings.waiting(staff), start=1):
            expected = max(cursor, as_utc(appointment.start))
            found[appointment.appointment_id] = Place(n, expected)
            cursor = expected + (as_utc(appointment.end) - as_utc(appointment.start))
        return found

    async def _in_call(self, staff: str) -> list[Appointment]:
        return [
            a
            for a in await self.bookings.booked_between(
                routing_now() - timedelta(hours=12),
                routing_now() + timedelta(hours=12),
                staff,
            )
            if a.called_at is not None and a.ended_at is None
        ]

    async def tell_places(self, staff: str) -> dict[str, Place]:
        """Everyone waiting for ``staff`` whose place changed reads the new one
        (``kind: "waiting"`` on their stream)."""
        places = await self.places(staff)
        zone = self.ctx.config.routing.zone
        for appointment in await self.bookings.waiting(staff):
            place = places[appointment.appointment_id]
            if appointment.told_position == place.position or not appointment.case_id:
                continue
            await self.bookings.update(
                appointment.appointment_id, told_position=place.position
            )
            case = await self.ctx.store.get_case(appointment.case_id)
            if case is None:
                continue
            await self.ctx.cases.add_system_event(
                case.case_id,
                say(
                    "appt_waiting",
                    case.language,
                    position=place.position,
                    time=place.expected_start.astimezone(zone).strftime("%H:%M"),
                ),
                kind="waiting",
                **place.as_json(zone),
            )
        return places

    # --- pulling the next one in ------------------------------------------------------

    async def pull_next(self, staff: str) -> Pulled | Appointment | None:
        """The next citizen waiting for ``staff`` is in a call with them now
        (None: nobody waits; an Appointment: the one ``staff`` is still in a
        call with). One at a time per person, in any process. A pull a crash
        or a retried transaction left half done is finished instead of pulling
        in one more."""
        if self.jitsi is None:
            raise RuntimeError("video is not set up")
        async with self.ctx.cases.cluster.lock(f"next:{staff}"):
            for appointment in await self._in_call(staff):
                case = await self.ctx.store.get_case(appointment.case_id or "")
                if case is None:
                    continue
                if case.state == State.WAITING:  # claimed, not moved: finish it
                    return await self._move_and_call(appointment, case, staff)
                if case.state == State.IN_CALL:
                    if await self.ctx.cases.lifecycle.by_this_cause(
                        case.case_id, Kind.CALLED
                    ):
                        return await self._call(appointment, case)
                    if await self.calls.running(case.case_id) is not None:
                        return appointment  # still in that call
                # Its call is over (or the case moved on): not in a call.
                await self.bookings.update(
                    appointment.appointment_id, ended_at=routing_now()
                )
            for appointment in await self.bookings.waiting(staff):
                # The appointment's row decides: a cancel or another !next
                # that came first wins.
                if not await self.bookings.mark(
                    appointment.appointment_id, "called_at", routing_now()
                ):
                    continue
                case = await self.ctx.store.get_case(appointment.case_id or "")
                if case is None:
                    continue
                pulled = await self._move_and_call(appointment, case, staff)
                if pulled is not None:
                    return pulled
        return None

    async def _move_and_call(
        self, appointment: Appointment, case: Case, staff: str
    ) -> Pulled | None:
        try:
            await self.ctx.cases.lifecycle.transition(
                case.case_id,
                State.IN_CALL,
                expect=frozenset({State.WAITING}),
                actor=staff,
                data={"appointment_id": appointment.appointment_id},
            )
        except InvalidTransition:
            # Staff closed it meanwhile: that visit is over.
            await self.bookings.update(
                appointment.appointment_id, ended_at=routing_now()
            )
            return None
        case.state = State.IN_CALL.value
        return await self._call(appointment, case)

    async def _call(self, appointment: Appointment, case: Case) -> Pulled:
        assert self.jitsi is not None
        if not case.room_id:
            case.room_id = await self.ctx.cases.ensure_room(case)
        call = await begin_call(
            self.ctx,
            self.jitsi,
            self.calls,
            case,
            sender=appointment.staff_mxid,
            audio_only=False,
            widget_id=widget_id_for(f"next:{appointment.appointment_id}"),
            resumed=await self.calls.running(case.case_id),
        )
        name = self.ctx.cases.staff_name(case.room_id or "", appointment.staff_mxid)
        await self.ctx.cases.add_system_event(
            case.case_id,
            say("appt_called", case.language, name=name),
            kind="called",
            key=f"called:{appointment.appointment_id}",
            video={
                "domain": self.jitsi.domain,
                "room": room_path(self.jitsi, call.conference_id),
                "join": f"/api/v1/cases/{case.case_id}/video",
            },
        )
        await self.tell_places(appointment.staff_mxid)
        return Pulled(appointment, case, call.conference_id)

    # --- the end of a visit ---------------------------------------------------------

    async def call_ended(self, case_id: str) -> None:
        """The call of an appointment ended (``!video end``): recorded, and the
        expected starts of those still waiting move up."""
        appointment = await self.bookings.of_case(case_id)
        if appointment is None or appointment.ended_at is not None:
            return
        await self.bookings.update(appointment.appointment_id, ended_at=routing_now())
        await self.tell_places(appointment.staff_mxid)

    async def overdue(self, appointment: Appointment) -> bool:
        """Waiting an hour past the planned end, never called in: the citizen
        is told nobody can take them today, staff read it, the case closes."""
        if appointment.arrived_at is None or not appointment.case_id:
            return False
        case = await self.ctx.store.get_case(appointment.case_id)
        if case is None or case.state != State.WAITING:
            return False
        # Already not_served (a crash came before the rest): finish it.
        if appointment.state != NOT_SERVED and not await self.bookings.cancel(
            appointment.appointment_id, NOT_SERVED, unless=("called_at",)
        ):
            return False
        await self.office.finish(appointment, case, Kind.NOT_SERVED, by="system")
        await self.tell_places(appointment.staff_mxid)
        return True

    async def no_show(self, appointment: Appointment) -> bool:
        """Not in the waiting room in time: the time is free again, the case
        says so and closes, the citizen gets a mail. False if they came (or the
        appointment ended otherwise)."""
        if appointment.arrived_at is not None or not appointment.case_id:
            return False
        case = await self.ctx.store.get_case(appointment.case_id)
        if case is None or case.state != State.BOOKED:
            return False
        # Already no_show (a crash came before the rest): finish it.
        if appointment.state != NO_SHOW and not await self.bookings.cancel(
            appointment.appointment_id, NO_SHOW, unless=("arrived_at",)
        ):
            return False
        await self.bookings.update(appointment.appointment_id, no_show_at=routing_now())
        await self.office.finish(appointment, case, Kind.NO_SHOW, by="system")
        return True
