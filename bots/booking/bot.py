"""The booking bot: the virtual citizen office's API, its staff commands
(``!next``, ``!invite-guest``, ``!calendar``) and its timers (reminders,
no-shows, the morning notice, the sweep that settles bookings a crash left
half done)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import ClassVar

from aiohttp import web

from bots.video.calls import VideoCalls
from bots.video.section import VideoSettings
from bridge.booking import BOOKED, HOLDING
from bridge.jobs import GiveUp, JobRun
from bridge.lifecycle import DomainEvent, Kind, State
from bridge.plugins import BotContext

from .api import BookingAPI
from .calendar import Calendar
from .commands import StaffCommands
from .errors import NotBooked
from .notices import Notices
from .office import EXPIRE_JOB, NO_SHOW_JOB, OVERDUE_JOB, REMINDER_JOB, Office
from .privacy import BookingPrivacy
from .section import BookingSettings, read_config
from .visits import Visits

log = logging.getLogger("buergerchat.booking")
SWEEP_JOB = "booking.sweep"
SWEEP_EVERY = timedelta(minutes=1)


class BookingBot:
    #: After the video bot, whose calls it starts.
    order: ClassVar[int] = 25
    name = "booking"
    config_section: ClassVar[str] = "booking"
    read_config = staticmethod(read_config)

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        self.settings: BookingSettings = ctx.config.plugin(self.config_section)
        video: VideoSettings = ctx.config.plugin("video")
        self.notices = Notices(ctx, self.settings, video.helpline)
        self.office = Office(ctx, self.settings, self.notices)
        self.visits = Visits(self.office, video.jitsi, VideoCalls(ctx.store.engine))
        self.api = BookingAPI(self.office, self.visits)
        self.calendar = Calendar(ctx, self.settings, self.office)
        self.commands = StaffCommands(ctx, self.visits, self.calendar)
        jobs = ctx.jobs
        jobs.kind(REMINDER_JOB, self._reminder)
        jobs.kind(NO_SHOW_JOB, self._no_show)
        jobs.kind(EXPIRE_JOB, self._expire)
        jobs.kind(OVERDUE_JOB, self._overdue)
        jobs.kind(SWEEP_JOB, self._sweep, every=SWEEP_EVERY)
        ctx.privacy.add_part(BookingPrivacy(self.office.bookings).part())
        lifecycle = ctx.cases.lifecycle
        lifecycle.subscribe(Kind.CLOSED, self._closed)
        lifecycle.subscribe(Kind.CALL_ENDED, self._call_ended)

    async def start(self) -> None:
        await self.ctx.jobs.enqueue(SWEEP_JOB, SWEEP_JOB)
        await self.calendar.start()

    async def stop(self) -> None:
        pass

    def routes(self) -> list[web.RouteDef]:
        return [*self.api.routes(), *self.calendar.routes()]

    # --- timers -----------------------------------------------------------------

    async def _reminder(self, run: JobRun) -> None:
        appointment = await self.office.bookings.get(str(run.payload["appointment_id"]))
        if appointment is None or appointment.state != BOOKED:
            return  # cancelled, missed or erased: no reminder
        if appointment.arrived_at is not None or appointment.case_id is None:
            return
        case = await self.ctx.store.get_case(appointment.case_id)
        if case is None or case.state != State.BOOKED:
            return
        await self.notices.mail(
            appointment, case, "reminder", suffix=f":{run.payload['minutes']}"
        )

    async def _no_show(self, run: JobRun) -> None:
        appointment = await self.office.bookings.get(str(run.payload["appointment_id"]))
        if appointment is None:
            raise GiveUp("the appointment is gone (erased)")
        if await self.visits.no_show(appointment):
            log.info(
                "appointment %s: the citizen did not come", appointment.appointment_id
            )

    async def _overdue(self, run: JobRun) -> None:
        appointment = await self.office.bookings.get(str(run.payload["appointment_id"]))
        if appointment is not None and await self.visits.overdue(appointment):
            log.warning(
                "appointment %s: waited, nobody called", appointment.appointment_id
            )

    async def _expire(self, run: JobRun) -> None:
        appointment = await self.office.bookings.get(str(run.payload["appointment_id"]))
        if appointment is not None and await self.office.expire(appointment):
            log.info("appointment %s not confirmed in time", appointment.appointment_id)

    async def _sweep(self, run: JobRun) -> None:
        for appointment in await self.office.unsettled():
            log.warning(
                "appointment %s was left half done; settling it now",
                appointment.appointment_id,
            )
            try:
                await self.office.settle(appointment)
            except NotBooked as e:  # its department was removed: say so once
                await self.office.bookings.update(
                    appointment.appointment_id, settled=appointment.state
                )
                await self.ctx.team.alert_admins(
                    f"Videotermin {appointment.appointment_id} "
                    f"({appointment.department}) kann nicht angelegt werden: {e}",
                    key=f"unsettled:{appointment.appointment_id}",
                )
            except Exception:  # noqa: BLE001 - one bad appointment stops no other
                log.exception("settling %s failed", appointment.appointment_id)

    # --- what other parts did ---------------------------------------------------------

    async def _closed(self, event: DomainEvent) -> None:
        """Staff closed a case before its appointment took place: its time is
        free again, the citizen gets the cancellation (with the .ics that
        removes the entry), and the close is the record."""
        appointment = await self.office.bookings.of_case(event.case_id)
        if appointment is None or appointment.state not in HOLDING:
            return
        if appointment.called_at is not None:
            if appointment.ended_at is None:
                await self.visits.call_ended(event.case_id)
            return
        if not await self.office.bookings.cancel(
            appointment.appointment_id, unless=("called_at",)
        ):
            return
        log.info("case closed: appointment %s cancelled", appointment.appointment_id)
        case = await self.ctx.store.get_case(event.case_id)
        if case is not None:
            await self.office.tell_ended(appointment, case, Kind.CANCELLED)

    async def _call_ended(self, event: DomainEvent) -> None:
        await self.visits.call_ended(event.case_id)


__all__ = ["BookingBot"]
