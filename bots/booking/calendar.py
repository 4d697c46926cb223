"""The staff's day: a calendar feed per staff member (``GET
/api/v1/calendar/<token>.ics``, the token secret and kept only as SHA-256; a new
``!calendar`` replaces it) and the morning notice in each team room with the
day's appointments of its video staff.

The feed names the case's reference, the services and the case room's link,
not the citizen: it leaves the town's systems for Outlook or Thunderbird."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import TYPE_CHECKING

from aiohttp import web
from icalendar import Calendar as ICalendar
from icalendar import Event
from mautrix.errors import MatrixRequestError, MRoomInUse
from mautrix.types import MessageType, RoomAlias, RoomCreatePreset, RoomID, UserID
from sqlalchemy import delete, select

from bridge.clock import as_utc, real_time, routing_now, utcnow
from bridge.commands import Command
from bridge.db.models import Appointment
from bridge.db.tables import TableStore
from bridge.errors import NotFound
from bridge.i18n import for_readers, staff_text
from bridge.jobs import JobRun
from bridge.plugins import BotContext
from bridge.team import matrix_to
from bridge.tokens import token_hash

from .mails import appointment_event
from .models import CalendarFeed
from .section import BookingSettings

if TYPE_CHECKING:
    from .office import Office

log = logging.getLogger("buergerchat.booking")
MORNING_JOB = "booking.morning"
#: The feed shows appointments from this long ago on.
FEED_PAST = timedelta(days=14)
FEED_AHEAD = timedelta(days=400)


class Feeds(TableStore):
    async def replace(self, staff: str) -> str:
        token = secrets.token_urlsafe(32)
        async with self.session.begin() as s:
            await s.execute(
                delete(CalendarFeed).where(CalendarFeed.staff_mxid == staff)
            )
            s.add(
                CalendarFeed(
                    staff_mxid=staff, token_hash=token_hash(token), created_at=utcnow()
                )
            )
        return token

    async def staff_of(self, token: str) -> str | None:
        async with self.session() as s:
            return await s.scalar(
                select(CalendarFeed.staff_mxid).where(
                    CalendarFeed.token_hash == token_hash(token)
                )
            )


class Calendar:
    def __init__(
        self, ctx: BotContext, settings: BookingSettings, office: Office
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.office = office
        self.feeds = Feeds(ctx.store.engine)
        ctx.jobs.kind(MORNING_JOB, self._morning)

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/v1/calendar/{token}.ics", self.feed)]

    async def start(self) -> None:
        await self._schedule_morning(routing_now())

    # --- the feed ---------------------------------------------------------------

    async def new_feed(self, staff: str) -> str:
        token = await self.feeds.replace(staff)
        return f"{self.ctx.config.bridge.public_url}/api/v1/calendar/{token}.ics"

    async def feed(self, request: web.Request) -> web.Response:
        limits = self.ctx.limits
        await limits.hit("calendar_per_address", limits.client(request))
        staff = await self.feeds.staff_of(request.match_info["token"])
        # Someone no longer among the staff (departments.yaml) has no feed.
        if staff is None or staff not in self.ctx.config.all_staff():
            raise NotFound(
                "This calendar link is not valid (any more); type !calendar in a "
                "case room for a new one."
            )
        now = routing_now()
        found = await self.office.bookings.booked_between(
            now - FEED_PAST, now + FEED_AHEAD, staff
        )
        calendar = ICalendar()
        calendar.add("prodid", "-//Buergerchat//Videotermine//DE")
        calendar.add("version", "2.0")
        calendar.add("x-wr-calname", f"Bürgerchat – {self.ctx.config.town.name}")
        for appointment in found:
            calendar.add_component(await self._event(appointment))
        return web.Response(
            body=calendar.to_ical(),
            content_type="text/calendar",
            charset="utf-8",
            headers={"Cache-Control": "no-store"},
        )

    async def _event(self, appointment: Appointment) -> Event:
        case = (
            await self.ctx.store.get_case(appointment.case_id)
            if appointment.case_id
            else None
        )
        reference = case.reference if case else appointment.appointment_id
        link = None
        if case is not None and case.room_id:
            link = matrix_to(case.room_id, self.ctx.config.homeserver.server_name)
        services = self.office.notices.service_names(appointment)
        return appointment_event(
            uid=f"{appointment.appointment_id}@{self.ctx.config.homeserver.server_name}",
            start=as_utc(appointment.start),
            end=as_utc(appointment.end),
            summary=f"Videotermin {reference}: {services}",
            description="\n".join(x for x in (services, link) if x),
            url=link,
        )

    async def tell_privately(self, command: Command, url: str) -> None:
        """The feed's URL in a direct message from the bot (the case room's
        other members must not read it); the case room hears where it went."""
        intent = self.ctx.appservice.intent
        localpart = (
            f"{self.ctx.config.bridge.ghost_prefix}calendar_"
            + hashlib.sha256(command.sender.encode()).hexdigest()[:20]
        )
        try:
            room_id = str(
                await intent.create_room(
                    alias_localpart=localpart,
                    preset=RoomCreatePreset.TRUSTED_PRIVATE,
                    invitees=[UserID(command.sender)],
                    is_direct=True,
                    name="Bürgerchat",
                )
            )
        except MRoomInUse:
            server = self.ctx.config.homeserver.server_name
            answer = await intent.resolve_room_alias(
                RoomAlias(f"#{localpart}:{server}")
            )
            room_id = str(answer.room_id)
            try:
                await intent.invite_user(RoomID(room_id), UserID(command.sender))
            except MatrixRequestError:
                pass  # still in it
        language = self.ctx.commands.language_of(command.sender)
        await self.ctx.cases.deliveries.send(
            room_id,
            {
                "msgtype": MessageType.NOTICE.value,
                "body": staff_text("reply.calendar_link", language, url=url),
            },
            kind="reply",
        )
        await self.ctx.commands.answer(command, "reply.calendar_sent")

    # --- the morning notice -------------------------------------------------------

    def _next_morning(self, after: datetime) -> datetime | None:
        at = self.settings.morning_notice
        if at is None:
            return None
        zone = self.ctx.config.routing.zone
        day = after.astimezone(zone).date()
        for offset in (0, 1):
            moment = datetime.combine(day + timedelta(days=offset), at, zone)
            if moment > after:
                return moment
        return None

    async def _schedule_morning(self, after: datetime) -> None:
        moment = self._next_morning(after)
        if moment is None:
            return
        day = moment.date().isoformat()
        await self.ctx.jobs.enqueue(
            MORNING_JOB, f"{MORNING_JOB}:{day}", {"day": day}, run_at=real_time(moment)
        )

    async def _morning(self, run: JobRun) -> None:
        day = date.fromisoformat(str(run.payload["day"]))
        try:
            await self.morning_notice(day)
        finally:
            await self._schedule_morning(routing_now())

    async def morning_notice(self, day: date) -> None:
        """Per department with video hours: each of its video staff's
        appointments on ``day`` in the team room (nothing on a day without)."""
        zone = self.ctx.config.routing.zone
        start = datetime.combine(day, time(), zone)
        for department in self.ctx.config.departments:
            if department.video is None or not department.team_room:
                continue
            lines: list[tuple[str, list[Appointment]]] = []
            for staff in department.video.staff:
                found = await self.office.bookings.booked_between(
                    start, start + timedelta(days=1), staff
                )
                if found:
                    lines.append((staff, found))
            if not lines:
                continue
            room_id = await self.ctx.team.resolve(department.team_room)
            if room_id is None:
                continue
            references = {}
            for _, found in lines:
                for a in found:
                    case = await self.ctx.store.get_case(a.case_id or "")
                    if case is not None:
                        references[case.case_id] = case.reference
            body = for_readers(
                partial(self._day_text, day, lines, references),
                self.ctx.team.readers(department.id),
            )
            await self.ctx.cases.deliveries.send(
                room_id,
                {"msgtype": MessageType.NOTICE.value, "body": body},
                key=f"morning:{department.id}:{day.isoformat()}",
                kind="notice",
            )

    def _day_text(
        self,
        day: date,
        lines: list[tuple[str, list[Appointment]]],
        references: dict[str, str],
        language: str,
    ) -> str:
        notices = self.office.notices
        out = [staff_text("booking.morning", language, date=day.strftime("%d.%m.%Y"))]
        for staff, found in lines:
            out.append(self.ctx.cases.staff_name("", staff) + ":")
            for a in found:
                out.append(
                    f"  {notices.clock(a.start)}–{notices.clock(a.end)} "
                    f"{references.get(a.case_id or '', '')} "
                    f"{notices.service_names(a)}"
                    + (
                        f" ({staff_text('booking.walk_in', language)})"
                        if a.walk_in
                        else ""
                    )
                )
        return "\n".join(out)
