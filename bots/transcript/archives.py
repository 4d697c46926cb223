"""Where each closed case's transcript was archived, and its final hash
(``transcript_archives``, one row per case)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from bridge.clock import utcnow
from bridge.db.tables import TableStore

from .models import TranscriptArchive


class Archives(TableStore):
    async def get(self, case_id: str) -> TranscriptArchive | None:
        async with self.session() as s:
            return await s.get(TranscriptArchive, case_id)

    async def put(
        self, case_id: str, *, final_hash: str, path: str, pages: int
    ) -> None:
        """Record (or, archived again, replace) the case's archive."""
        values = dict(final_hash=final_hash, path=path, pages=pages)
        try:
            async with self.session.begin() as s:
                s.add(
                    TranscriptArchive(case_id=case_id, archived_at=utcnow(), **values)
                )
        except IntegrityError:
            async with self.session.begin() as s:
                row = await s.get(TranscriptArchive, case_id)
                if row is not None:
                    for key, value in values.items():
                        setattr(row, key, value)
