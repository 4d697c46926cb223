"""Booking and cancelling: the appointment (bridge.booking, which never books one
time twice), its case in state ``booked`` with its room and the staff member in
it, and what follows — the timeline line, the notices to staff, the mail with
the ``.ics`` and the personal link, the reminder and no-show jobs.

Everything after the booking itself is :meth:`Office.settle`: each step keyed
by the appointment, so a retry (the same ``client_id`` again, or the sweep
after a crash between the booking and its case) finishes what is missing and
repeats nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from bridge.booking import BOOKED, CANCELLED, EXPIRED, HOLDING, PENDING, Bookings
from bridge.clock import as_utc, real_time, routing_now, utcnow
from bridge.db.models import Appointment, Case, CaseTransition
from bridge.departments.video import slots
from bridge.errors import InvalidField, RateLimited
from bridge.i18n import say
from bridge.lifecycle import InvalidTransition, Kind, State
from bridge.plugins import BotContext

from .errors import ClientIdReused, NotBooked, SlotTaken
from .form import BookingForm
from .notices import Notices
from .section import BookingSettings

log = logging.getLogger("buergerchat.booking")
REMINDER_JOB = "booking.reminder"
NO_SHOW_JOB = "booking.no_show"
EXPIRE_JOB = "booking.expire"
OVERDUE_JOB = "booking.overdue"
#: Still in the waiting room this long after the appointment's planned end:
#: nobody will come today; the citizen is told, the case closes.
OVERDUE_AFTER = timedelta(minutes=60)
#: Appointments whose case or mail a crash left undone are settled after this.
SETTLE_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class Booked:
    appointment: Appointment
    case: Case
    #: A chat token for the widget (a new one for each answer).
    token: str


class Office:
    def __init__(
        self, ctx: BotContext, settings: BookingSettings, notices: Notices
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.bookings = Bookings(ctx.store.engine)
        self.notices = notices

    # --- booking ----------------------------------------------------------------

    async def book(
        self, form: BookingForm, client_key: str | None, *, walk_in: bool = False
    ) -> Booked:
        """The appointment of ``form`` (the same ``client_id`` again: the same
        appointment, while it holds its time), or :class:`SlotTaken`. A
        ``walk_in``'s start was chosen by bots/booking/walkin.py."""
        known = await self.bookings.by_client_id(form.client_id)
        if known is not None:
            return await self.repeated(known, form)
        assert form.start is not None
        start = as_utc(form.start)
        if not walk_in:
            await self._check_offered(form, start)
        booked = await self.bookings.book(
            department=form.department.id,
            services=[s.id for s in form.services],
            start=start,
            end=start + timedelta(minutes=form.minutes),
            buffer_minutes=form.office.buffer_minutes,
            staff=form.office.staff,
            client_id=form.client_id,
            name=form.name,
            email=form.email,
            phone=form.phone,
            language=form.language,
            walk_in=walk_in,
            state=PENDING if self.settings.double_opt_in and not walk_in else BOOKED,
            zone=self.ctx.config.routing.zone,
        )
        if booked is None:
            raise SlotTaken()
        if form.email and not walk_in:
            # Counted once booked (requests that book nothing use up nobody's);
            # over it after all (parallel requests): the booking is undone.
            try:
                await self.ctx.limits.hit(
                    "confirmations_per_recipient", form.email.lower()
                )
            except RateLimited:
                await self.bookings.cancel(booked.appointment_id)
                raise
        case = await self.settle(booked, client_key)
        return Booked(booked, case, await self.ctx.cases.tokens.mint_chat(case.case_id))

    async def repeated(self, known: Appointment, form: BookingForm) -> Booked:
        """The same request again (its answer was lost): the same appointment
        with a fresh token, while it still holds its time and was asked the
        same; anything else is refused."""
        same = (
            known.department == form.department.id
            and list(known.services) == [s.id for s in form.services]
            and (form.start is None or as_utc(known.start) == as_utc(form.start))
            and (known.email or "").lower() == (form.email or "").lower()
        )
        if not same:
            raise ClientIdReused(
                "This client_id belongs to another booking; make a new one."
            )
        if known.state not in HOLDING:
            raise NotBooked()
        case = await self.settle(known)
        return Booked(known, case, await self.ctx.cases.tokens.mint_chat(case.case_id))

    async def _check_offered(self, form: BookingForm, start: datetime) -> None:
        """A start that is no slot at all (outside the hours, past the horizon,
        not on the grid) is the caller's mistake, not a taken time."""
        rules = self.ctx.config.routing
        now = routing_now()
        problem = InvalidField(
            "start",
            "This time is not offered for these services; choose a start from "
            "GET /api/v1/appointments/slots.",
        )
        horizon = timedelta(days=form.office.horizon_days + 1)
        if not now - timedelta(days=1) <= start <= now + horizon:
            raise problem
        day = start.astimezone(rules.zone).date()
        offered = slots(form.office, rules, form.minutes, day, 1, now)
        if not any(as_utc(s.start) == start for s in offered):
            raise problem

    async def settle(
        self, appointment: Appointment, client_key: str | None = None
    ) -> Case:
        """The appointment's case and everything that follows its booking (or,
        pending, the request to confirm it), each step once, one caller at a
        time (the request, its repeat, the sweep, the confirmation)."""
        async with self.ctx.cases.cluster.lock(f"booking:{appointment.appointment_id}"):
            fresh = await self.bookings.get(appointment.appointment_id) or appointment
            case = await self._case_of(fresh, client_key)
            appointment.case_id = fresh.case_id
            if fresh.settled == fresh.state:
                return case
            if fresh.state == PENDING:
                await self._ask_confirmation(fresh, case)
            elif fresh.state == BOOKED:
                await self._follow_up(fresh, case)
            await self.bookings.update(fresh.appointment_id, settled=fresh.state)
            return case

    async def _follow_up(self, appointment: Appointment, case: Case) -> None:
        key = appointment.appointment_id
        when = self.notices.when(appointment)
        await self.ctx.cases.add_system_event(
            case.case_id,
            say(
                "appt_booked",
                case.language,
                when=when,
                services=self.notices.service_names(appointment),
                reference=case.reference,
            ),
            kind="booked",
            key=f"booked:{key}",
            appointment_id=key,
            start=as_utc(appointment.start).isoformat(),
            end=as_utc(appointment.end).isoformat(),
        )
        await self.notices.booked(appointment, case)
        if appointment.email and not appointment.walk_in:
            await self.notices.mail(appointment, case, "booked")
        await self._schedule(appointment, case)

    async def _ask_confirmation(self, appointment: Appointment, case: Case) -> None:
        """Double opt-in: the citizen confirms by the link in a first mail
        within ``confirm_within_minutes``, or the time is free again."""
        key = appointment.appointment_id
        minutes = self.settings.confirm_within_minutes
        await self.ctx.cases.add_system_event(
            case.case_id,
            say("appt_pending", case.language, minutes=minutes),
            kind="pending_confirmation",
            key=f"pending:{key}",
        )
        if appointment.email:
            await self.notices.mail(appointment, case, "confirm")
        await self.ctx.jobs.enqueue(
            EXPIRE_JOB,
            f"{EXPIRE_JOB}:{key}",
            {"appointment_id": key},
            run_at=as_utc(appointment.created_at) + timedelta(minutes=minutes),
            case_id=case.case_id,
        )

    async def confirm(self, appointment: Appointment) -> Case:
        """The citizen confirmed (double opt-in): booked, and everything a
        booking is owed follows. Again: the same answer."""
        if appointment.state == PENDING:
            if await self.bookings.confirm(appointment.appointment_id):
                appointment.state = BOOKED
            else:
                fresh = await self.bookings.get(appointment.appointment_id)
                if fresh is None:
                    raise NotBooked()
                appointment = fresh
        if appointment.state != BOOKED:
            raise NotBooked()
        return await self.settle(appointment)

    async def expire(self, appointment: Appointment) -> bool:
        """Not confirmed in time: the time is free again, the case closes (no
        mail: the address may not be the booker's)."""
        if appointment.case_id is None:
            return False
        case = await self.ctx.store.get_case(appointment.case_id)
        if appointment.state == PENDING:
            # Only while still pending: a confirmation that came first wins.
            if not await self.bookings.cancel(
                appointment.appointment_id, EXPIRED, states=(PENDING,)
            ):
                return False
        elif appointment.state != EXPIRED or case is None or case.closed_at:
            return False  # not expired; or expired and told before a crash
        if case is not None:
            await self.ctx.cases.lifecycle.record(
                case.case_id,
                Kind.CANCELLED,
                data={"appointment_id": appointment.appointment_id, "by": "expired"},
            )
            await self.ctx.cases.close_case(
                case,
                by=None,
                why=("appt_unconfirmed", {"when": self.notices.when(appointment)}),
            )
        return True

    async def _case_of(self, appointment: Appointment, client_key: str | None) -> Case:
        """The appointment's case: attached, or opened for it before a crash
        kept it from being attached, or opened now."""
        if appointment.case_id:
            case = await self.ctx.store.get_case(appointment.case_id)
            if case is not None:
                return case
        case = await self._opened_for(appointment)
        if case is None:
            department = self.ctx.config.department(appointment.department)
            if department is None:
                raise NotBooked("The department of this appointment no longer exists.")
            case, _ = await self.ctx.cases.open_case(
                department=department,
                topic=None,
                citizen_name=appointment.name,
                language=appointment.language,
                state=State.BOOKED.value,
                invite=(appointment.staff_mxid,),
                client_key=client_key,
                opened={"appointment_id": appointment.appointment_id},
            )
        if not await self.bookings.attach(appointment.appointment_id, case.case_id):
            # Another settler attached its case first (our lock lapsed): that
            # one is the appointment's; the one opened here closes.
            fresh = await self.bookings.get(appointment.appointment_id)
            attached = fresh and await self.ctx.store.get_case(fresh.case_id or "")
            if attached:
                await self.ctx.cases.close_case(case, by=None, note="doppelt")
                appointment.case_id = attached.case_id
                return attached
        appointment.case_id = case.case_id
        return case

    async def _opened_for(self, appointment: Appointment) -> Case | None:
        """A case whose ``opened`` event names the appointment."""
        since = as_utc(appointment.created_at) - timedelta(minutes=1)
        async with self.ctx.store.session() as s:
            rows = await s.scalars(
                select(CaseTransition).where(
                    CaseTransition.kind == Kind.OPENED.value,
                    CaseTransition.at >= since,
                )
            )
            found = [
                r.case_id
                for r in rows
                if (r.data or {}).get("appointment_id") == appointment.appointment_id
            ]
        return await self.ctx.store.get_case(found[0]) if found else None

    async def _schedule(self, appointment: Appointment, case: Case) -> None:
        jobs, key = self.ctx.jobs, appointment.appointment_id
        start = as_utc(appointment.start)
        now = routing_now()
        for minutes in self.settings.reminders_minutes:
            at = start - timedelta(minutes=minutes)
            # A reminder is no use once the confirmation is as recent.
            if at > now + timedelta(minutes=min(minutes, 60) // 2):
                await jobs.enqueue(
                    REMINDER_JOB,
                    f"{REMINDER_JOB}:{key}:{minutes}",
                    {"appointment_id": key, "minutes": minutes},
                    run_at=real_time(at),
                    case_id=case.case_id,
                )
        await jobs.enqueue(
            OVERDUE_JOB,
            f"{OVERDUE_JOB}:{key}",
            {"appointment_id": key},
            run_at=real_time(as_utc(appointment.end) + OVERDUE_AFTER),
            case_id=case.case_id,
        )
        await jobs.enqueue(
            NO_SHOW_JOB,
            f"{NO_SHOW_JOB}:{key}",
            {"appointment_id": key},
            run_at=real_time(start + timedelta(minutes=self.settings.no_show_minutes)),
            case_id=case.case_id,
        )

    async def unsettled(self) -> list[Appointment]:
        """Holding their time a while, but their follow-up incomplete: a crash
        came between the booking and its last step."""
        since = utcnow() - SETTLE_AFTER
        return [
            appointment
            for appointment in await self.bookings.booked_between(
                routing_now() - timedelta(days=1),
                routing_now() + timedelta(days=400),
                states=HOLDING,
            )
            if appointment.settled != appointment.state
            and as_utc(appointment.created_at) <= since
        ]

    # --- cancelling -------------------------------------------------------------

    async def cancel(self, appointment: Appointment, case: Case, *, by: str) -> None:
        """Cancelled by the citizen (``by`` "citizen"): the time is free again,
        the case says so and closes, the citizen gets a mail. The appointment's
        row decides a race with ``!next``: once called in, no cancel."""
        if case.state not in (State.BOOKED, State.WAITING):
            raise NotBooked()
        # Cancelled before, but the case still open: a crash came between;
        # the follow-up is finished now.
        if appointment.state != CANCELLED and not await self.bookings.cancel(
            appointment.appointment_id, unless=("called_at",)
        ):
            raise NotBooked()
        await self.finish(appointment, case, Kind.CANCELLED, by=by)

    async def finish(
        self, appointment: Appointment, case: Case, kind: Kind, *, by: str
    ) -> None:
        """A cancelled or missed appointment: recorded, told, the case closed."""
        try:
            await self.ctx.cases.lifecycle.record(
                case.case_id,
                kind,
                actor=None if by in ("citizen", "system") else by,
                data={"appointment_id": appointment.appointment_id, "by": by},
            )
        except InvalidTransition:
            pass  # closed meanwhile: its close is the record
        await self.tell_ended(appointment, case, kind)
        await self.ctx.cases.close_case(
            case,
            by=None,
            why=(f"appt_{kind.value}", {"when": self.notices.when(appointment)}),
        )

    async def tell_ended(
        self, appointment: Appointment, case: Case, kind: Kind
    ) -> None:
        """The citizen's mail (with an .ics that removes the entry) and the
        staff's notice about an appointment that will not take place."""
        # Never confirmed (double opt-in): the address may not be the booker's.
        if appointment.email and appointment.state != PENDING:
            await self.notices.mail(appointment, case, kind.value)
        await self.notices.ended(appointment, case, kind)


__all__ = ["BOOKED", "Booked", "Office"]
