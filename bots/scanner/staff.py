"""Files staff send in a case room: fetched from Synapse, scanned, and only then
offered to the citizen; an infected one is redacted and its sender told why."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from mautrix.types import (
    ContentURI,
    EventID,
    RoomID,
)

from bridge.db.models import Case
from bridge.i18n import staff_text
from bridge.lifecycle import DomainEvent
from bridge.synapse_admin import QuarantineFailed

from .content import clean_filename
from .models import Attachment
from .pipeline import MATRIX_ERRORS, new_attachment_id, sha256_hex

if TYPE_CHECKING:
    from .bot import ScannerBot

log = logging.getLogger("buergerchat.scanner")


class StaffFiles:
    """The staff → citizen side of the scanner bot; scanning, holding and retries
    are the bot's, shared with citizen uploads."""

    def __init__(self, bot: ScannerBot) -> None:
        self.bot = bot

    async def on_file(self, event: DomainEvent) -> None:
        """A file staff send in a case room (Kind.STAFF_FILE) is scanned before
        the citizen sees it."""
        case = event.case
        assert case is not None and event.actor is not None
        content = event.data["content"]
        url = content.get("url")
        if not url:
            return  # encrypted files are not used in case rooms
        info = content.get("info") or {}
        row, created = await self.bot.queue.add(
            attachment_id=new_attachment_id(),
            case_id=case.case_id,
            direction="staff",
            client_id=None,
            filename=clean_filename(str(content.get("body") or "datei")),
            mimetype=str(info.get("mimetype") or "application/octet-stream"),
            size=int(info.get("size") or 0),
            sha256="",
            state="pending",
            matrix_event_id=str(event.data["event_id"]),
            mxc_uri=str(url),
            signature=None,
            held_path=None,
            sender=event.actor,
        )
        if not created:
            return
        data = await self.fetch(case, row)
        if data is not None:
            await self.bot.process(case, row, data)

    async def fetch(self, case: Case, row: Attachment) -> bytes | None:
        try:
            data = await self.bot.ctx.appservice.intent.download_media(
                ContentURI(row.mxc_uri or "")
            )
        except MATRIX_ERRORS as e:
            await self.bot.postpone(case, row, f"download: {e}")
            return None
        await self.bot.queue.update(
            row, size=len(data), sha256=await asyncio.to_thread(sha256_hex, data)
        )
        return data

    async def release(self, case: Case, row: Attachment) -> None:
        await self.bot.ctx.cases.timeline.add(
            row.case_id,
            type="attachment",
            sender="staff",
            sender_name=self.bot.ctx.cases.staff_name(
                case.room_id or "", row.sender or ""
            ),
            body=row.filename,
            extra={
                "attachment_id": row.attachment_id,
                "filename": row.filename,
                "size": row.size,
                "mimetype": row.mimetype,
                "state": "delivered",
            },
        )
        await self.bot.queue.update(row, state="delivered")

    async def refuse(self, case: Case, row: Attachment, reason: str) -> None:
        """Redact the event so nobody downloads it, quarantine the file in Synapse
        (for whoever kept its URI), and tell the sender why."""
        if row.matrix_event_id and case.room_id:
            try:
                await self.bot.ctx.appservice.intent.redact(
                    RoomID(case.room_id), EventID(row.matrix_event_id), reason=reason
                )
            except MATRIX_ERRORS as e:
                log.error("could not redact %s: %s", row.matrix_event_id, e)
        quarantined = await self.quarantine(case, row)
        sender = row.sender or ""
        name = (
            self.bot.ctx.cases.staff_name(case.room_id or "", sender) if sender else ""
        )
        # Addressed to the sender: in their language (the reason as recorded).
        language = self.bot.ctx.commands.language_of(sender)
        text = staff_text(
            "notice.file_removed", language, filename=row.filename, reason=reason
        )
        if quarantined:
            text += " " + staff_text("notice.file_quarantined", language)
        await self.bot.notice(
            case,
            f"⚠ {name + ': ' if name else ''}{text}",
            key=f"refused:{row.attachment_id}",
        )

    async def quarantine(self, case: Case, row: Attachment) -> bool:
        """Quarantine an infected file; the admins are alerted if that fails."""
        if not row.mxc_uri or self.bot.admin is None:
            return False
        try:
            await self.bot.admin.quarantine(row.mxc_uri)
        except (QuarantineFailed, ValueError) as e:
            await self.bot.ctx.team.alert_admins(
                f"Infizierte Datei „{row.filename}“ in Fall {case.reference} "
                f"konnte nicht gesperrt werden ({e}). Bitte {row.mxc_uri} über die "
                "Admin-API von Synapse in Quarantäne setzen."
            )
            return False
        return True
