"""The transcript bot's part in data protection (bridge.privacy).

Archived PDFs are the town's record of a conversation. ``retention.
transcripts_days`` says how long they stay after the case ended (``keep``: the
records office decides, e.g. for an external archive folder); an erasure
request deletes them too unless ``retention.transcripts_on_erasure`` is false.
An export carries the citizen's copy (without internal notes), rendered from
the room before it is deleted.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from bridge.db.models import Case
from bridge.errors import NotFound
from bridge.privacy.parts import Export, Part
from bridge.privacy.service import ERASED
from bridge.synapse_admin import SynapseAdmin

if TYPE_CHECKING:
    from .bot import TranscriptBot

log = logging.getLogger("buergerchat.transcript")


class TranscriptPrivacy:
    def __init__(self, bot: TranscriptBot) -> None:
        self.bot = bot
        self.retention = bot.ctx.config.retention

    def part(self) -> Part:
        return Part(
            "transcript", erase=self.erase, export=self.export, sweep=self.sweep
        )

    def _path(self, case: Case) -> Path:
        return self.bot.archive_dir / f"{case.reference}.pdf"

    async def erase(self, case: Case, action: str) -> dict[str, int]:
        if action == ERASED:
            keep = not self.retention.transcripts_on_erasure
        else:  # expired: the PDF stays if it is kept longer than the case
            days = self.retention.transcripts_days
            keep = days is None or days > self._case_days(case)
        # An archive being written now finishes first (it would come after).
        async with self.bot.archiving_lock(case.case_id):
            counts = await self._remove(case, keep)
        self.bot.forget_lock(case.case_id)
        return counts

    async def _remove(self, case: Case, keep: bool) -> dict[str, int]:
        if keep:
            return {"transcripts_kept": int(self._path(case).exists())}
        paths = {self._path(case)}
        stored = await self.bot.archives.get(case.case_id)
        if stored is not None:
            paths.add(Path(stored.path))
        removed = 0
        for path in paths:
            if path.exists():
                await asyncio.to_thread(path.unlink, missing_ok=True)
                removed += 1
        return {"transcripts": removed}

    def _case_days(self, case: Case) -> int:
        return self.bot.ctx.config.case_retention(case.department).longest()

    async def export(
        self, case: Case, bundle: Export, admin: SynapseAdmin | None
    ) -> None:
        try:
            rendered = await self.bot.render(case, internal=False)
        except NotFound:
            return  # no conversation (yet): nothing to render
        bundle.add_file("transcript.pdf", rendered.pdf)

    async def sweep(self, now: datetime) -> dict[str, int]:
        """Archived PDFs older than ``transcripts_days`` whose case is gone
        (kept longer than the case): deleted by their file's age."""
        days = self.retention.transcripts_days
        folder = self.bot.archive_dir
        if days is None or not folder.is_dir():
            return {}
        async with self.bot.ctx.store.session() as s:
            live = set(await s.scalars(select(Case.reference)))
        pattern = re.compile(
            re.escape(self.bot.ctx.config.citizen.reference_prefix) + r"-[\w-]+\.pdf"
        )
        cutoff = (now - timedelta(days=days)).timestamp()
        removed = 0
        for path in folder.iterdir():
            if not pattern.fullmatch(path.name) or path.stem in live:
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
                    removed += 1
            except OSError as e:
                log.warning("old transcript %s not deleted: %s", path, e)
        return {"transcripts_expired": removed}
