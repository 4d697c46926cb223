"""Retention, erasure and access, as durable jobs (README "Data protection").

Erasing a case (:meth:`Privacy.purge`) is one job that may run again after any
crash: every step is safe to repeat, and the case row (whose deletion takes
every bridge row of the case with it) goes last, in the same transaction as
the audit row. The steps:

1. the case moves to ``purged``: the citizen API answers 404 from here on,
   its tokens are revoked, routing and signals forget it;
2. the bot's notices about it in team rooms are redacted and pruned at once
   (buergerchat_privacy module), the room's media listed;
3. Synapse deletes the room with purge (polled until complete), the media
   (those the bots recorded and those the room's events name), and the
   citizen's ghost user (deactivated, erased);
4. each bot's part deletes its files (held uploads, the archived transcript
   as ``retention`` says, mails in the embedded Maildir);
5. the bridge's rows: processed appservice transactions that carried the
   room's events, then the case (cascading to timeline, tokens, sends, jobs,
   offline form, attachments, mails, transcripts, calls), and the audit row;
6. the SQLite files (bridge and Synapse) are compacted, so nothing deleted is
   left in free pages or write-ahead logs.

A daily sweep (:meth:`Privacy.sweep`) finds expired cases by the retention
periods (per department), expires files and mail bodies, and trims the audit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mautrix.errors import MatrixError
from mautrix.types import EventID, RoomID
from sqlalchemy import ColumnElement, String, cast, delete, func, select

from ..caserooms import is_remote_citizen
from ..clock import utcnow
from ..db.engine import compact_sqlite
from ..db.models import (
    Case,
    CaseEvent,
    MatrixSend,
    PrivacyAudit,
    Transaction,
)
from ..errors import BuergerchatError
from ..jobs import JobRun, RetryLater
from ..lifecycle import InvalidTransition, Kind, State
from ..synapse_admin import AdminCallFailed, SynapseAdmin, split_mxc
from .export import collect_export, write_zip
from .parts import Part
from .retention import case_ends, expired_cases

if TYPE_CHECKING:
    from ..appservice import DurableAppService
    from ..case import CaseService
    from ..config import Config
    from ..db.store import Store
    from ..jobs import JobQueue
    from ..mail.outbox import Outbox

log = logging.getLogger("buergerchat.privacy")

PURGE_JOB = "privacy.purge"
REQUEST_JOB = "privacy.request"
SWEEP_JOB = "privacy.sweep"
SWEEP_EVERY = timedelta(days=1)
#: Who asked, in the audit: an admin's Matrix ID, or one of these.
BY_RETENTION = "retention"
BY_CLI = "cli"
ERASED, EXPIRED, EXPORTED = "erased", "expired", "exported"
FILES_EXPIRED, MAIL_BODIES_EXPIRED = "files_expired", "mail_bodies_expired"


class RequestRefused(BuergerchatError):
    """A request names no case (unknown reference, no case of that address)."""

    errcode = "BC_PRIVACY_REQUEST"


AdminFactory = Callable[[], SynapseAdmin]


class Privacy:
    def __init__(
        self,
        config: Config,
        store: Store,
        cases: CaseService,
        appservice: DurableAppService,
        jobs: JobQueue,
        mail: Outbox,
        admin: AdminFactory,
    ) -> None:
        self.config = config
        self.store = store
        self.cases = cases
        self.az = appservice
        self.jobs = jobs
        self.mail = mail
        self._admin_factory = admin
        self._admin: SynapseAdmin | None = None
        self.parts: list[Part] = []
        jobs.kind(
            PURGE_JOB,
            self._purge_job,
            cap=timedelta(minutes=10),
            lease=timedelta(minutes=5),
        )
        jobs.kind(
            REQUEST_JOB, self._request_job, max_attempts=5, lease=timedelta(minutes=10)
        )
        jobs.kind(
            SWEEP_JOB, self._sweep_job, every=SWEEP_EVERY, lease=timedelta(minutes=30)
        )

    def add_part(self, part: Part) -> None:
        self.parts.append(part)

    def admin(self) -> SynapseAdmin:
        """Synapse's admin API (the token is read when first needed)."""
        if self._admin is None:
            self._admin = self._admin_factory()
        return self._admin

    async def start(self) -> None:
        """The sweep runs a minute after start, then daily."""
        await self.jobs.enqueue(
            SWEEP_JOB, SWEEP_JOB, run_at=utcnow() + timedelta(minutes=1)
        )

    # --- erasing one case ---------------------------------------------------------

    async def enqueue_purge(self, case_id: str, action: str, actor: str) -> None:
        await self.jobs.enqueue(
            PURGE_JOB,
            f"{PURGE_JOB}:{case_id}",
            {"case_id": case_id, "action": action, "actor": actor},
        )

    async def _purge_job(self, run: JobRun) -> None:
        try:
            await self.purge(
                run.payload["case_id"], run.payload["action"], run.payload["actor"]
            )
        except AdminCallFailed as e:
            # Synapse away or busy: the job queue retries with backoff.
            raise RetryLater(timedelta(seconds=30), str(e)) from e

    async def purge(
        self, case_id: str, action: str, actor: str, request: str | None = None
    ) -> dict[str, int] | None:
        """Erase the case everywhere (module docstring); the audit's counts, or
        None if there was no such case (erased before)."""
        case = await self.store.get_case(case_id)
        if case is None:
            return None
        self.cases.tokens.forget(case_id)  # no reading check trusted from here
        if case.state != State.PURGED:
            try:
                await self.cases.lifecycle.transition(
                    case_id, State.PURGED, kind=Kind.PURGED, data={"action": action}
                )
            except InvalidTransition:
                pass  # purged meanwhile by another run
        await self.cases.tokens.revoke(case_id)
        self.cases.forget(case_id)
        admin = self.admin()
        counts: dict[str, int] = {}
        media: set[str] = set()
        for part in self.parts:
            if part.media is not None:
                media.update(await part.media(case))
        if case.room_id:
            media.update(await admin.room_media(case.room_id))
        counts["notices"] = await self._remove_notices(case, admin)
        if case.room_id:
            await admin.delete_room(case.room_id)
            counts["rooms"] = 1
        counts["media"] = 0
        for mxc in sorted(media):
            try:
                server, _ = split_mxc(mxc)
            except ValueError:
                continue
            if server == self.config.homeserver.server_name:
                counts["media"] += int(await admin.delete_media(mxc))
        counts["users"] = await self._erase_ghost(case, admin)
        for part in self.parts:
            if part.erase is not None:
                counts.update(await part.erase(case, action))
        counts["mails"] = await self.mail.erase_case(case_id)
        if await self._inbox_mentions(case, processed=False):
            # Its events are still being worked off; their rows go next time.
            raise RetryLater(timedelta(seconds=5), "the room's events are in the inbox")
        await self.az.forget(case.room_id, case.ghost_mxid)
        # The other bridge processes forget it too (bridge.peers).
        self.cases.cluster.publish(
            "erased", case_id, case.room_id or "-", case.ghost_mxid
        )
        asked = {"request": request} if request is not None else {}
        counts.update(await self._delete_rows(case, action, actor, counts, asked))
        self.cases.forget(case_id)  # what staff wrote meanwhile, kept in memory
        await self.compact()
        log.info("case %s %s (%s)", case.reference, action, actor)
        return counts

    async def _erase_ghost(self, case: Case, admin: Any) -> int:
        """The citizen's ghost; a partner's (a case handed to us) is its own."""
        if is_remote_citizen(self.config, case):
            return 0
        return int(await admin.erase_user(case.ghost_mxid))

    async def _remove_notices(self, case: Case, admin: SynapseAdmin) -> int:
        """The bot's notices about the case outside its room (team rooms):
        redacted, then pruned at once."""
        async with self.store.session() as s:
            rows = (
                await s.execute(
                    select(MatrixSend.room_id, MatrixSend.event_id).where(
                        MatrixSend.case_id == case.case_id,
                        MatrixSend.event_id.is_not(None),
                        MatrixSend.room_id != (case.room_id or ""),
                    )
                )
            ).all()
        event_ids: list[str] = []
        for room_id, event_id in rows:
            assert event_id is not None
            try:
                await self.az.intent.redact(
                    RoomID(room_id), EventID(event_id), reason="Datenschutz"
                )
            except MatrixError as e:
                log.info("notice %s not redacted: %s", event_id, e)
            event_ids.append(event_id)
        return await admin.censor(event_ids)

    async def _inbox_mentions(self, case: Case, *, processed: bool) -> bool:
        async with self.store.session() as s:
            for needle in (n for n in (case.room_id, case.ghost_mxid) if n):
                found = await s.scalar(
                    select(Transaction.seq)
                    .where(
                        Transaction.processed_at.is_not(None)
                        if processed
                        else Transaction.processed_at.is_(None),
                        _mentions(needle),
                    )
                    .limit(1)
                )
                if found is not None:
                    return True
        return False

    async def _delete_rows(
        self,
        case: Case,
        action: str,
        actor: str,
        counts: dict[str, int],
        extra: dict[str, Any],
    ) -> dict[str, int]:
        needles = [n for n in (case.room_id, case.ghost_mxid) if n]
        async with self.store.session.begin() as s:
            messages = await s.scalar(
                select(func.count(CaseEvent.seq)).where(
                    CaseEvent.case_id == case.case_id
                )
            )
            inbox = 0
            for needle in needles:
                done = await s.execute(
                    delete(Transaction).where(
                        Transaction.processed_at.is_not(None), _mentions(needle)
                    )
                )
                inbox += int(getattr(done, "rowcount", 0) or 0)
            if case.room_id:
                await s.execute(
                    delete(MatrixSend).where(MatrixSend.room_id == case.room_id)
                )
            gone = await s.execute(delete(Case).where(Case.case_id == case.case_id))
            if getattr(gone, "rowcount", 0) == 1:
                detail: dict[str, Any] = {
                    **extra,
                    **counts,
                    "messages": int(messages or 0),
                    "transactions": inbox,
                }
                s.add(
                    PrivacyAudit(
                        at=utcnow(),
                        action=action,
                        reference=case.reference,
                        department=case.department,
                        actor=actor,
                        detail=detail,
                    )
                )
        return {"messages": int(messages or 0), "transactions": inbox}

    async def compact(self) -> None:
        """Overwrite what was deleted in the SQLite files (bridge, Synapse)."""
        await compact_sqlite(self.store.engine)
        try:
            await self.admin().compact()
        except AdminCallFailed as e:
            log.warning("Synapse's files not compacted: %s", e)

    # --- requests of a data subject (CLI, !erase) ---------------------------------

    async def find_cases(
        self, *, references: Sequence[str] = (), email: str | None = None
    ) -> list[Case]:
        """The cases a request names: by reference, or every case of an e-mail
        address (the offline form, mails sent). RequestRefused if none."""
        found: dict[str, Case] = {}
        async with self.store.session() as s:
            for reference in references:
                case = await s.scalar(
                    select(Case).where(Case.reference == reference.strip().upper())
                )
                if case is None:
                    raise RequestRefused(f"There is no case {reference}.")
                found[case.case_id] = case
        if email is not None:
            address = email.strip().lower()
            ids = set(await self.mail.store.cases_mailed_to(address))
            for part in self.parts:
                if part.cases_of_email is not None:
                    ids.update(await part.cases_of_email(address))
            for case_id in sorted(ids):
                case = await self.store.get_case(case_id)
                if case is not None:
                    found[case.case_id] = case
            if not ids:
                raise RequestRefused(f"No case has the address {email}.")
        return sorted(found.values(), key=lambda c: c.number)

    async def _request_job(self, run: JobRun) -> None:
        """A request from the CLI: erase or export the named cases. Once done,
        the job forgets whom it was about (address, references)."""
        await self._request(run)
        kept = {k: v for k, v in run.payload.items() if k in ("action", "actor")}
        await self.jobs.replace_payload(run.key, kept)

    async def _request(self, run: JobRun) -> None:
        payload = run.payload
        try:
            cases = await self.find_cases(
                references=payload.get("references", []), email=payload.get("email")
            )
        except RequestRefused as e:
            await self._audit(
                "refused",
                None,
                None,
                payload["actor"],
                {"request": run.key, "why": str(e)},
            )
            return
        if payload["action"] == EXPORTED:
            await self.export(cases, Path(payload["out"]), payload["actor"], run.key)
            return
        for case in cases:
            try:
                await self.purge(case.case_id, ERASED, payload["actor"], run.key)
            except AdminCallFailed as e:
                raise RetryLater(timedelta(seconds=30), str(e)) from e

    async def _audit(
        self,
        action: str,
        reference: str | None,
        department: str | None,
        actor: str,
        detail: dict[str, Any],
    ) -> None:
        async with self.store.session.begin() as s:
            s.add(
                PrivacyAudit(
                    at=utcnow(),
                    action=action,
                    reference=reference,
                    department=department,
                    actor=actor,
                    detail=detail,
                )
            )

    async def audit_rows(self, request: str | None = None) -> list[PrivacyAudit]:
        async with self.store.session() as s:
            rows = list(await s.scalars(select(PrivacyAudit).order_by(PrivacyAudit.id)))
        if request is None:
            return rows
        return [r for r in rows if r.detail.get("request") == request]

    # --- access (Art. 15) -------------------------------------------------------

    async def export(
        self, cases: Sequence[Case], out: Path, actor: str, request: str
    ) -> Path:
        """Everything about these cases as a zip (bridge.privacy.export)."""
        admin = self._admin_or_none()
        files = await collect_export(
            self.config, self.store, self.mail, self.parts, cases, admin
        )
        await asyncio.to_thread(write_zip, out, files)
        for case in cases:
            await self._audit(
                EXPORTED,
                case.reference,
                case.department,
                actor,
                {"request": request, "files": len(files)},
            )
        return out

    def _admin_or_none(self) -> SynapseAdmin | None:
        try:
            return self.admin()
        except BuergerchatError:
            return None

    # --- retention -----------------------------------------------------------------

    async def expired(self, now: datetime) -> list[tuple[Case, str]]:
        return await expired_cases(self.store, self.config, now)

    async def _case_ends(self) -> list[tuple[Case, str, datetime]]:
        return await case_ends(self.store)

    async def _sweep_job(self, run: JobRun) -> None:
        await self.sweep(utcnow(), BY_RETENTION)

    async def sweep(self, now: datetime, actor: str = BY_RETENTION) -> dict[str, int]:
        """What retention deletes as of ``now``: expired cases (each a purge
        job), expired files, mail bodies, old audit rows, the parts' own."""
        counts: dict[str, int] = {"cases": 0, "files": 0}
        for case, _ in await self.expired(now):
            await self.enqueue_purge(case.case_id, EXPIRED, actor)
            counts["cases"] += 1
        counts["files"] = await self._expire_files(now, actor)
        blanked = await self.mail.blank_bodies(
            timedelta(days=self.config.retention.mail_bodies_days)
        )
        if blanked:
            await self._audit(
                MAIL_BODIES_EXPIRED, None, None, actor, {"mails": blanked}
            )
        counts["mail_bodies"] = blanked
        for part in self.parts:
            if part.sweep is not None:
                counts.update(await part.sweep(now))
        async with self.store.session.begin() as s:
            await s.execute(
                delete(PrivacyAudit).where(
                    PrivacyAudit.at
                    < now - timedelta(days=self.config.retention.audit_days)
                )
            )
        await compact_sqlite(self.store.engine)
        return counts

    async def _expire_files(self, now: datetime, actor: str) -> int:
        parts = [p for p in self.parts if p.expire_files is not None]
        if not parts:
            return 0
        total = 0
        for case, _, end in await self._case_ends():
            if case.state == State.PURGED:
                continue
            days = self.config.case_retention(case.department).days("files_days")
            if end + days > now:
                continue
            removed = 0
            for part in parts:
                assert part.expire_files is not None
                removed += await part.expire_files(case, self.admin())
            if removed:
                await self._audit(
                    FILES_EXPIRED,
                    case.reference,
                    case.department,
                    actor,
                    {"files": removed},
                )
            total += removed
        return total


def _mentions(needle: str) -> ColumnElement[bool]:
    """An appservice transaction whose body names ``needle`` (a room or user)."""
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return cast(Transaction.body, String).like(f"%{escaped}%", escape="\\")
