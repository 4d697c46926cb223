"""Forwarding an offline message: into the case's timeline, into the outbox, and
into Matrix (a notice in the case room, one in the department's team room).

Every step can run again without doing anything twice: timeline entries carry
client ids, mails dedup keys, the case-room notice a Matrix transaction id. So a
request that died half-way, or a Synapse that was down, is simply finished by
running :meth:`Forwarder.forward` again (the bot's retry loop does).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

from mautrix.errors import MatrixError
from mautrix.types import (
    MessageType,
    RoomID,
    UserID,
)

from bridge.clock import as_utc, utcnow
from bridge.db.models import Case
from bridge.errors import HOMESERVER_ERRORS
from bridge.i18n import for_readers, say, staff_text
from bridge.lifecycle import State
from bridge.mail import (
    Contact,
    OfflineMessage,
    Outbox,
    confirmation_to_citizen,
    offline_message_to_department,
)

from .models import OfflineRecord
from .store import MESSAGE_CLIENT_ID, RECEIVED_CLIENT_ID, OfflineStore

if TYPE_CHECKING:
    from bridge.departments.model import Department
    from bridge.plugins import BotContext

log = logging.getLogger("buergerchat.offline")
MATRIX_ERRORS = HOMESERVER_ERRORS


class NotYetForwarded(Exception):
    """A Matrix step failed; the retry loop tries again."""


def received_text(record: OfflineRecord, case: Case, department: str) -> str:
    """The ``offline_received`` system event, in the citizen's language."""
    language = record.language
    if record.email and record.phone:
        how = say(
            "reply_by_email_or_phone", language, email=record.email, phone=record.phone
        )
    elif record.email:
        how = say("reply_by_email", language, email=record.email)
    else:
        how = say("reply_by_phone", language, phone=record.phone)
    return say(
        "offline_received",
        language,
        reference=case.reference,
        department=department,
        how=how,
    )


def contact_line(record: OfflineRecord, language: str = "de") -> str:
    parts = [record.name]
    if record.email:
        parts.append(staff_text("offline.email", language, email=record.email))
    if record.phone:
        parts.append(staff_text("offline.phone", language, phone=record.phone))
    return staff_text("offline.contact", language, parts=" · ".join(parts))


def staff_hint(record: OfflineRecord, language: str = "de") -> str:
    """What staff should do, posted in the case room and the team notice."""
    if record.email:
        return staff_text("offline.hint_email", language, name=record.name)
    return staff_text(
        "offline.hint_phone", language, name=record.name, phone=record.phone
    )


def room_notice(record: OfflineRecord, language: str) -> str:
    """The case room's notice of an offline message, in ``language``."""
    return staff_text(
        "notice.offline_topic" if record.topic else "notice.offline",
        language,
        topic=record.topic,
        contact=contact_line(record, language),
        hint=staff_hint(record, language),
    )


def team_extra(record: OfflineRecord, language: str) -> str:
    """The last line of the team notice of an offline message."""
    return staff_text(
        "team.offline_extra",
        language,
        contact=contact_line(record, language),
        hint=staff_hint(record, language),
    )


