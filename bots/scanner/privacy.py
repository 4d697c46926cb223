"""The scanner's part in data protection (bridge.privacy): the files of a case.

A case's files live in three places: the attachment rows, the held copies on
disk (until delivered or refused) and Synapse's media repository (once
delivered). Erasure and expiry delete the last two (the rows go with the
case); an export carries every file the citizen sent or received that is not
infected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select

from bridge.db.models import Case
from bridge.privacy.parts import Export, Part
from bridge.synapse_admin import AdminCallFailed, SynapseAdmin

from .models import Attachment
from .pipeline import AttachmentQueue, release

#: Files that were refused never reached anyone; infected ones are not handed out.
NOT_EXPORTED = ("infected",)
EXPIRED = "expired"


class ScannerPrivacy:
    def __init__(self, queue: AttachmentQueue, held_dir: Path) -> None:
        self.queue = queue
        self.held_dir = held_dir

    def part(self) -> Part:
        return Part(
            "scanner",
            media=self.media,
            erase=self.erase,
            export=self.export,
            expire_files=self.expire_files,
        )

    async def _of_case(self, case_id: str) -> list[Attachment]:
        async with self.queue.session() as s:
            rows = await s.scalars(
                select(Attachment)
                .where(Attachment.case_id == case_id)
                .order_by(Attachment.id)
            )
            return list(rows)

    async def media(self, case: Case) -> Sequence[str]:
        return [a.mxc_uri for a in await self._of_case(case.case_id) if a.mxc_uri]

    async def erase(self, case: Case, action: str) -> dict[str, int]:
        rows = await self._of_case(case.case_id)
        for row in rows:
            # Where it is held now, and where it would be (a crash between
            # writing the file and recording it).
            held = self.held_dir / row.attachment_id
            for path in {row.held_path, str(held), str(held.with_suffix(".part"))}:
                await asyncio.to_thread(release, path)
        return {"files": len(rows)}

    async def export(
        self, case: Case, bundle: Export, admin: SynapseAdmin | None
    ) -> None:
        listed = []
        for row in await self._of_case(case.case_id):
            entry = {
                "name": row.filename,
                "from": row.direction,
                "type": row.mimetype,
                "size": row.size,
                "sha256": row.sha256,
                "state": row.state,
                "at": row.created_at.isoformat(),
            }
            content = None
            if row.state not in NOT_EXPORTED:
                content = await self._content(row, admin)
            if content is not None:
                entry["file"] = bundle.add_file(f"files/{row.filename}", content)
            listed.append(entry)
        bundle.data["files"] = listed

    async def _content(
        self, row: Attachment, admin: SynapseAdmin | None
    ) -> bytes | None:
        if row.held_path:
            try:
                return await asyncio.to_thread(_read, row.held_path)
            except OSError:
                pass
        if row.mxc_uri and admin is not None:
            try:
                return await admin.download_media(row.mxc_uri)
            except AdminCallFailed:
                return None
        return None

    async def expire_files(self, case: Case, admin: SynapseAdmin) -> int:
        """The files of a case whose files period ended: held copies and
        Synapse's media deleted, the rows marked ``expired``."""
        removed = 0
        for row in await self._of_case(case.case_id):
            if row.state == EXPIRED or not (row.held_path or row.mxc_uri):
                continue
            if row.mxc_uri:
                await admin.delete_media(row.mxc_uri)
            await asyncio.to_thread(release, row.held_path)
            await self.queue.update(row, state=EXPIRED, held_path=None, mxc_uri=None)
            removed += 1
        return removed


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
