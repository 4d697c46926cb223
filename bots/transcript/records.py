"""What the bridge database knows about a case beyond Synapse's events: the
system events the citizen was shown (claimed, transferred, video …) and the
scanner's rows for every file (hash and verdict, and files never delivered).

Synapse holds the conversation; the bot's notices there are answers to staff
and are left out of transcripts, so what they announce comes from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bots.scanner.models import Attachment as AttachmentRow
from bridge.db.models import Case, CaseEvent
from bridge.db.store import Store

#: The scanner's row state as the verdict a transcript shows.
VERDICT_BY_STATE = {
    "delivered": "clean",
    "clean": "clean",
    "pending": "pending",
    "infected": "infected",
    "refused": "refused",
}


@dataclass(frozen=True)
class SystemRecord:
    """A system event of the citizen's timeline (``case_events``, type system)."""

    ts: datetime
    kind: str
    body: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FileRecord:
    """A file the scanner handled: how it looks in a transcript."""

    ts: datetime
    #: When the row last changed (for a refused file: when it was refused).
    settled_at: datetime
    direction: str  # "citizen" or "staff"
    sender: str | None
    filename: str
    mimetype: str
    size: int
    sha256: str
    verdict: str
    event_id: str | None
    reason: str | None = None


@dataclass(frozen=True)
class CaseRecords:
    system: tuple[SystemRecord, ...] = ()
    files: tuple[FileRecord, ...] = ()

    def scans(self) -> dict[str, tuple[str, str]]:
        """Matrix event id → (sha256, verdict), for files whose event carries no
        scan result (staff uploads are scanned after they were sent)."""
        return {
            f.event_id: (f.sha256, f.verdict)
            for f in self.files
            if f.event_id and f.sha256
        }

    def refused(self) -> list[FileRecord]:
        """Files that never reached the other side (infected or refused)."""
        return [f for f in self.files if f.verdict in ("infected", "refused")]


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything the bridge stores is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def file_record(row: AttachmentRow) -> FileRecord:
    verdict = VERDICT_BY_STATE.get(row.state, row.state)
    reason = row.signature if row.state == "infected" else row.last_error
    return FileRecord(
        ts=_utc(row.created_at),
        settled_at=_utc(row.updated_at),
        direction=row.direction,
        sender=row.sender,
        filename=row.filename,
        mimetype=row.mimetype,
        size=int(row.size or 0),
        sha256=(row.sha256 or "").lower(),
        verdict=verdict,
        event_id=row.matrix_event_id,
        reason=reason if verdict in ("infected", "refused") else None,
    )


async def load_records(store: Store, case: Case) -> CaseRecords:
    """The case's system events and file rows, oldest first."""
    async with store.session() as s:
        events = await s.scalars(
            select(CaseEvent)
            .where(CaseEvent.case_id == case.case_id, CaseEvent.type == "system")
            .order_by(CaseEvent.seq)
        )
        system = tuple(
            SystemRecord(
                ts=_utc(e.ts),
                kind=str((e.extra or {}).get("kind") or ""),
                body=e.body,
                extra=dict(e.extra or {}),
            )
            for e in events.all()
        )
        rows = await s.scalars(
            select(AttachmentRow)
            .where(AttachmentRow.case_id == case.case_id)
            .order_by(AttachmentRow.id)
        )
        files = tuple(file_record(r) for r in rows.all())
    return CaseRecords(system=system, files=files)
