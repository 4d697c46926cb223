"""Sample mails and settings shared by the outbox tests."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from bridge.mail.compose import Contact, OfflineMessage, offline_message_to_department
from bridge.mail.settings import MailSettings, Sender

SENDER = Sender("buergerchat@hockenheim.de", "Bürgerchat Stadt Hockenheim")
INBOX = "buergerbuero@hockenheim.de"


def settings(tmp_path: Path, **changes: object) -> MailSettings:
    values: dict[str, object] = dict(
        sender=SENDER,
        backend="smtp",
        maildir=tmp_path / "mail",
        smtp=None,
        max_attempts=4,
        backoff_seconds=30.0,
    )
    values.update(changes)
    return MailSettings(**values)  # type: ignore[arg-type]


def offline_mail(n: int = 1, email: str | None = "juergen@example.org") -> EmailMessage:
    message = OfflineMessage(
        reference=f"BC-2026-{n:06d}",
        department_name="Bürgerbüro",
        topic="Anwohnerparken",
        concern="Mein Parkausweis läuft ab. Grüße aus der Hauptstraße",
        contact=Contact(name="Jürgen Weiß", email=email, phone="06205 123456"),
        received_at=datetime(2026, 3, 14, 17, 42, tzinfo=UTC),
    )
    return offline_message_to_department(message, sender=SENDER, inbox=INBOX)
