"""Feedback on barriers (BITV 2.0 § 7 Abs. 1 Nr. 2): checked, counted against the
abuse limits, and mailed through the durable outbox to the town.

One report is one mail: the same report sent again (a double click, a retry
after a lost answer) is stored once — keyed by the client's ``client_id``, or
else by its content and day — and answered with the same number.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.fields import (
    MAX_CLIENT_ID,
    MAX_EMAIL,
    MAX_NAME,
    email_problem,
    language_field,
    string_field,
    text,
)
from ..clock import utcnow
from ..errors import ConsentRequired, InvalidField
from ..mail.compose import Contact, Feedback, accessibility_feedback
from .settings import feedback_address

if TYPE_CHECKING:
    from aiohttp import web

    from ..config import Config
    from ..limits import Limits
    from ..mail.outbox import Outbox

MAX_MESSAGE = 5000
MAX_WHERE = 500


@dataclass(frozen=True)
class FeedbackForm:
    message: str
    where: str | None
    name: str | None
    email: str | None
    language: str
    client_id: str | None


def parse_feedback(data: dict[str, Any]) -> FeedbackForm:
    """The body of a feedback request; the first problem is raised as a 400
    naming its field, in the sender's language."""
    language = language_field(data)
    message = string_field(
        data, "description", language, limit=MAX_MESSAGE, required=True
    )
    if data.get("consent") is not True:
        raise ConsentRequired(text("consent", language), field="consent")
    email = string_field(data, "email", language, limit=MAX_EMAIL)
    if email is not None and email_problem(email):
        raise InvalidField("email", text("email", language, value=email))
    assert message is not None
    return FeedbackForm(
        message=message,
        where=string_field(data, "where", language, limit=MAX_WHERE),
        name=string_field(data, "name", language, limit=MAX_NAME),
        email=email,
        language=language,
        client_id=string_field(data, "client_id", language, limit=MAX_CLIENT_ID),
    )


class FeedbackChannel:
    def __init__(self, config: Config, limits: Limits, outbox: Outbox) -> None:
        self.config = config
        self.limits = limits
        self.outbox = outbox

    async def submit(self, request: web.Request, form: FeedbackForm) -> str:
        """Mail one report; returns its number (the same for a repeated one)."""
        await self.limits.admit(
            request, ("feedback_per_address", "address"), ("feedback_total", "all")
        )
        now = utcnow()
        if form.client_id is not None:
            seed = f"id:{form.client_id}"
        else:
            seed = f"{now.date()}:{form.email}:{form.where}:{form.message}"
        digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()
        reference = "BF-" + digest[:10].upper()
        inbox = feedback_address(self.config.accessibility, self.config.routing)
        if inbox is None:  # refused by load_config; keeps mypy honest
            raise RuntimeError("no address for accessibility feedback")
        mail = accessibility_feedback(
            Feedback(
                reference=reference,
                message=form.message,
                where=form.where,
                contact=Contact(name=form.name, email=form.email),
                received_at=now,
                language=form.language,
            ),
            sender=self.config.mail.sender,
            inbox=inbox,
        )
        await self.outbox.enqueue(mail, dedup_key=f"a11y-feedback:{digest}")
        return reference
