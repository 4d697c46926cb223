"""Reads and writes of the ``offline_messages`` table, each a small transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bridge.db.models import CaseEvent
from bridge.db.tables import TableStore

from .models import OfflineRecord

#: Client ids of the timeline entries the bot itself writes for a record.
MESSAGE_CLIENT_ID = "offline-{id}"
RECEIVED_CLIENT_ID = "offline-received-{id}"


class OfflineStore(TableStore):
    async def by_client_id(self, client_id: str) -> OfflineRecord | None:
        async with self.session() as s:
            return await s.scalar(
                select(OfflineRecord).where(OfflineRecord.client_id == client_id)
            )

    async def by_case(self, case_id: str) -> OfflineRecord | None:
        async with self.session() as s:
            return await s.scalar(
                select(OfflineRecord).where(OfflineRecord.case_id == case_id)
            )

    async def claim(self, values: dict[str, Any]) -> tuple[OfflineRecord, bool]:
        """Insert the record unless its client id (or its case) is known; returns
        (record, created). The unique keys decide, so two requests racing with the
        same client id get the same row."""
        try:
            async with self.session.begin() as s:
                record = OfflineRecord(**values)
                s.add(record)
            return record, True
        except IntegrityError:
            existing = await self.by_client_id(values["client_id"])
            if existing is None and values.get("case_id"):
                existing = await self.by_case(values["case_id"])
            if existing is None:
                raise
            return existing, False

    async def update(self, record_id: int, **values: Any) -> None:
        async with self.session.begin() as s:
            await s.execute(
                update(OfflineRecord)
                .where(OfflineRecord.id == record_id)
                .values(**values)
            )

    async def get(self, record_id: int) -> OfflineRecord | None:
        async with self.session() as s:
            return await s.get(OfflineRecord, record_id, populate_existing=True)

    async def unforwarded(self) -> Sequence[OfflineRecord]:
        async with self.session() as s:
            rows = await s.scalars(
                select(OfflineRecord)
                .where(OfflineRecord.forwarded_at.is_(None))
                .order_by(OfflineRecord.id)
            )
            return rows.all()

    async def citizen_wrote_since(self, case_id: str, since: datetime) -> bool:
        """Whether the citizen sent a message themselves after ``since`` (the
        bot's own copy of the offline message does not count)."""
        async with self.session() as s:
            found = await s.scalar(
                select(CaseEvent.seq)
                .where(
                    CaseEvent.case_id == case_id,
                    CaseEvent.sender == "citizen",
                    CaseEvent.ts > since,
                    CaseEvent.client_id.is_(None)
                    | ~CaseEvent.client_id.startswith("offline-"),
                )
                .limit(1)
            )
        return found is not None
