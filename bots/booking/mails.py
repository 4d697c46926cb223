"""The citizen's appointment mails, as pure functions over plain data: the
confirmation (with the appointment as an ``.ics`` attachment, written by the
icalendar library), the reminders, the cancellation and the no-show notice, in
the citizen's language (``mail.appt_*`` in the citizen catalogue).

Nothing the booking form's sender typed is in them — not the name, not even in
the To header — only the town's own words, the services' names from the
configuration and the personal link: the form cannot make the town's mail server
carry someone's words to any address (and the confirmations per address are
capped, ``limits.confirmations_per_recipient``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from bridge.clock import utcnow
from bridge.mail.compose import (
    base_message,
    greeting,
    mail_text,
    mailbox,
    one_line,
    when_text,
)
from bridge.mail.settings import Sender

#: What the mail is about: its subject and first line (``mail.appt_<kind>``).
KINDS = ("confirm", "booked", "reminder", "cancelled", "no_show", "not_served")


@dataclass(frozen=True)
class AppointmentMail:
    kind: str
    appointment_id: str
    reference: str
    email: str
    language: str
    department: str
    services: tuple[str, ...]
    prepare: tuple[str, ...]
    start: datetime
    end: datetime
    #: The personal link (waiting room, cancel); None where it is no use any
    #: more (cancelled, not come).
    link: str | None
    opens_minutes: int
    helpline: str | None
    town: str
    #: Double opt-in: how long the confirmation link holds the time.
    confirm_minutes: int = 60


def appointment_mail(
    mail: AppointmentMail, *, sender: Sender, tz: ZoneInfo, domain: str
) -> EmailMessage:
    if mail.kind not in KINDS:
        raise ValueError(f"no appointment mail of kind {mail.kind!r}")
    lang = mail.language
    when = when_text(mail.start, tz, lang)
    minutes = int((mail.end - mail.start).total_seconds() // 60)
    lines = [greeting(None, lang), "", mail_text(f"appt_{mail.kind}", lang, when=when)]
    lines += ["", mail_text("appt_when", lang, when=when, minutes=str(minutes))]
    lines.append(mail_text("department", lang, department=one_line(mail.department)))
    lines.append(
        mail_text("appt_services", lang, services=one_line(", ".join(mail.services)))
    )
    lines.append(mail_text("appt_reference", lang, reference=mail.reference))
    if mail.kind == "confirm" and mail.link is not None:
        within = str(mail.confirm_minutes)
        lines += ["", mail_text("appt_confirm_link", lang, minutes=within)]
        lines += ["", one_line(mail.link, 2000), ""]
        lines.append(mail_text("appt_private", lang))
    elif mail.link is not None:
        if mail.prepare:
            lines += ["", mail_text("appt_prepare", lang)]
            lines += [f"  – {one_line(p, 300)}" for p in mail.prepare]
        lines += ["", mail_text("appt_link", lang, minutes=str(mail.opens_minutes))]
        lines += ["", one_line(mail.link, 2000), ""]
        lines.append(mail_text("appt_private", lang))
        lines.append(mail_text("appt_browser", lang))
        if mail.helpline:
            lines.append(
                mail_text("appt_helpline", lang, phone=one_line(mail.helpline))
            )
        if mail.kind == "booked":
            lines += ["", mail_text("appt_ics", lang)]
    else:
        lines += ["", mail_text("appt_book_again", lang)]
    lines += ["", mail_text("no_reply", lang), mail_text("not_you_booking", lang)]
    lines += ["", mail_text("regards", lang), sender.name]
    message = base_message(
        sender=sender,
        to=mailbox(mail.email, None),
        subject=f"[{mail.reference}] "
        + mail_text(f"appt_subject_{mail.kind}", lang, when=when),
        reference=mail.reference,
        body="\n".join(lines) + "\n",
        date=None,
        message_id=None,
    )
    if mail.kind in ("booked", "cancelled"):
        ics = calendar_entry(mail, domain=domain, cancelled=mail.kind == "cancelled")
        message.add_attachment(
            ics,
            maintype="text",
            subtype="calendar",
            filename="termin.ics",
            params={"method": "CANCEL" if mail.kind == "cancelled" else "PUBLISH"},
        )
    return message


def calendar_entry(mail: AppointmentMail, *, domain: str, cancelled: bool) -> bytes:
    """The appointment as an iCalendar object (RFC 5545): one VEVENT whose UID
    stays the same, so a cancellation replaces the entry in the calendar."""
    calendar = Calendar()
    calendar.add("prodid", "-//Buergerchat//Videotermin//DE")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
    calendar.add_component(
        appointment_event(
            uid=f"{mail.appointment_id}@{domain}",
            start=mail.start,
            end=mail.end,
            summary=mail_text(
                "appt_calendar_title", mail.language, town=one_line(mail.town)
            ),
            description="\n".join(
                [
                    ", ".join(mail.services),
                    *mail.prepare,
                    *([mail.link] if mail.link else []),
                ]
            ),
            url=mail.link,
            cancelled=cancelled,
        )
    )
    return calendar.to_ical()


def appointment_event(
    *,
    uid: str,
    start: datetime,
    end: datetime,
    summary: str,
    description: str,
    url: str | None,
    cancelled: bool = False,
) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", utcnow())
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    event.add("description", description)
    if url:
        event.add("url", url)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("sequence", 1 if cancelled else 0)
    return event
