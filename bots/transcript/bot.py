"""Transcripts at the edges: ``!transcript`` posts the PDF into the case room,
closing a case archives it, and the citizen can download theirs."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

from aiohttp import web
from mautrix.types import ContentURI

from bridge.api.citizen import bearer
from bridge.commands import Command
from bridge.db.models import Case
from bridge.errors import NotFound
from bridge.jobs import JobRun
from bridge.lifecycle import Kind
from bridge.plugins import BotContext

from .archives import Archives
from .model import RenderedTranscript
from .privacy import TranscriptPrivacy
from .render import render_pdf, stored_final_hash
from .section import TranscriptSettings, read_config
from .sources import MEDIA_TIMEOUT, case_entries, with_thumbnails
from .timeline import TRANSCRIPT_MARKER, case_info

log = logging.getLogger("buergerchat.transcript")
#: Archives a closed case's transcript (a reaction to Kind.CLOSED).
ARCHIVE_JOB = "transcript.archive"
ARCHIVE_RETRY = timedelta(seconds=10)


def file_name(case: Case) -> str:
    return f"Verlauf-{case.reference}.pdf"


class TranscriptBot:
    #: Built after the bots of lower order (bridge.plugins.load_bots).
    order: ClassVar[int] = 40
    name = "transcript"
    config_section: ClassVar[str] = "transcripts"
    read_config = staticmethod(read_config)

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        settings: TranscriptSettings = ctx.config.plugin(self.config_section)
        self.archive_dir = settings.archive_dir
        ctx.commands.register(
            "transcript",
            self._command,
            "!transcript",
            "Gesprächsverlauf als PDF in diesen Raum stellen",
        )
        # Durable: the job is written with the close, so a crash or a Synapse
        # outage right after it delays the archive but never loses it.
        ctx.jobs.kind(ARCHIVE_JOB, self._archive_job, base=ARCHIVE_RETRY)
        ctx.cases.lifecycle.react(Kind.CLOSED, ARCHIVE_JOB)
        self._archiving: dict[str, asyncio.Lock] = {}
        self.archives = Archives(ctx.store.engine)
        ctx.privacy.add_part(TranscriptPrivacy(self).part())

    def archiving_lock(self, case_id: str) -> asyncio.Lock:
        return self._archiving.setdefault(case_id, asyncio.Lock())

    def forget_lock(self, case_id: str) -> None:
        self._archiving.pop(case_id, None)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/v1/cases/{case_id}/transcript", self.citizen_download)]

    async def render(self, case: Case, internal: bool = True) -> RenderedTranscript:
        """Read the room from Synapse and render its PDF in a worker thread:
        the town's copy (``internal``, with staff notes, in German) or the
        citizen's (in the case's language)."""
        if not case.room_id:
            raise NotFound(f"Case {case.reference} has no conversation yet.")
        intent = self.ctx.appservice.intent

        async def load(url: str) -> bytes:
            return await asyncio.wait_for(
                intent.download_media(ContentURI(url)), timeout=MEDIA_TIMEOUT
            )

        history = await case_entries(
            intent.api, self.ctx.store, self.ctx.config, case, load
        )
        entries = await with_thumbnails(history.copy(internal), history.events, load)
        info = case_info(self.ctx.config, case, entries, internal)
        return await asyncio.to_thread(render_pdf, info, entries)

    async def _command(self, command: Command) -> None:
        room_id = command.event.room_id
        case = await self.ctx.store.get_case(command.case.case_id) or command.case
        try:
            rendered = await self.render(case)
        except Exception:
            log.exception("transcript of %s failed", case.reference)
            await self.ctx.commands.reply(
                room_id, "Der Verlauf konnte nicht erstellt werden (siehe Protokoll)."
            )
            return
        intent = self.ctx.appservice.intent
        name = file_name(case)
        mxc = await intent.upload_media(
            rendered.pdf,
            mime_type="application/pdf",
            filename=name,
            size=len(rendered.pdf),
        )
        content = {
            "msgtype": "m.file",
            "body": name,
            "filename": name,
            "url": str(mxc),
            "info": {"mimetype": "application/pdf", "size": len(rendered.pdf)},
            TRANSCRIPT_MARKER: {"final_hash": rendered.final_hash},
        }
        # Keys derive from the !transcript event: worked off again after a crash,
        # the command posts nothing twice.
        deliveries = self.ctx.cases.deliveries
        await deliveries.send(room_id, content, kind="transcript", case_id=case.case_id)
        await deliveries.send(
            room_id,
            {
                "msgtype": "m.notice",
                "body": f"Verlauf {case.reference}: {rendered.pages} Seite(n), "
                f"Prüfsumme {rendered.final_hash}",
                TRANSCRIPT_MARKER: {"final_hash": rendered.final_hash},
            },
            kind="transcript",
            case_id=case.case_id,
        )

    async def _archive_job(self, run: JobRun) -> None:
        """Kind.CLOSED → ``transcript.archive``: retried with backoff until
        Synapse answers."""
        case = await self.ctx.store.get_case(run.case_id or "")
        if case is not None and case.state != "purged":
            await self.archive(case)

    async def archive(self, case: Case) -> RenderedTranscript | None:
        """The PDF into the archive folder and its hash onto the case, once: an
        archive already there (from the job or a download) is kept."""
        if not case.room_id:
            return None
        async with self.archiving_lock(case.case_id):
            fresh = await self.ctx.store.get_case(case.case_id)
            if fresh is None or fresh.state == "purged":
                return None  # erased meanwhile: no archive after the erasure
            done = await self._archived(fresh)
            if done is not None:
                return done
            rendered = await self._write_archive(fresh)
        self._archiving.pop(case.case_id, None)
        return rendered

    async def _write_archive(self, case: Case) -> RenderedTranscript:
        rendered = await self.render(case)
        path = self.archive_dir / f"{case.reference}.pdf"
        await asyncio.to_thread(_write, path, rendered.pdf)
        await self.archives.put(
            case.case_id,
            final_hash=rendered.final_hash,
            path=str(path),
            pages=rendered.pages,
        )
        log.info("archived transcript of %s to %s", case.reference, path)
        return rendered

    async def citizen_download(self, request: web.Request) -> web.Response:
        """The citizen's own transcript as a PDF download (their token only):
        the citizen's copy, in the case's language, which never shows the
        staff's internal notes (the town's archive copy, in German, does). Its
        hash chain is its own; both copies are checked by ``buergerchat
        verify-transcript``."""
        case_id = request.match_info["case_id"]
        case = await self.ctx.cases.authorize(case_id, bearer(request))
        rendered = await self.render(case, internal=False)
        return web.Response(
            body=rendered.pdf,
            content_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="{file_name(case)}"',
                "X-Transcript-Hash": rendered.final_hash,
            },
        )

    async def _archived(self, case: Case) -> RenderedTranscript | None:
        """The archived PDF of a closed case, if it is there and carries the
        hash stored with the case."""
        stored = await self.archives.get(case.case_id)
        if case.closed_at is None or stored is None:
            return None
        path = self.archive_dir / f"{case.reference}.pdf"
        try:
            pdf = await asyncio.to_thread(path.read_bytes)
        except OSError as e:
            log.warning("archived transcript of %s unreadable: %s", case.reference, e)
            return None
        if stored_final_hash(pdf) != stored.final_hash:
            log.warning("archived transcript %s does not match its case", path)
            return None
        return RenderedTranscript(
            pdf=pdf, final_hash=stored.final_hash, pages=stored.pages
        )


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pdf.part")
    tmp.write_bytes(data)
    tmp.replace(path)
