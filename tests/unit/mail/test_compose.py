"""The German mails of the offline path: headers, text and what they leave out."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from bridge.mail.compose import (
    Contact,
    OfflineMessage,
    answer_notice_to_citizen,
    confirmation_to_citizen,
    offline_message_to_department,
)
from bridge.mail.settings import Sender

SENDER = Sender("buergerchat@hockenheim.de", "Bürgerchat Stadt Hockenheim")
INBOX = "buergerbuero@hockenheim.de"
CONCERN = "Mein Anwohnerparkausweis läuft ab.\nWie verlängere ich ihn? Grüße"


def _offline(**contact: str | None) -> OfflineMessage:
    values: dict[str, str | None] = {
        "name": "Jürgen Weiß",
        "email": "juergen@example.org",
        "phone": "06205 123456",
    }
    values.update(contact)
    return OfflineMessage(
        reference="BC-2026-000123",
        department_name="Bürgerbüro",
        topic="Anwohnerparken",
        concern=CONCERN,
        contact=Contact(**values),
        received_at=datetime(2026, 3, 14, 17, 42, tzinfo=UTC),
    )


def _wire(msg: EmailMessage) -> EmailMessage:
    """The message as a receiving client sees it after transport."""
    raw = msg.as_bytes(policy=policy.SMTP)
    raw.decode("ascii")  # 7-bit clean: passes servers without 8BITMIME
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _body(msg: EmailMessage) -> str:
    """The decoded text with the line ends a mail client shows."""
    return str(msg.get_content()).replace("\r\n", "\n")


def test_department_mail_has_reference_topic_and_reply_to_the_citizen() -> None:
    """The inbox mail names case and topic in the subject; replies reach the citizen."""
    msg = _wire(offline_message_to_department(_offline(), sender=SENDER, inbox=INBOX))
    assert msg["Subject"] == (
        "[BC-2026-000123] Anwohnerparken – Nachricht aus dem Bürgerchat"
    )
    assert msg["To"].addresses[0].addr_spec == INBOX
    reply_to = msg["Reply-To"].addresses[0]
    assert (reply_to.display_name, reply_to.addr_spec) == (
        "Jürgen Weiß",
        "juergen@example.org",
    )
    sender = msg["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == (SENDER.name, SENDER.address)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Buergerchat-Reference"] == "BC-2026-000123"


def test_department_mail_body_holds_concern_and_contact_data() -> None:
    """The body carries the concern verbatim, the contact data and Berlin time."""
    msg = _wire(offline_message_to_department(_offline(), sender=SENDER, inbox=INBOX))
    body = _body(msg)
    assert CONCERN in body
    assert "Name:     Jürgen Weiß" in body
    assert "E-Mail:   juergen@example.org" in body
    assert "Telefon:  06205 123456" in body
    assert "Bereich:  Bürgerbüro" in body
    assert "14.03.2026, 18:42 Uhr" in body  # 17:42 UTC is 18:42 in Germany (CET)
    assert msg.get_content_charset() == "utf-8"


def test_department_mail_without_email_asks_to_call_back() -> None:
    """Without an e-mail address there is no Reply-To and staff are told to call."""
    msg = _wire(
        offline_message_to_department(_offline(email=None), sender=SENDER, inbox=INBOX)
    )
    assert msg["Reply-To"] is None
    body = _body(msg)
    assert "Bitte rufen Sie unter 06205 123456 zurück." in body
    assert "E-Mail:   (nicht angegeben)" in body


def test_citizen_input_cannot_add_headers() -> None:
    """Line breaks in topic or name end up as spaces, not as new header lines."""
    message = OfflineMessage(
        reference="BC-2026-000124",
        department_name="Bürgerbüro",
        topic="Parken\r\nBcc: victim@example.org",
        concern="x",
        contact=Contact(name="Eva\nBcc: other@example.org", email="eva@example.org"),
        received_at=datetime(2026, 3, 14, tzinfo=UTC),
    )
    msg = _wire(offline_message_to_department(message, sender=SENDER, inbox=INBOX))
    assert msg["Bcc"] is None
    assert "Parken Bcc: victim@example.org" in msg["Subject"]
    assert msg["Reply-To"].addresses[0].display_name == "Eva Bcc: other@example.org"


def test_department_mail_refuses_a_broken_citizen_address() -> None:
    """An address that is no address is refused instead of put into Reply-To."""
    with pytest.raises(ValueError, match="not an e-mail address"):
        offline_message_to_department(
            _offline(email="juergen at example"), sender=SENDER, inbox=INBOX
        )


def test_confirmation_carries_nothing_the_sender_typed() -> None:
    """The citizen's confirmation has the reference and fixed text: not the
    concern, not the topic, not the name (neither in the body nor in To), so the
    form is no relay for someone's words."""
    offline = _offline()
    msg = _wire(confirmation_to_citizen(offline, sender=SENDER))
    assert msg["Subject"] == "[BC-2026-000123] Ihre Nachricht ist eingegangen"
    assert msg["To"].addresses[0].addr_spec == "juergen@example.org"
    assert msg["To"].addresses[0].display_name == ""
    raw = msg.as_string()
    body = _body(msg)
    assert body.startswith("Guten Tag,")
    assert "    BC-2026-000123" in body
    for typed in ("Jürgen", "Weiß", offline.topic, offline.concern[:20]):
        assert typed not in body and typed not in raw, typed
    assert msg["Reply-To"] is None
    assert "Bitte antworten Sie nicht" in body