class Forwarder:
    def __init__(self, ctx: BotContext, outbox: Outbox, records: OfflineStore) -> None:
        self.ctx = ctx
        self.outbox = outbox
        self.records = records

    def _department(self, case: Case) -> Department | None:
        return self.ctx.config.department(case.department)

    async def forward(self, record: OfflineRecord, case: Case) -> bool:
        """Run every step that is not done yet; True once all are done. The
        database steps (timeline, mails) raise on failure; the Matrix steps are
        left to the retry loop."""
        if case.closed_at is not None:
            # Closed by staff before we got here: nothing left to tell anyone.
            await self.records.update(record.id, forwarded_at=utcnow())
            return True
        await self.record(record, case)
        try:
            await self.notify_matrix(record, case)
        except NotYetForwarded as e:
            log.warning("offline message %s: %s; retrying", case.reference, e)
            return False
        await self.records.update(record.id, forwarded_at=utcnow())
        return True

    # --- the database steps -------------------------------------------------

    async def record(self, record: OfflineRecord, case: Case) -> None:
        """Timeline and outbox: after this the message cannot be lost any more."""
        cases = self.ctx.cases
        if case.state != "offline" or case.citizen_name != record.name:
            # A queued chat turned into a message: no longer waiting for a person.
            await cases.lifecycle.transition(
                case.case_id,
                State.OFFLINE,
                data={"offline_message": record.id},
                citizen_name=record.name,
            )
            case.state, case.citizen_name = "offline", record.name
        await cases.post_citizen_message(
            case, MESSAGE_CLIENT_ID.format(id=record.id), record.description
        )
        department = self._department(case)
        department_name = department.name if department else case.department
        await cases.timeline.add(
            case.case_id,
            type="system",
            sender="system",
            body=received_text(record, case, department_name),
            client_id=RECEIVED_CLIENT_ID.format(id=record.id),
            extra={
                "kind": "offline_received",
                "reference": case.reference,
                "reply_by": "email" if record.email else "phone",
            },
        )
        await self.enqueue_mails(record, case, department)

    async def enqueue_mails(
        self, record: OfflineRecord, case: Case, department: Department | None
    ) -> None:
        settings = self.ctx.config.mail
        message = OfflineMessage(
            reference=case.reference,
            department_name=department.name if department else case.department,
            topic=record.topic or "ohne Thema",
            concern=record.description,
            contact=Contact(name=record.name, email=record.email, phone=record.phone),
            received_at=as_utc(record.created_at),
            language=case.language,
        )
        inbox = department.inbox if department else None
        if inbox:
            await self.outbox.enqueue(
                offline_message_to_department(
                    message, sender=settings.sender, inbox=inbox
                ),
                dedup_key=f"offline-department:{case.case_id}",
                case_id=case.case_id,
            )
        else:
            log.warning(
                "department %s has no inbox: offline message %s is announced in "
                "Matrix only",
                case.department,
                case.reference,
            )
        if record.email and await self._confirmation_allowed(record.email, case):
            await self.outbox.enqueue(
                confirmation_to_citizen(
                    message, sender=settings.sender, reply_to=inbox
                ),
                dedup_key=f"offline-confirmation:{case.case_id}",
                case_id=case.case_id,
            )

    async def _confirmation_allowed(self, email: str, case: Case) -> bool:
        """At most ``limits.confirmations_per_recipient`` confirmations to one
        address: the form must not let anyone flood a mailbox through the town.
        Once per case (a retry of this step counts nothing new)."""
        if await self.outbox.get(f"offline-confirmation:{case.case_id}") is not None:
            return True
        if await self.ctx.limits.allowed("confirmations_per_recipient", email.lower()):
            return True
        log.warning(
            "no confirmation for %s: its address got the most confirmations a day",
            case.reference,
        )
        return False

    # --- the Matrix steps ---------------------------------------------------

    async def notify_matrix(self, record: OfflineRecord, case: Case) -> None:
        try:
            room_id = case.room_id or await self.ctx.cases.ensure_room(case)
            if record.converted:
                await self.invite_staff(case, room_id)
            readers = self.ctx.team.readers(case.department)
            content = {
                "msgtype": MessageType.NOTICE.value,
                "body": for_readers(partial(room_notice, record), readers),
            }
            # Stored and sent once, also across a crash (bridge.delivery).
            await self.ctx.cases.deliveries.send(
                room_id,
                content,
                key=f"offline-notice:{record.id}",
                case_id=case.case_id,
            )
        except MATRIX_ERRORS as e:
            raise NotYetForwarded(f"case room not reachable: {e}") from e
        department = self._department(case)
        announced = await self.ctx.team.announce_case(
            case,
            first_message=record.description,
            extra=partial(team_extra, record),
            key=f"offline-announce:{record.id}",
        )
        if not announced and department is not None and department.team_room:
            raise NotYetForwarded("team room not reachable")

    async def invite_staff(self, case: Case, room_id: str) -> None:
        """A converted queued chat: the whole department may answer it later."""
        department = self._department(case)
        if department is None:
            return
        bot = self.ctx.appservice.intent
        power = await bot.get_power_levels(RoomID(room_id))
        staff = [UserID(s.mxid) for s in department.staff]
        missing = [mxid for mxid in staff if power.users.get(mxid, 0) < 50]
        if missing:
            for mxid in missing:
                power.users[mxid] = 50
            await bot.set_power_levels(RoomID(room_id), power)
        for mxid in staff:
            try:
                await bot.invite_user(RoomID(room_id), mxid)
            except MatrixError as e:  # typically: already in the room
                log.debug("not invited %s to %s: %s", mxid, room_id, e)
