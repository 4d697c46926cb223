"""The e-mails of the offline path, as pure functions over plain data.

Three mails: the offline message to the department's inbox (German, the town's
language, naming the citizen's language), the confirmation to the citizen, and
the "there is an answer" notice with a personal resume link — these two in the
citizen's language, worded in the citizen catalogue (``mail.*`` in bridge/i18n).
Bodies are UTF-8 plain text in quoted-printable, so they pass any SMTP server
(no 8BITMIME needed) and umlauts survive. ``Date`` and ``Message-ID`` may be given;
when left out, :meth:`Outbox.enqueue` fills them in once, before the first try.

Mails to the citizen carry no content of the conversation: the address was typed
by whoever used the form and may be wrong, and e-mail travels unencrypted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time

from bridge.i18n import language_name, locale_tag, text
from bridge.mail.settings import Sender, check_address

BERLIN = ZoneInfo("Europe/Berlin")
_SUBJECT_TOPIC_LIMIT = 120
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BLANK = "(nicht angegeben)"


@dataclass(frozen=True)
class Contact:
    """How the citizen wants to be reached; at least one way is given."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class OfflineMessage:
    """A message left outside the live hours, as the department should read it."""

    reference: str
    department_name: str
    topic: str
    concern: str
    contact: Contact
    received_at: datetime
    #: The citizen's language: their mails are written in it.
    language: str = "de"


def one_line(text: str, limit: int = 200) -> str:
    """Collapse line breaks and control characters, so input cannot add headers."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _paragraphs(text: str) -> str:
    """The citizen's text with normalised line breaks and no control characters."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(_CONTROL.sub("", line).rstrip() for line in lines).strip()


def when_text(moment: datetime, tz: ZoneInfo, language: str = "de") -> str:
    """'03.12.2026, 17:30 Uhr' in German; in the other languages their own medium
    date and short time as CLDR has them (through Babel)."""
    local = moment.astimezone(tz)
    if language == "de":
        return local.strftime("%d.%m.%Y, %H:%M Uhr")
    tag = locale_tag(language).replace("-", "_")
    return f"{format_date(local, 'medium', locale=tag)}, " + str(
        format_time(local, "short", locale=tag)
    )


def mailbox(address: str, name: str | None) -> Address:
    problem = check_address(address)
    if problem:
        raise ValueError(problem)
    return Address(display_name=one_line(name or ""), addr_spec=address)