def test_confirmation_with_reply_to_invites_replies() -> None:
    """Given a reply address, the confirmation points replies there."""
    msg = _wire(confirmation_to_citizen(_offline(), sender=SENDER, reply_to=INBOX))
    assert msg["Reply-To"].addresses[0].addr_spec == INBOX
    assert "antworten Sie einfach auf diese E-Mail" in _body(msg)


def test_confirmation_needs_an_email_address() -> None:
    """No e-mail given: composing a confirmation is a programming error."""
    with pytest.raises(ValueError, match="e-mail address"):
        confirmation_to_citizen(_offline(email=None), sender=SENDER)


def test_answer_notice_carries_the_personal_link_and_its_expiry() -> None:
    """The notice holds the resume link intact and when it expires (Berlin time)."""
    url = "https://chat.hockenheim.de/widget/?resume=" + "A1b2-_" * 20
    msg = _wire(
        answer_notice_to_citizen(
            sender=SENDER,
            to="juergen@example.org",
            name="Jürgen Weiß",
            reference="BC-2026-000123",
            department_name="Bürgerbüro",
            resume_url=url,
            expires_at=datetime(2026, 7, 1, 10, 0, tzinfo=UTC),
        )
    )
    assert msg["Subject"] == "[BC-2026-000123] Es gibt eine Antwort auf Ihre Nachricht"
    body = _body(msg)
    assert f"\n{url}\n" in body
    assert "Der Link gilt bis 01.07.2026, 12:00 Uhr" in body  # CEST, UTC+2
    assert msg["Auto-Submitted"] == "auto-generated"


def test_answer_notice_refuses_a_non_http_link() -> None:
    """A resume link must be http(s); anything else is refused."""
    with pytest.raises(ValueError, match="http"):
        answer_notice_to_citizen(
            sender=SENDER,
            to="juergen@example.org",
            name=None,
            reference="BC-2026-000123",
            department_name="Bürgerbüro",
            resume_url="javascript:alert(1)",
        )


def test_given_date_and_message_id_are_used() -> None:
    """Date and Message-ID passed in are the ones in the headers."""
    msg = confirmation_to_citizen(
        _offline(),
        sender=SENDER,
        date=datetime(2026, 3, 14, 17, 42, tzinfo=UTC),
        message_id="<abc@hockenheim.de>",
    )
    assert msg["Message-ID"] == "<abc@hockenheim.de>"
    assert msg["Date"].datetime == datetime(2026, 3, 14, 17, 42, tzinfo=UTC)
