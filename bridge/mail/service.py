"""The bridge's one mail outbox: built by the core, given to every bot as
``ctx.mail`` (offline answers today; feedback and appointment mails later). Its
mails are jobs of the durable queue; its health is a part of ``/healthz``; a
parked mail is reported to the admin room."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import utcnow
from ..jobs import JobQueue
from .backends import make_backend
from .models import OutboxMail
from .outbox import Outbox
from .settings import MailSettings

log = logging.getLogger("buergerchat.mail")
#: A mail waiting longer than this for the mail server makes /healthz degraded.
MAIL_HEALTHY_WAIT = timedelta(minutes=10)

Alert = Callable[[str], Awaitable[object]]


def build_outbox(
    engine: AsyncEngine, settings: MailSettings, jobs: JobQueue, alert: Alert
) -> Outbox:
    async def parked(mail: OutboxMail, reason: str) -> None:
        to = ", ".join(mail.recipients)
        await alert(
            f"E-Mail nicht zugestellt und zurückgestellt (Nr. {mail.id}, "
            f"„{mail.subject}“ an {to}): {reason}. Sie wird nicht erneut versucht; "
            "bitte die Adresse bzw. den Mailserver prüfen und die Person auf anderem "
            "Weg erreichen."
        )

    return Outbox(engine, settings, make_backend(settings), on_parked=parked, jobs=jobs)


async def outbox_health(outbox: Outbox) -> dict[str, object]:
    """Down when a mail waits longer than MAIL_HEALTHY_WAIT for the mail server
    (it is retried; parked mails only count)."""
    counts = await outbox.store.counts()
    oldest = await outbox.store.oldest_waiting()
    waited = (utcnow() - oldest).total_seconds() if oldest else 0.0
    return {
        "ok": waited < MAIL_HEALTHY_WAIT.total_seconds(),
        "queued": counts.get("queued", 0) + counts.get("sending", 0),
        "parked": counts.get("parked", 0),
        "oldest_waiting_seconds": round(waited, 1),
    }
