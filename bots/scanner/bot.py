"""The scanner bot: every file between citizen and staff is scanned by clamd before
the other side can get it, and held (never lost, never passed) while clamd is away."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any, ClassVar

import aiohttp
from aiohttp import web
from mautrix.types import (
    ContentURI,
)

from bridge.api.citizen import bearer
from bridge.clock import as_utc, utcnow
from bridge.db.models import Case
from bridge.errors import (
    CaseClosed,
    NotFound,
)
from bridge.i18n import for_readers, staff_line
from bridge.jobs import JobRun
from bridge.lifecycle import Kind
from bridge.plugins import BotContext
from bridge.supervisor import Keeper
from bridge.synapse_admin import SynapseAdmin, load_admin_token

from .clamd_client import ClamdClient
from .clamd_runner import ClamdProcess
from .content import check_allowed, clean_filename
from .limits import check_clamd_accepts, check_synapse_limit, synapse_upload_limit
from .models import Attachment
from .pipeline import (
    MATRIX_ERRORS,
    AttachmentQueue,
    InfectedFile,
    ScannerSettings,
    embedded_socket,
    hold,
    message_content,
    new_attachment_id,
    release,
    retry_delay,
    sha256_hex,
)
from .privacy import ScannerPrivacy
from .section import read_config, status_fields, synapse_modules
from .staff import StaffFiles
from .upload import read_upload
from .verdict import Clean, Infected, ScanError, ScanTooLarge

log = logging.getLogger("buergerchat.scanner")
#: One job per held file: scanned (and delivered) again with backoff.
HELD_JOB = "scan.held"


class ScannerBot:
    #: Built after the bots of lower order (bridge.plugins.load_bots).
    order: ClassVar[int] = 30
    name = "scanner"
    #: Its section of buergerchat.yaml and what it adds to Synapse and /status.
    config_section: ClassVar[str] = "scanner"
    read_config = staticmethod(read_config)
    synapse_modules = staticmethod(synapse_modules)
    status_fields = staticmethod(status_fields)

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        self.settings: ScannerSettings = ctx.config.plugin(self.config_section)
        self.queue = AttachmentQueue(ctx.store.engine)
        self.held_dir = ctx.config.data_dir / "attachments" / "held"
        self._clamd_process: ClamdProcess | None = None
        self._keeper: Keeper | None = None
        self.clamd: ClamdClient | None = None
        ctx.jobs.kind(HELD_JOB, self._held_job)
        self.admin: SynapseAdmin | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self.staff = StaffFiles(self)
        ctx.cases.lifecycle.subscribe(Kind.STAFF_FILE, self.staff.on_file)
        ctx.privacy.add_part(ScannerPrivacy(self.queue, self.held_dir).part())

    # --- life cycle -----------------------------------------------------------

    async def start(self) -> None:
        config = self.ctx.config
        max_size = self.settings.max_size
        # Before clamd starts, so that a refused start leaves nothing running.
        self.admin = SynapseAdmin(
            config.homeserver.url,
            load_admin_token(
                embedded=config.homeserver.embedded,
                data_dir=config.data_dir,
                config_dir=config.config_dir,
                token_file=self.settings.admin_token_file
                or config.homeserver.admin_token_file,
            ),
        )
        try:
            await self.admin.check()
            synapse_limit = await synapse_upload_limit(self.admin.url, self.admin.token)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            log.warning("Synapse's admin token and upload limit not checked: %s", e)
        else:
            check_synapse_limit(synapse_limit, max_size)
        if self.settings.clamd == "embedded":
            # Its StreamMaxLength and MaxFileSize are derived from max_size.
            self._clamd_process = ClamdProcess(
                embedded_socket(config.data_dir).parent,
                max_upload_size=max_size,
                tcp_port=None,
                unix_socket=True,
            )
            await self._clamd_process.start()
            self.clamd = self._clamd_process.client(
                transport="unix", scan_timeout=self.settings.scan_timeout
            )
            # A dead clamd is started again; what it held back is scanned then.
            self._keeper = Keeper(
                "clamd",
                start=self._clamd_process.start,
                wait=self._clamd_process.wait,
                on_restart=self.retry_now,
                alert=self.ctx.team.alert_admins,
            )
            self._keeper.watch()
        else:
            self.clamd = self.settings.external_client()
            await check_clamd_accepts(self.clamd, max_size)
        # Files an earlier run held (also from before jobs existed) get theirs.
        for row in await self.queue.held():
            await self._later(row, utcnow())
        self.ctx.health.register("clamd", self.health)

    async def health(self) -> dict[str, object]:
        """clamd answers PING; files held because it did not are counted."""
        held = await self.queue.held_count()
        if self.clamd is None:
            return {"ok": False, "error": "not started", "held_files": held}
        try:
            await self.clamd.ping()
        except ScanError as e:
            return {"ok": False, "error": str(e), "held_files": held}
        return {"ok": True, "held_files": held}

    async def stop(self) -> None:
        if self._keeper is not None:
            await self._keeper.stop()
        if self._clamd_process is not None:
            await self._clamd_process.stop()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/cases/{case_id}/attachments", self.citizen_upload),
            web.get(
                "/api/v1/cases/{case_id}/attachments/{attachment_id}",
                self.citizen_download,
            ),
        ]

    # --- citizen → staff ------------------------------------------------------

    async def citizen_upload(self, request: web.Request) -> web.Response:
        """Multipart ``file`` (+ optional ``client_id``): allow-list, scan, deliver."""
        case = await self.ctx.cases.authorize(
            request.match_info["case_id"], bearer(request)
        )
        if case.closed_at is not None:
            raise CaseClosed(
                f"Case {case.reference} is closed. Start a new chat for a new concern."
            )
        await self.ctx.limits.admit(
            request,
            ("uploads_per_address", "address"),
            ("uploads_per_case", case.case_id),
        )
        filename, data, client_id = await read_upload(request, self.settings.max_size)
        if client_id is not None:
            known = await self.queue.by_client_id(case.case_id, client_id)
            if known is not None:
                return self._answer(known)
        detected = await asyncio.to_thread(check_allowed, data, self.settings.allowed)
        attachment_id = new_attachment_id()
        path = await asyncio.to_thread(hold, self.held_dir, attachment_id, data)
        row, created = await self.queue.add(
            attachment_id=attachment_id,
            case_id=case.case_id,
            direction="citizen",
            client_id=client_id,
            filename=clean_filename(filename, detected),
            mimetype=detected.mime,
            size=len(data),
            sha256=await asyncio.to_thread(sha256_hex, data),
            state="pending",
            held_path=str(path),
        )
        if not created:  # the same client id raced us: its upload counts
            await asyncio.to_thread(release, str(path))
            return self._answer(row)
        await self.process(case, row, data)
        return self._answer(row)

    def _answer(self, row: Attachment) -> web.Response:
        if row.state in ("infected",):
            raise InfectedFile(
                f"Die Datei „{row.filename}“ enthält Schadsoftware ({row.signature}) "
                "und wurde nicht übermittelt. / The file contains malware and was "
                "not delivered.",
                attachment_id=row.attachment_id,
                signature=row.signature,
            )
        body: dict[str, Any] = {
            "attachment_id": row.attachment_id,
            "state": row.state,
            "sha256": row.sha256,
            "filename": row.filename,
        }
        if row.state == "delivered":
            body["event_id"] = row.matrix_event_id
            return web.json_response(body, status=201)
        if row.state == "refused":
            body["error"] = row.last_error
            return web.json_response(body, status=422)
        return web.json_response(body, status=202)

    async def process(self, case: Case, row: Attachment, data: bytes) -> None:
        """Scan once; then deliver, refuse or schedule the next attempt."""
        lock = self._locks.setdefault(row.attachment_id, asyncio.Lock())
        try:
            async with lock:
                # Whoever held the lock before us may have delivered it already.
                await self.queue.refresh(row)
                if row.state not in ("pending", "clean"):
                    return
                if row.state == "pending":
                    try:
                        verdict = await self._scan(data)
                    except ScanTooLarge as e:
                        await self._refuse(case, row, str(e))
                        self.ctx.outcome("scan", "refused")
                        return
                    except ScanError as e:
                        await self.postpone(case, row, str(e))
                        self.ctx.outcome("scan", "held")
                        return
                    if isinstance(verdict, Infected):
                        await self._infected(case, row, verdict.signature)
                        self.ctx.outcome("scan", "infected")
                        return
                    assert isinstance(verdict, Clean)
                    await self.queue.update(row, state="clean", last_error=None)
                    self.ctx.outcome("scan", "clean")
                if row.direction == "citizen":
                    await self._deliver_citizen_file(case, row, data)
                else:
                    await self.staff.release(case, row)
        finally:
            if not lock.locked():
                self._locks.pop(row.attachment_id, None)

    async def _scan(self, data: bytes) -> Clean | Infected:
        if self.clamd is None:
            raise ScanError("the scanner has not started yet")
        verdict = await self.clamd.scan(data)
        return verdict  # type: ignore[return-value]

    async def _deliver_citizen_file(
        self, case: Case, row: Attachment, data: bytes
    ) -> None:
        try:
            room_id = case.room_id or await self.ctx.cases.ensure_room(case)
            ghost = self.ctx.cases.ghost_intent(case)
            mxc = row.mxc_uri or await ghost.upload_media(
                data, mime_type=row.mimetype, filename=row.filename, size=row.size
            )
            if row.mxc_uri is None:
                await self.queue.update(row, mxc_uri=str(mxc))
            content = message_content(row, str(mxc), data, utcnow())
            # Stored, then sent once (bridge.delivery), also across a crash.
            event_id = await self.ctx.cases.deliveries.send(
                room_id,
                content,
                key=f"att:{row.attachment_id}",
                sender=case.ghost_mxid,
                case_id=case.case_id,
            )
        except MATRIX_ERRORS as e:
            event_id, error = None, str(e)
        else:
            error = "the file's event waits for Synapse"
        if event_id is None:
            # Clean, but Synapse is away: keep the file and try again later.
            await self.postpone(case, row, f"Synapse: {error}", keep_state=True)
            return
        await self._settle(
            row, state="delivered", matrix_event_id=str(event_id), last_error=None
        )
        await self._timeline(row, "delivered", "citizen", case.citizen_name)

    async def postpone(
        self, case: Case, row: Attachment, error: str, *, keep_state: bool = False
    ) -> None:
        attempts = row.attempts + 1
        log.warning(
            "attachment %s of %s held: %s", row.attachment_id, case.reference, error
        )
        await self.queue.update(
            row,
            attempts=attempts,
            last_error=error,
            state="pending" if not keep_state else row.state,
        )
        # When it is tried again is the job's run_at (scan.held), not a column.
        await self._later(row, utcnow() + retry_delay(attempts))
        if attempts == 1:
            sender = "citizen" if row.direction == "citizen" else "staff"
            await self._timeline(row, "pending", sender, None)

    async def _settle(self, row: Attachment, **values: Any) -> None:
        """The file's fate is decided: its row says so and the held copy goes
        (read before the update, which clears it on the row too)."""
        held = row.held_path
        await self.queue.update(row, held_path=None, **values)
        await asyncio.to_thread(release, held)

    async def _infected(self, case: Case, row: Attachment, signature: str) -> None:
        log.warning(
            "attachment %s of %s infected: %s",
            row.attachment_id,
            case.reference,
            signature,
        )
        await self._settle(row, state="infected", signature=signature)
        if row.direction == "staff":
            await self.staff.refuse(case, row, f"Schadsoftware erkannt: {signature}")
            return
        told = staff_line(
            "notice.citizen_file_infected", filename=row.filename, signature=signature
        )
        readers = self.ctx.team.readers(case.department)
        await self.notice(
            case, for_readers(told, readers), key=f"infected:{row.attachment_id}"
        )
        await self._timeline(row, "infected", "citizen", case.citizen_name)

    async def _refuse(self, case: Case, row: Attachment, reason: str) -> None:
        await self._settle(row, state="refused", last_error=reason)
        if row.direction == "staff":
            await self.staff.refuse(case, row, reason)
            return
        await self._timeline(row, "refused", "citizen", case.citizen_name)

    async def _timeline(
        self, row: Attachment, state: str, sender: str, sender_name: str | None
    ) -> None:
        messages = {
            "pending": "wird geprüft",
            "delivered": "zugestellt",
            "infected": "abgewiesen: Schadsoftware gefunden",
            "refused": "abgewiesen: konnte nicht geprüft werden",
        }
        # "pending" is the core's word for "send me again": never use it here.
        delivery = {"pending": "scanning", "delivered": "delivered"}.get(
            state, "refused"
        )
        await self.ctx.cases.timeline.add(
            row.case_id,
            type="attachment",
            sender=sender,
            sender_name=sender_name,
            body=f"{row.filename} ({messages[state]})",
            delivery=delivery,
            extra={
                "attachment_id": row.attachment_id,
                "filename": row.filename,
                "size": row.size,
                "mimetype": row.mimetype,
                "state": state,
                **({"error": row.last_error} if state == "refused" else {}),
            },
        )

    async def notice(self, case: Case, text: str, *, key: str | None = None) -> None:
        try:
            room_id = case.room_id or await self.ctx.cases.ensure_room(case)
        except MATRIX_ERRORS as e:
            log.warning("notice to %s not sent: %s", case.reference, e)
            return
        await self.ctx.cases.deliveries.send(
            room_id,
            {"msgtype": "m.notice", "body": text},
            key=key,
            kind="scanner",
            case_id=case.case_id,
        )

    async def citizen_download(self, request: web.Request) -> web.Response:
        """The file, from Synapse, only if it was scanned clean."""
        case = await self.ctx.cases.authorize(
            request.match_info["case_id"], bearer(request)
        )
        row = await self.queue.get(case.case_id, request.match_info["attachment_id"])
        if row is None or row.state not in ("clean", "delivered") or not row.mxc_uri:
            raise NotFound("There is no scanned file with this id in this case.")
        data = await self.ctx.appservice.intent.download_media(ContentURI(row.mxc_uri))
        return web.Response(
            body=data,
            content_type=row.mimetype,
            headers={
                "Content-Disposition": "attachment; filename*=UTF-8''"
                + _quote(row.filename),
                "X-Content-Type-Options": "nosniff",
            },
        )

    # --- retries --------------------------------------------------------------

    async def _later(self, row: Attachment, due: datetime) -> None:
        await self.ctx.jobs.enqueue(
            HELD_JOB,
            f"scan:{row.attachment_id}",
            {"attachment_id": row.attachment_id, "case_id": row.case_id},
            run_at=due,
            case_id=row.case_id,
            again=True,
        )

    async def retry_now(self) -> None:
        """clamd is back: every held file is due at once."""
        await self.ctx.jobs.run_kind_soon(HELD_JOB)

    async def _held_job(self, run: JobRun) -> None:
        """Scan (and deliver) a held file again; a failure on the way holds it
        once more with the next backoff (see :meth:`postpone`)."""
        row = await self.queue.get(
            str(run.payload["case_id"]), str(run.payload["attachment_id"])
        )
        if row is None or row.state not in ("pending", "clean"):
            return
        case = await self.ctx.store.get_case(row.case_id)
        if case is None:
            return
        now = utcnow()
        if _expired(row.created_at, now, self.settings.give_up_after):
            await self._refuse(
                case,
                row,
                "Die Datei konnte nicht rechtzeitig auf Schadsoftware geprüft "
                "werden. Bitte senden Sie sie erneut. / The file could not be "
                "scanned in time; please send it again.",
            )
            return
        if row.direction == "citizen":
            try:
                data = await asyncio.to_thread(_read, row.held_path)
            except OSError as e:
                log.error("held file of %s is gone: %s", row.attachment_id, e)
                await self._refuse(case, row, "Die Datei ist verloren gegangen.")
                return
        else:
            fetched = await self.staff.fetch(case, row)
            if fetched is None:
                return
            data = fetched
        await self.process(case, row, data)


def _expired(created_at: datetime, now: datetime, limit: timedelta) -> bool:
    return as_utc(created_at) + limit <= now


def _read(path: str | None) -> bytes:
    if not path:
        raise OSError("no held file recorded")
    with open(path, "rb") as f:
        return f.read()


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
