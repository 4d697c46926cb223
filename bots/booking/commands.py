"""The staff's commands of the virtual citizen office, in a case room:

- ``!next``: the next citizen waiting for you is pulled into a 1:1 call with
  you (bots/booking/visits.py); the others' places move up.
- ``!invite-guest [name]``: a personal link into the running call for a third
  person (an interpreter, a guardian), valid until an hour after the
  appointment's planned end.
- ``!calendar``: your appointments as a calendar feed (ICS URL with a secret
  token) for Outlook or Thunderbird, sent in a direct message.
"""

from __future__ import annotations

from datetime import timedelta

from bots.video.jitsi import conference_url, participant_token
from bots.video.start import moderator_url
from bridge.clock import as_utc, routing_now, utcnow
from bridge.commands import Command
from bridge.db.models import Appointment
from bridge.i18n import say, staff_text
from bridge.lifecycle import Kind
from bridge.plugins import BotContext
from bridge.team import matrix_to

from .calendar import Calendar
from .visits import Visits

#: A guest's link lasts until this long after the appointment's planned end.
GUEST_AFTER = timedelta(hours=1)
#: Without an appointment (a !video call): this long from now.
GUEST_WITHOUT_APPOINTMENT = timedelta(hours=2)


class StaffCommands:
    def __init__(self, ctx: BotContext, visits: Visits, calendar: Calendar) -> None:
        self.ctx = ctx
        self.visits = visits
        self.calendar = calendar
        for name, handler in (
            ("next", self.next),
            ("invite-guest", self.invite_guest),
            ("calendar", self.send_calendar),
        ):
            ctx.commands.register(
                name,
                handler,
                staff_text(f"usage.{name}", "de"),
                staff_text(f"help.{name}", "de"),
            )

    async def next(self, command: Command) -> None:
        commands = self.ctx.commands
        if self.visits.jitsi is None:
            await commands.answer(command, "reply.video_not_set_up")
            return
        pulled = await self.visits.pull_next(command.sender)
        if pulled is None:
            await commands.answer(command, "reply.next_nobody")
            return
        if isinstance(pulled, Appointment):  # still in a call
            running = await self.ctx.store.get_case(pulled.case_id or "")
            await commands.answer(
                command,
                "reply.next_busy",
                reference=running.reference if running else "",
            )
            return
        case = pulled.case
        server = self.ctx.config.homeserver.server_name
        await commands.answer(
            command,
            "reply.next_pulled",
            name=pulled.appointment.name or case.reference,
            reference=case.reference,
            link=matrix_to(case.room_id or "", server),
        )
        if self.visits.jitsi.tokens_enabled:
            url = moderator_url(
                self.ctx, self.visits.jitsi, pulled.conference_id, command.sender
            )
            await commands.answer(command, "reply.moderator_link", url=url)

    async def invite_guest(self, command: Command) -> None:
        commands, jitsi = self.ctx.commands, self.visits.jitsi
        if jitsi is None:
            await commands.answer(command, "reply.video_not_set_up")
            return
        case = command.case
        call = await self.visits.calls.running(case.case_id)
        if call is None:
            await commands.answer(command, "reply.guest_no_call")
            return
        appointment = await self.visits.bookings.of_case(case.case_id)
        now = routing_now()
        until = (
            as_utc(appointment.end) + GUEST_AFTER
            if appointment is not None
            else now + GUEST_WITHOUT_APPOINTMENT
        )
        until = max(until, now + timedelta(minutes=15))
        name = command.args.strip()[:100] or staff_text("reply.guest_name", "de")
        token = participant_token(
            jitsi,
            call.conference_id,
            name,
            f"guest:{case.case_id}",
            moderator=False,
            now=utcnow(),
            ttl_seconds=int((until - now).total_seconds()),
            # A guest link may be passed on: its holder knocks at the lobby,
            # and staff in the call admit them.
            lobby_bypass=False,
        )
        await self.ctx.cases.lifecycle.record(
            case.case_id, Kind.GUEST_INVITED, actor=command.sender, data={"name": name}
        )
        await self.ctx.cases.add_system_event(
            case.case_id, say("appt_guest", case.language), kind="guest_invited"
        )
        zone = self.ctx.config.routing.zone
        await commands.answer(
            command,
            "reply.guest_link",
            url=conference_url(jitsi, call.conference_id, token),
            until=until.astimezone(zone).strftime("%d.%m.%Y %H:%M"),
        )

    async def send_calendar(self, command: Command) -> None:
        url = await self.calendar.new_feed(command.sender)
        await self.calendar.tell_privately(command, url)
