"""Outgoing e-mail: the German mails of the offline path and a durable outbox.

Mails are composed by pure functions (:mod:`bridge.mail.compose`), stored by
:meth:`Outbox.enqueue` in the bridge database, and sent by the outbox's worker
through a :class:`MailBackend` (SMTP, or a local Maildir by default).
"""

from __future__ import annotations

from bridge.mail.backends import (
    DeliveryError,
    MailBackend,
    MaildirBackend,
    PermanentFailure,
    SmtpBackend,
    TemporaryFailure,
    make_backend,
)
from bridge.mail.compose import (
    Contact,
    OfflineMessage,
    answer_notice_to_citizen,
    confirmation_to_citizen,
    offline_message_to_department,
)
from bridge.mail.models import OutboxMail
from bridge.mail.outbox import Outbox, ParkedCallback, retry_delay
from bridge.mail.settings import MailSettings, Sender, SmtpSettings, load_mail_settings

__all__ = [
    "Contact",
    "DeliveryError",
    "MailBackend",
    "MailSettings",
    "MaildirBackend",
    "OfflineMessage",
    "Outbox",
    "OutboxMail",
    "ParkedCallback",
    "PermanentFailure",
    "Sender",
    "SmtpBackend",
    "SmtpSettings",
    "TemporaryFailure",
    "answer_notice_to_citizen",
    "confirmation_to_citizen",
    "load_mail_settings",
    "make_backend",
    "offline_message_to_department",
    "retry_delay",
]
