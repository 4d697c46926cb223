"""What the virtual citizen office tells whom: the staff in the case room and
the team room (German, with English below for English readers), the citizen by
mail (bots/booking/mails.py) with a personal link into the widget."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from mautrix.types import MessageType

from bridge.clock import as_utc, routing_now, utcnow
from bridge.db.models import Appointment, Case
from bridge.i18n import for_readers, staff_text
from bridge.lifecycle import Kind
from bridge.mail.compose import when_text
from bridge.plugins import BotContext

from .mails import AppointmentMail, appointment_mail
from .section import BookingSettings

#: A personal link lasts this long after its appointment's end.
LINK_AFTER = timedelta(days=1)


class Notices:
    def __init__(
        self, ctx: BotContext, settings: BookingSettings, helpline: str | None
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.helpline = helpline

    # --- words ------------------------------------------------------------------

    def when(self, appointment: Appointment, language: str | None = None) -> str:
        return when_text(
            as_utc(appointment.start),
            self.ctx.config.routing.zone,
            language or appointment.language,
        )

    def clock(self, moment: Any) -> str:
        return as_utc(moment).astimezone(self.ctx.config.routing.zone).strftime("%H:%M")

    def _services(self, appointment: Appointment) -> list[Any]:
        department = self.ctx.config.department(appointment.department)
        office = department.video if department is not None else None
        found = [office.service(i) if office else None for i in appointment.services]
        return [s for s in found if s is not None]

    def service_names(self, appointment: Appointment) -> str:
        names = [s.name for s in self._services(appointment)]
        return ", ".join(names) or ", ".join(appointment.services)

    def department_name(self, appointment: Appointment) -> str:
        department = self.ctx.config.department(appointment.department)
        return department.name if department else appointment.department

    # --- staff ------------------------------------------------------------------

    async def to_room(self, case: Case, render: Callable[[str], str], key: str) -> None:
        """A notice for the staff in the case's room, sent once per ``key``."""
        if not case.room_id:
            return
        readers = self.ctx.team.readers(case.department)
        await self.ctx.cases.deliveries.send(
            case.room_id,
            {"msgtype": MessageType.NOTICE.value, "body": for_readers(render, readers)},
            key=key,
            kind="notice",
            case_id=case.case_id,
        )

    async def booked(self, appointment: Appointment, case: Case) -> None:
        """Who, what and when, in the case room; a line in the team room."""
        fresh = await self.ctx.store.get_case(case.case_id) or case
        staff = self.ctx.cases.staff_name("", appointment.staff_mxid)
        prepare = "; ".join(s.prepare for s in self._services(appointment) if s.prepare)

        def room(language: str) -> str:
            return staff_text(
                "booking.room",
                language,
                when=self.when(appointment, "de" if language == "de" else "en"),
                end=self.clock(appointment.end),
                services=self.service_names(appointment),
                staff=staff,
                name=appointment.name or "–",
                email=appointment.email or "–",
                phone=appointment.phone or "–",
                prepare=prepare or "–",
                kind=staff_text(
                    "booking.walk_in" if appointment.walk_in else "booking.booked",
                    language,
                ),
            )

        await self.to_room(fresh, room, f"appt-room:{appointment.appointment_id}")

        def team(language: str) -> str:
            return staff_text(
                "booking.team",
                language,
                when=self.when(appointment, "de" if language == "de" else "en"),
                services=self.service_names(appointment),
                staff=staff,
            )

        await self.ctx.team.announce_case(
            fresh, extra=team, key=f"appt-team:{appointment.appointment_id}"
        )
        # Announced: once the call has ended and the case is a live chat,
        # routing must not announce it again as new.
        await self.ctx.store.update_case(case.case_id, announced_at=utcnow())

    async def ended(self, appointment: Appointment, case: Case, kind: Kind) -> None:
        def render(language: str) -> str:
            return staff_text(
                f"booking.{kind.value}",
                language,
                when=self.when(appointment, "de" if language == "de" else "en"),
            )

        await self.to_room(
            case, render, f"appt-{kind.value}:{appointment.appointment_id}"
        )

    # --- the citizen's mails ------------------------------------------------------

    async def mail(
        self, appointment: Appointment, case: Case, kind: str, suffix: str = ""
    ) -> bool:
        """The mail of ``kind`` (booked, reminder, cancelled, no_show), once per
        appointment (and ``suffix``: which reminder). False if it was sent
        before."""
        key = f"appt-{kind}:{appointment.appointment_id}{suffix}"
        outbox = self.ctx.mail
        if appointment.email is None or await outbox.get(key) is not None:
            return False
        link = None
        if kind in ("booked", "reminder", "confirm"):
            ttl = as_utc(appointment.end) + LINK_AFTER - routing_now()
            if kind == "confirm":
                ttl = timedelta(minutes=self.settings.confirm_within_minutes)
            token = await self.ctx.cases.tokens.mint_resume(case.case_id, ttl)
            page = self.ctx.config.citizen.resume_page_url
            link = f"{page}#bc-resume={case.case_id}.{token}"
            if kind == "confirm":
                link += f"&bc-confirm={appointment.appointment_id}"
        services = self._services(appointment)
        message = appointment_mail(
            AppointmentMail(
                kind=kind,
                appointment_id=appointment.appointment_id,
                reference=case.reference,
                email=appointment.email,
                language=appointment.language,
                department=self.department_name(appointment),
                services=tuple(s.name for s in services),
                prepare=tuple(s.prepare for s in services if s.prepare),
                start=as_utc(appointment.start),
                end=as_utc(appointment.end),
                link=link,
                opens_minutes=self.settings.waiting_room_opens_minutes,
                confirm_minutes=self.settings.confirm_within_minutes,
                helpline=self.helpline,
                town=self.ctx.config.town.name,
            ),
            sender=outbox.settings.sender,
            tz=self.ctx.config.routing.zone,
            domain=self.ctx.config.homeserver.server_name,
        )
        _, created = await outbox.enqueue(message, dedup_key=key, case_id=case.case_id)
        return created

    async def mailed(self, appointment: Appointment) -> bool:
        """Whether the booking's confirmation is in the outbox (or needs none)."""
        if appointment.walk_in or appointment.email is None:
            return True
        kind = "confirm" if appointment.state == "pending" else "booked"
        key = f"appt-{kind}:{appointment.appointment_id}"
        return await self.ctx.mail.get(key) is not None