def base_message(
    *,
    sender: Sender,
    to: Address,
    subject: str,
    reference: str,
    body: str,
    date: datetime | None,
    message_id: str | None,
    reply_to: Address | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender.header()
    msg["To"] = to
    if reply_to is not None:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    if date is not None:
        msg["Date"] = format_datetime(date)
    if message_id is not None:
        msg["Message-ID"] = message_id
    # RFC 3834: no vacation or out-of-office answers to these mails; the second
    # header asks Exchange, common in town halls, for the same.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Buergerchat-Reference"] = one_line(reference, 40)
    msg.set_content(body, charset="utf-8", cte="quoted-printable")
    return msg


def greeting(name: str | None, language: str = "de") -> str:
    if name and name.strip():
        return text("mail.greeting_name", language).format(name=one_line(name))
    return text("mail.greeting", language)


def mail_text(key: str, language: str, **values: str) -> str:
    return text(f"mail.{key}", language).format(**values)


def offline_message_to_department(
    message: OfflineMessage,
    *,
    sender: Sender,
    inbox: str,
    date: datetime | None = None,
    message_id: str | None = None,
    tz: ZoneInfo = BERLIN,
) -> EmailMessage:
    """The mail to the department's inbox; replies go to the citizen if possible."""
    contact = message.contact
    reference = one_line(message.reference, 40)
    topic = one_line(message.topic, _SUBJECT_TOPIC_LIMIT)
    reply_to = mailbox(contact.email, contact.name) if contact.email else None
    how = _how_to_answer(contact, by_mail=reply_to is not None)
    body = _department_body(message, reference, topic, how, sender=sender, tz=tz)
    return base_message(
        sender=sender,
        to=mailbox(inbox, message.department_name),
        subject=f"[{reference}] {topic} – Nachricht aus dem Bürgerchat",
        reference=reference,
        body=body + "\n",
        date=date,
        message_id=message_id,
        reply_to=reply_to,
    )


def _how_to_answer(contact: Contact, *, by_mail: bool) -> str:
    """How the department reaches the citizen: in the chat or by mail, by phone,
    or not at all."""
    if by_mail:
        who = one_line(contact.name) if contact.name else contact.email
        return (
            "Am besten antworten Sie im Bürgerchat im Raum des Vorgangs: dann "
            "erhält die Person eine E-Mail mit einem Link zum Gespräch, und die "
            "Antwort bleibt beim Vorgang.\n"
            f"Mit „Antworten“ auf diese E-Mail schreiben Sie direkt an {who}."
        )
    if contact.phone:
        return (
            "Es wurde keine E-Mail-Adresse angegeben. Bitte rufen Sie unter "
            f"{one_line(contact.phone, 60)} zurück."
        )
    return "Es wurden keine Kontaktdaten angegeben."


def _department_body(
    message: OfflineMessage,
    reference: str,
    topic: str,
    how: str,
    *,
    sender: Sender,
    tz: ZoneInfo,
) -> str:
    """The offline message as the department reads it: case, concern, contact."""
    contact = message.contact
    return "\n".join(
        [
            "Guten Tag,",
            "",
            "über den Bürgerchat ist außerhalb der Sprechzeiten eine Nachricht "
            "eingegangen.",
            "",
            f"Vorgang:  {reference}",
            f"Bereich:  {one_line(message.department_name)}",
            f"Thema:    {topic}",
            f"Eingang:  {when_text(message.received_at, tz)}",
            f"Sprache:  {language_name(message.language, 'de')}",
            "",
            "Anliegen",
            "--------",
            _paragraphs(message.concern),
            "",
            "Kontakt",
            "-------",
            f"Name:     {one_line(contact.name) if contact.name else _BLANK}",
            f"E-Mail:   {contact.email or _BLANK}",
            f"Telefon:  {one_line(contact.phone, 60) if contact.phone else _BLANK}",
            "",
            how,
            "",
            "-- ",
            f"{sender.name} (automatisch erzeugte Nachricht)",
        ]
    )


def confirmation_to_citizen(
    message: OfflineMessage,
    *,
    sender: Sender,
    reply_to: str | None = None,
    date: datetime | None = None,
    message_id: str | None = None,
    tz: ZoneInfo = BERLIN,
) -> EmailMessage:
    """The confirmation with the case reference and fixed text only: nothing the
    sender typed (name, topic, concern) is in it, not even in the To header, so
    the form cannot make the town's mail server carry someone's words to any
    address (the number of confirmations per address is capped as well)."""
    contact = message.contact
    if not contact.email:
        raise ValueError("a confirmation needs the citizen's e-mail address")
    reference = one_line(message.reference, 40)
    lang = message.language
    body = "\n".join(
        [
            greeting(None, lang),
            "",
            mail_text(
                "confirm_received", lang, when=when_text(message.received_at, tz, lang)
            ),
            "",
            f"    {reference}",
            "",
            mail_text("department", lang, department=one_line(message.department_name)),
            "",
            mail_text("confirm_next", lang),
            "",
            mail_text("questions_reply" if reply_to else "no_reply", lang),
            mail_text("not_you", lang),
            "",
            mail_text("regards", lang),
            sender.name,
        ]
    )
    return base_message(
        sender=sender,
        to=mailbox(contact.email, None),
        subject=f"[{reference}] {mail_text('confirm_subject', lang)}",
        reference=reference,
        body=body + "\n",
        date=date,
        message_id=message_id,
        reply_to=mailbox(reply_to, message.department_name) if reply_to else None,
    )


def answer_notice_to_citizen(
    *,
    sender: Sender,
    to: str,
    name: str | None,
    reference: str,
    department_name: str,
    resume_url: str,
    expires_at: datetime | None = None,
    date: datetime | None = None,
    message_id: str | None = None,
    tz: ZoneInfo = BERLIN,
    language: str = "de",
) -> EmailMessage:
    """'There is an answer': a personal link to the case, not the answer itself,
    in the citizen's ``language``."""
    reference = one_line(reference, 40)
    url = one_line(resume_url, 2000)
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"the resume link must be an http(s) URL, not {url!r}")
    lang = language
    validity = (
        mail_text("link_valid_until", lang, when=when_text(expires_at, tz, lang))
        if expires_at is not None
        else mail_text("link_valid", lang)
    )
    body = "\n".join(
        [
            greeting(name, lang),
            "",
            mail_text(
                "answer_intro",
                lang,
                reference=reference,
                department=one_line(department_name),
            ),
            "",
            mail_text("answer_link", lang),
            "",
            url,
            "",
            f"{validity} {mail_text('answer_private', lang)}",
            "",
            mail_text("no_reply", lang),
            "",
            mail_text("regards", lang),
            sender.name,
        ]
    )
    return base_message(
        sender=sender,
        to=mailbox(to, name),
        subject=f"[{reference}] {mail_text('answer_subject', lang)}",
        reference=reference,
        body=body + "\n",
        date=date,
        message_id=message_id,
    )


@dataclass(frozen=True)
class Feedback:
    """A report of an accessibility barrier (BITV 2.0 § 7 feedback channel)."""

    reference: str
    message: str
    #: Where the barrier is (a page, a step of the chat), as the sender says.
    where: str | None
    contact: Contact
    received_at: datetime
    language: str = "de"


def accessibility_feedback(
    feedback: Feedback,
    *,
    sender: Sender,
    inbox: str,
    date: datetime | None = None,
    message_id: str | None = None,
    tz: ZoneInfo = BERLIN,
) -> EmailMessage:
    """The report to the town's feedback address (German); replies go to the
    sender when an address was given."""
    contact = feedback.contact
    reference = one_line(feedback.reference, 40)
    reply_to = mailbox(contact.email, contact.name) if contact.email else None
    lines = [
        "Rückmeldung zur Barrierefreiheit des Bürgerchats",
        "",
        f"Eingang:   {when_text(feedback.received_at, tz)}",
        f"Nummer:    {reference}",
        f"Stelle:    {one_line(feedback.where or '') or _BLANK}",
        f"Name:      {one_line(contact.name or '') or _BLANK}",
        f"E-Mail:    {one_line(contact.email or '') or _BLANK}",
        f"Sprache:   {language_name(feedback.language, 'de')}",
        "",
        "Beschreibung:",
        "",
        _paragraphs(feedback.message),
        "",
        "Nach BITV 2.0 ist die Rückmeldung zu beantworten; bleibt eine Antwort "
        "aus, kann sich die Person an die Durchsetzungs- oder Schlichtungsstelle "
        "wenden."
        + (
            " Antworten Sie auf diese E-Mail, um ihr zu schreiben."
            if reply_to
            else " Es wurde keine E-Mail-Adresse angegeben."
        ),
    ]
    return base_message(
        sender=sender,
        to=mailbox(inbox, "Barrierefreiheit"),
        subject=f"[{reference}] Rückmeldung zur Barrierefreiheit – Bürgerchat",
        reference=reference,
        body="\n".join(lines) + "\n",
        date=date,
        message_id=message_id,
        reply_to=reply_to,
    )
